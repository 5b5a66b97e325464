"""Temporal sampling: which source frames make a clip of T frames (numpy only, pure functions).

Two schemes, as in ``docs/method.md`` §2:

- **uniform** (Skeleton2vec, T = 90): cut the n valid frames into T equal segments and take one
  frame from each, a random one in training, a fixed one at test time; loop when n < T.
- **crop_resize** (MAMP, T = 120): crop a random fraction p ~ U(0.5, 1) of the valid frames
  (at least 64, or the whole clip when shorter), then resize to T by linear interpolation; at test
  time a centre crop of 95 %.

Every function returns *positions*, not frames: output frame t of clip k is
``(1 - w[k, t]) * x[lo[k, t]] + w[k, t] * x[hi[k, t]]`` (``w`` is None for a plain gather). The same
positions index the joints (n, M, V, C) and the motion prior (n, M, V), so the caller reads each
array once and gathers; the motion prior is taken at the nearest source frame (:func:`nearest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

KINDS = ("uniform", "crop_resize")


class Positions(NamedTuple):
    """Source positions of K clips of T frames each.

    lo: int64 (K, T)   source frame (the only one when ``w`` is None)
    hi: int64 (K, T)   second source frame of a linear blend, or None
    w:  float32 (K, T) weight of ``hi``, or None
    """

    lo: np.ndarray
    hi: np.ndarray | None = None
    w: np.ndarray | None = None

    def nearest(self) -> np.ndarray:
        """int64 (K, T): the source frame nearest to each output frame."""
        return nearest(self.lo, self.hi, self.w)


@dataclass(frozen=True)
class TemporalSampler:
    """How a dataset turns a clip of n frames into ``clips`` clips of ``frames`` frames.

    Defaults are the Skeleton2vec preset; ``TemporalSampler("crop_resize", 120)`` is MAMP's.
    ``clips > 1`` is the multi-clip test protocol (uniform only: offsets spread in each segment).
    """

    kind: str = "uniform"  # "uniform" (Skeleton2vec) | "crop_resize" (MAMP)
    frames: int = 90
    train: bool = True
    clips: int = 1
    crop_range: tuple[float, float] = (0.5, 1.0)  # crop_resize, train: p ~ U(lo, hi)
    min_crop: int = 64  # crop_resize, train: shortest crop in frames
    test_crop: float = 0.95  # crop_resize, test: centre crop fraction

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"TemporalSampler.kind: {self.kind!r}, expected one of {KINDS}")
        if self.frames < 1 or self.clips < 1:
            raise ValueError(f"TemporalSampler: frames={self.frames}, clips={self.clips}: < 1")
        if self.kind == "crop_resize" and self.clips != 1:
            raise ValueError("TemporalSampler: crop_resize takes one clip (clips=1)")
        if self.train and self.clips != 1:
            raise ValueError("TemporalSampler: several clips are a test protocol (train=False)")

    def positions(self, n: int, rng: np.random.Generator | None = None) -> Positions:
        """Positions (K=clips, T=frames) in a clip of n >= 1 frames; ``rng`` is needed to train."""
        if self.train and rng is None:
            raise ValueError("TemporalSampler(train=True).positions needs a random generator")
        if self.kind == "uniform":
            if self.train:
                return Positions(uniform_indices(n, self.frames, rng)[None])
            return Positions(uniform_test_indices(n, self.frames, self.clips))
        if self.train:
            lo, hi, w = crop_resize(n, self.frames, rng, self.crop_range, self.min_crop)
        else:
            lo, hi, w = center_crop_resize(n, self.frames, self.test_crop)
        return Positions(lo[None], hi[None], w[None])


# --------------------------------------------------------------------------------------------
# uniform (Skeleton2vec)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _segments(n: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and size of T equal integer segments of n >= T frames: int64 (T,) each, sizes >= 1.

    Cached (clip lengths repeat), so the arrays are read-only.
    """
    bounds = np.arange(frames + 1, dtype=np.int64) * n // frames
    start, size = bounds[:-1], bounds[1:] - bounds[:-1]
    start.flags.writeable = size.flags.writeable = False
    return start, size


