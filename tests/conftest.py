"""Shared fixtures: where the real data lives, and small stores built in memory."""

from pathlib import Path

import numpy as np
import pytest

from s2v.store import write_store

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the project root (CI has it at the same place)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def random_walk_clips(n: int, seed: int = 0, min_t: int = 20, max_t: int = 140) -> list:
    """n clips (T, 2, 25, 3) float32 of smooth random motion; every third has a second actor."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        t = int(rng.integers(min_t, max_t + 1))
        base = rng.normal(0, 0.3, size=(1, 2, 25, 3))
        walk = np.cumsum(rng.normal(0, 0.01, size=(t, 2, 25, 3)), axis=0)
        clip = (base + walk).astype(np.float32)
        if i % 3:
            clip[:, 1] = 0.0
        clips.append(clip)
    return clips


@pytest.fixture
def make_store(tmp_path):
    """make_store(n=12, fmt='zarr', classes=3) -> an opened Store with xsub/xview splits."""

    def _make(n: int = 12, fmt: str = "zarr", classes: int = 3, seed: int = 0, **writer_opts):
        clips = random_walk_clips(n, seed)
        labels = np.arange(n) % classes
        idx = np.arange(n)
        splits = {
            "xsub": {"train": idx[idx % 4 != 0], "test": idx[idx % 4 == 0]},
            "xview": {"train": idx[idx % 2 == 0], "test": idx[idx % 2 == 1]},
        }
        samples = {
            "name": [f"S001C001P{i + 1:03d}R001A{labels[i] + 1:03d}" for i in range(n)],
            "label": labels.astype(np.int16),
            "actors": np.array([2 if c[:, 1].any() else 1 for c in clips], dtype=np.int8),
        }
        attrs = {"dataset": "test", "label_names": [f"class {k}" for k in range(classes)]}
        suffix = ".zarr" if fmt == "zarr" else ".h5"
        return write_store(
            tmp_path / f"store{seed}{suffix}", clips, samples, splits, attrs, fmt, **writer_opts
        )

    return _make
