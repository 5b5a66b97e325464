"""The store: writer and reader contract, both backends, motion prior kernel."""

import multiprocessing as mp
import pickle

import numpy as np
import pytest

import s2v
from s2v.errors import StoreError
from s2v.motion import motion_prior, motion_prior_numpy
from s2v.store import decode_strings, encode_strings


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_clips_motion_columns_and_splits_round_trip(make_store, fmt):
    st = make_store(n=9, fmt=fmt, chunk_frames=32, shard_chunks=2)
    from conftest import random_walk_clips

    clips = random_walk_clips(9)
    assert len(st) == 9 and st.fmt == fmt
    for i, clip in enumerate(clips):
        assert np.array_equal(st.clip(i), clip)
        expected = motion_prior(clip).astype(np.float16).astype(np.float32)
        assert np.array_equal(st.motion(i), expected)
    assert list(st.samples["name"])[:2] == ["S001C001P001R001A001", "S001C001P002R001A002"]
    assert st.samples["frames"].tolist() == [len(c) for c in clips]
    assert st.split("xview", "test").tolist() == [1, 3, 5, 7]
    assert st.label_names == ["class 0", "class 1", "class 2"]
    with pytest.raises(IndexError):
        st.clip(9)


def test_a_store_pickles_without_its_handle_and_reopens(make_store):
    st = make_store(n=5, fmt="h5")
    st.clip(0)
    clone = pickle.loads(pickle.dumps(st))
    assert clone._be is None
    assert np.array_equal(clone.clip(3), st.clip(3))


def _read_in_child(st, i, q):
    q.put(st.clip(i).sum())


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_a_store_opened_before_fork_reads_in_the_child(make_store, fmt):
    st = make_store(n=5, fmt=fmt)
    st.clip(0)  # handle opened in the parent
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=_read_in_child, args=(st, 4, q))
    p.start()
    p.join(30)
    assert q.get(timeout=5) == pytest.approx(float(st.clip(4).sum()))


def test_foreign_or_missing_stores_are_rejected(tmp_path, make_store):
    with pytest.raises(StoreError, match="no such store"):
        s2v.open(tmp_path / "nope.zarr")
    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(StoreError, match="not a skeleton2vec store"):
        s2v.open(tmp_path / "other.zarr")
    st = make_store(n=3)
    g = zarr.open_group(str(st.path), mode="r+")
    g.attrs["format_version"] = 99
    with pytest.raises(StoreError, match="format version 99"):
        s2v.open(st.path)


def test_string_columns_round_trip():
    names = ["S001C001P001R001A001", "x", ""]
    assert decode_strings(encode_strings(names)).tolist() == names


def test_motion_prior_kernel_matches_the_numpy_specification():
    rng = np.random.default_rng(0)
    j = rng.normal(size=(50, 2, 25, 3)).astype(np.float32)
    j[10:20, 1] = 0  # actor 2 absent: no motion at its appearance or disappearance
    m = motion_prior(j)
    np.testing.assert_allclose(m, motion_prior_numpy(j), rtol=1e-6)
    assert np.all(m[-1] == 0) and np.all(m[9:20, 1] == 0)
    assert m[20, 1].min() > 0
    assert motion_prior(j[:1]).shape == (1, 2, 25)
