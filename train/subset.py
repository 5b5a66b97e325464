"""The labelled subset of semi-supervised fine-tuning (docs/method.md §7).

A class-stratified share of a training split drawn from a seed alone: the same subset on every
rank and in every repeat with the same seed (the reference draws it unseeded on each rank).
"""

from __future__ import annotations

import numpy as np


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions (sorted int64) of a class-stratified ``fraction`` of the samples with
    ``labels`` (n,): ``max(1, round(fraction * n_c))`` of each class c present, drawn without
    replacement by a generator seeded with ``seed`` only (never the rank)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction {fraction}: expected a value in (0, 1]")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng([seed, 0x5E31])  # a stream of its own: not the loader's
    picked = []
    for c in np.unique(labels):  # ascending classes: the draw order is fixed
        members = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(members))))
        picked.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
