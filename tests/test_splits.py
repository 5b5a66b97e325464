"""Benchmark splits at full scale, missing lists, and the reference sample order."""

import numpy as np
import pytest

from s2v.preprocess.ntu import parse_name
from s2v.preprocess.splits import (
    builtin_missing_list,
    make_splits,
    read_name_list,
    split_indices,
)


@pytest.fixture(scope="module")
def available(shared_data):
    names = (shared_data / "splits" / "ntu120_available.txt").read_text().split()
    ids = [parse_name(n) for n in names]
    return {
        k: np.array([getattr(i, k) for i in ids]) for k in ("setup", "camera", "subject", "action")
    }


def test_ntu120_split_sizes_at_full_scale(available):
    assert len(available["setup"]) == 113_945
    s = make_splits("ntu120", available, ("xsub", "xset"))
    assert (len(s["xsub"]["train"]), len(s["xsub"]["test"])) == (63_026, 50_919)
    assert (len(s["xset"]["train"]), len(s["xset"]["test"])) == (54_468, 59_477)


def test_ntu60_split_sizes_at_full_scale(available):
    keep = (available["setup"] <= 17) & (available["action"] <= 60)
    cols = {k: v[keep] for k, v in available.items()}
    assert keep.sum() == 56_578
    s = make_splits("ntu60", cols, ("xsub", "xview"))
    assert (len(s["xsub"]["train"]), len(s["xsub"]["test"])) == (40_091, 16_487)
    assert (len(s["xview"]["train"]), len(s["xview"]["test"])) == (37_646, 18_932)


def test_every_sample_is_in_exactly_one_part(available):
    s = make_splits("ntu120", available, ("xsub", "xset"))
    for parts in s.values():
        both = np.concatenate([parts["train"], parts["test"]])
        assert np.array_equal(np.sort(both), np.arange(len(available["setup"])))


def test_split_order_groups_by_id_list_then_name_order():
    ids = np.array([3, 1, 2, 1, 3])
    assert split_indices(ids, (3, 1)).tolist() == [0, 4, 1, 3]


def test_builtin_missing_lists_match_the_official_ones(shared_data):
    for dataset, count in (("ntu60", 302), ("ntu120", 535)):
        builtin = read_name_list(builtin_missing_list(dataset))
        official = read_name_list(shared_data / "splits" / f"{dataset}_missing_official.txt")
        assert builtin == official and len(builtin) == count
    assert set(read_name_list(builtin_missing_list("ntu60"))) <= set(
        read_name_list(builtin_missing_list("ntu120"))
    )