def uniform_indices(n: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Training sample: int64 (T,) frame indices in [0, n).

    n >= T: one uniformly random frame in each of T equal segments (so the first and last
    segments are always represented). n < T: the clip is looped, ``(s + arange(T)) % n`` from a
    random start s (the reference's rule). The reference uses a random-insertion scheme for
    T <= n < 2T; segments of 1-2 frames give the same coverage.
    """
    if n < 1:
        raise ValueError(f"uniform sampling of an empty clip (n={n})")
    if n < frames:
        return (int(rng.integers(n)) + np.arange(frames, dtype=np.int64)) % n
    start, size = _segments(n, frames)
    # floor(u * size), u ~ U[0, 1): uniform over the segment, 5x faster than integers(0, size)
    return start + (rng.random(frames) * size).astype(np.int64)


def uniform_test_indices(n: int, frames: int, clips: int = 1) -> np.ndarray:
    """Test samples: int64 (clips, T) fixed frame indices in [0, n).

    Clip j takes the frame at fraction (j + 0.5) / clips of each segment, so one clip takes each
    segment's **middle** frame and k clips spread k offsets over the segment. When n < T the clip
    is looped from start ``j * n // clips`` (clip 0 starts at frame 0).
    """
    if n < 1:
        raise ValueError(f"uniform sampling of an empty clip (n={n})")
    ar = np.arange(frames, dtype=np.int64)
    j = np.arange(clips, dtype=np.int64)[:, None]
    if n < frames:
        return (j * n // clips + ar) % n
    start, size = _segments(n, frames)
    # floor(size * (2j + 1) / (2 clips)) in integers: the same offsets on every platform
    return start + size * (2 * j + 1) // (2 * clips)


# --------------------------------------------------------------------------------------------
# crop + resize (MAMP)
# --------------------------------------------------------------------------------------------


def resize_positions(
    start: int, length: int, frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear resize of frames [start, start + length) to T frames: (lo, hi, w), each (T,).

    Matches ``F.interpolate(mode="bilinear", align_corners=False)`` along time, as MAMP uses:
    source position ``(t + 0.5) * length / T - 0.5`` clamped at 0, blended between its two
    neighbours (the last frame repeats at the end).
    """
    t = np.arange(frames, dtype=np.float32)
    src = np.maximum((t + np.float32(0.5)) * np.float32(length / frames) - np.float32(0.5), 0)
    lo = src.astype(np.int64)
    w = (src - lo).astype(np.float32)
    hi = lo + (lo < length - 1)
    return lo + start, hi + start, w


def crop_resize(
    n: int,
    frames: int,
    rng: np.random.Generator,
    crop_range: tuple[float, float] = (0.5, 1.0),
    min_crop: int = 64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training sample: a random crop of ``floor(n * p)`` frames, p ~ U(crop_range), at least
    ``min_crop`` (or all n when shorter), at a random start, resized to T: (lo, hi, w), each (T,).
    """
    if n < 1:
        raise ValueError(f"crop of an empty clip (n={n})")
    p = crop_range[0] + (crop_range[1] - crop_range[0]) * rng.random()
    length = min(max(int(np.floor(n * p)), min_crop), n)
    start = int(rng.integers(n - length + 1))
    return resize_positions(start, length, frames)


def center_crop_resize(
    n: int, frames: int, ratio: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test sample: drop ``int((1 - ratio) * n / 2)`` frames at each end (MAMP's centre crop),
    resize the rest to T: (lo, hi, w), each (T,)."""
    if n < 1:
        raise ValueError(f"crop of an empty clip (n={n})")
    bias = int((1 - ratio) * n / 2)
    return resize_positions(bias, n - 2 * bias, frames)


def nearest(lo: np.ndarray, hi: np.ndarray | None, w: np.ndarray | None) -> np.ndarray:
    """The source frame nearest to each position: ``lo`` where ``w < 0.5``, else ``hi``."""
    if w is None:
        return lo
    return np.where(w < 0.5, lo, hi)
