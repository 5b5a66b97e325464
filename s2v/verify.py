"""Integrity check and summary of a store (``s2v-prep verify`` / ``s2v-prep info``)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from s2v.errors import S2VError
from s2v.store import STRING_COLUMN, Store, open_backend, sha256_array


def verify_store(
    path: str | Path, progress: Callable[[int], None] | None = None, block_frames: int = 1 << 16
) -> list[str]:
    """Every fault found (empty: the store is sound). Checks the attributes' checksums of every
    small array, each sample's crc32 of joints and motion, offsets, column lengths and splits."""
    try:
        st = Store(path)
    except S2VError as exc:
        return [str(exc)]
    faults: list[str] = []
    be = open_backend(st.path, "r", st.fmt)
    try:
        sums: dict[str, str] = st.attrs.get("checksums", {})
        n = len(st)
        off = st.offsets
        if len(off) == 0 or off[0] != 0:
            faults.append("offsets: must start at 0")
        if np.any(np.diff(off) < 0):
            faults.append("offsets: not monotone")
        for arr in ("joints", "motion"):
            if be.get(arr).shape[0] != off[-1]:
                faults.append(f"{arr}: {be.get(arr).shape[0]} frames, offsets end at {off[-1]}")
        for name, expected in sums.items():
            if name in ("joints", "motion"):
                continue
            if not be.has(name):
                faults.append(f"{name}: missing")
                continue
            values = np.asarray(be.get(name)[...])
            if sha256_array(values) != expected:
                faults.append(f"{name}: checksum mismatch")
            if name.startswith("samples/") and len(values) != n:
                faults.append(f"{name}: {len(values)} rows, expected {n}")
            if name.startswith("splits/"):
                if len(values) and (values.min() < 0 or values.max() >= n):
                    faults.append(f"{name}: index out of range 0..{n - 1}")
                if len(np.unique(values)) != len(values):
                    faults.append(f"{name}: duplicate indices")
        for bench in st.benchmarks:
            try:
                tr, te = st.split(bench, "train"), st.split(bench, "test")
            except S2VError as exc:
                faults.append(str(exc))
                continue
            if np.intersect1d(tr, te).size:
                faults.append(f"splits/{bench}: train and test overlap")
        if not faults:
            faults += _verify_rows(st, be, "joints", "crc_joints", progress, block_frames)
            faults += _verify_rows(st, be, "motion", "crc_motion", None, block_frames)
    finally:
        be.close()
    return faults


def _verify_rows(st, be, array, column, progress, block_frames) -> list[str]:
    crc = np.asarray(be.get(f"samples/{column}")[...], dtype=np.uint32)
    data = be.get(array)
    off = st.offsets
    bad = []
    i = 0
    n = len(off) - 1
    while i < n:
        # read a block of whole samples
        j = i + 1
        while j < n and off[j + 1] - off[i] <= block_frames:
            j += 1
        block = np.asarray(data[off[i] : off[j]])
        for k in range(i, j):
            a, b = off[k] - off[i], off[k + 1] - off[i]
            if zlib.crc32(np.ascontiguousarray(block[a:b]).data) != crc[k]:
                bad.append(k)
        if progress:
            progress(j - i)
        i = j
    if not bad:
        return []
    shown = ", ".join(str(b) for b in bad[:10])
    return [
        f"{array}: {len(bad)} samples fail their crc32 ({shown}{' ...' if len(bad) > 10 else ''})"
    ]


def store_info(st: Store) -> dict[str, Any]:
    """Counts, splits, label histogram and attributes of a store, as plain data."""
    frames = np.diff(st.offsets)
    labels = st.labels
    names = st.label_names
    hist = np.bincount(labels, minlength=len(names) or (labels.max() + 1 if len(labels) else 0))
    be = open_backend(st.path, "r", st.fmt)
    try:
        string_cols = [
            c for c in st.column_names() if be.attrs(f"samples/{c}").get("kind") == STRING_COLUMN
        ]
    finally:
        be.close()
    return {
        "path": str(st.path),
        "format": st.fmt,
        "dataset": st.dataset,
        "samples": len(st),
        "frames": int(st.offsets[-1]),
        "frames_per_sample": {
            "min": int(frames.min()) if len(frames) else 0,
            "mean": float(frames.mean()) if len(frames) else 0.0,
            "max": int(frames.max()) if len(frames) else 0,
        },
        "splits": {b: {p: len(st.split(b, p)) for p in ("train", "test")} for b in st.benchmarks},
        "labels": {(names[k] if k < len(names) else str(k)): int(c) for k, c in enumerate(hist)},
        "columns": st.column_names(),
        "string_columns": string_cols,
        "attributes": {k: v for k, v in st.attrs.items() if k not in ("label_names", "checksums")},
    }
