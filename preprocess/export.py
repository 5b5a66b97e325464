"""Exports of a store to the formats other toolkits read.

``ctrgcn``: the reference ``.npz`` of CTR-GCN / MAMP (data.md §2 steps 4-5): ``x_train``,
``x_test`` float32 (N, T, 150) zero-padded, ``y_train``, ``y_test`` one-hot float64, samples in
the split's order, NTU-120 single-slot samples duplicated into actor 2. The arrays are streamed
into the (uncompressed) zip one sample at a time, so memory stays flat even for the 20 GB
NTU-120 files.

``pyskl``: the annotation pickle of PYSKL / MMAction2 (``ntu60_3danno.pkl`` style): a dict with
``split`` (``{'xsub_train': [frame_dir, ...], 'xsub_val': [...], ...}``) and ``annotations``, one
dict per sample with ``frame_dir`` (the sample name), ``label``, ``total_frames`` and
``keypoint`` float32 (M, T, 25, 3), M = 1 or 2 actors (no NTU-120 duplication).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from s2v.errors import S2VError
from s2v.preprocess.splits import EXPORT_NAMES
from s2v.store import Store

CTRGCN_NAMES = {
    ("ntu60", "xsub"): "NTU60_CS.npz",
    ("ntu60", "xview"): "NTU60_CV.npz",
    ("ntu120", "xsub"): "NTU120_CSub.npz",
    ("ntu120", "xset"): "NTU120_CSet.npz",
}


def _write_npy(zf: zipfile.ZipFile, key: str, shape: tuple, dtype, blocks) -> None:
    """Write one array member ``key.npy`` from an iterator of C-order blocks."""
    with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": shape}  # fmt: skip
        np.lib.format.write_array_header_1_0(f, header)
        for block in blocks:
            f.write(np.ascontiguousarray(block, dtype=dtype).tobytes())


def sample_rows(store: Store, index: int, pad: int, duplicate_single: bool) -> np.ndarray:
    """One sample as the reference's (pad, 150) float32 row block."""
    clip = store.clip(index)
    if len(clip) > pad:
        raise S2VError(f"sample {index} has {len(clip)} frames, more than --pad {pad}")
    out = np.zeros((pad, 150), dtype=np.float32)
    flat = clip.reshape(len(clip), 150)
    out[: len(clip)] = flat
    if duplicate_single:
        out[: len(clip), 75:] = flat[:, :75]
    return out


def export_ctrgcn(
    store: Store,
    benchmark: str,
    out_dir: str | Path,
    *,
    pad: int | None = 300,
    naming: str = "mamp",
    progress: bool = False,
) -> Path:
    """Write the reference .npz of one benchmark into ``out_dir``; returns its path.

    pad: frames per sample (None: the longest sample of the benchmark, as the reference does on
    a subset). naming: 'mamp' (NTU60_XSub.npz ...) or 'ctrgcn' (NTU60_CS.npz ...).
    """
    dataset = store.dataset
    if (dataset, benchmark) not in EXPORT_NAMES:
        raise S2VError(f"{store.path}: no ctrgcn export for {dataset} {benchmark}")
    names = EXPORT_NAMES if naming == "mamp" else CTRGCN_NAMES
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / names[(dataset, benchmark)]
    parts = {part: store.split(benchmark, part) for part in ("train", "test")}
    lengths = np.diff(store.offsets)
    if pad is None:
        pad = int(max(lengths[idx].max() for idx in parts.values() if len(idx)))
    labels = store.labels
    slots = store.column("slots") if "slots" in store.column_names() else np.full(len(store), 2)
    duplicate = dataset == "ntu120"  # NTU-120 copies a single actor into slot 2 (data.md §2.4)
    num_classes = store.num_classes
    tmp = path.with_name(path.name + ".partial")
    from tqdm import tqdm

    total = sum(len(v) for v in parts.values())
    bar = tqdm(total=total, unit="sample", desc=path.name, disable=not progress)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for part in ("train", "test"):
            idx = parts[part]

            def rows(idx=idx):
                for i in idx:
                    bar.update(1)
                    yield sample_rows(store, int(i), pad, duplicate and slots[i] == 1)

            _write_npy(zf, f"x_{part}", (len(idx), pad, 150), np.float32, rows())
            onehot = np.zeros((len(idx), num_classes), dtype=np.float64)
            onehot[np.arange(len(idx)), labels[idx]] = 1.0
            _write_npy(zf, f"y_{part}", onehot.shape, np.float64, [onehot])
    bar.close()
    tmp.replace(path)
    return path


# store part -> PYSKL's split suffix (PYSKL calls the test part 'val': xsub_train, xsub_val)
PYSKL_PARTS = {"train": "train", "test": "val"}


def iter_clips(store: Store, block_frames: int = 1 << 16) -> Iterator[tuple[int, np.ndarray]]:
    """(index, clip) of every sample in store order, read in blocks of whole samples (one
    chunk decoded once, not once per sample)."""
    off = store.offsets
    n = len(off) - 1
    i = 0
    while i < n:
        j = i + 1
        while j < n and off[j + 1] - off[i] <= block_frames:
            j += 1
        block = np.asarray(store.joints[off[i] : off[j]])
        for k in range(i, j):
            yield k, block[off[k] - off[i] : off[k + 1] - off[i]]
        i = j


def pyskl_annotation(name: str, label: int, clip: np.ndarray) -> dict:
    """One PYSKL annotation from a clip (T, 2, 25, 3): keypoint (M, T, 25, 3), M = 2 when
    actor 2 has data anywhere in the clip, else 1."""
    m = 2 if clip[:, 1].any() else 1
    keypoint = np.ascontiguousarray(clip[:, :m].transpose(1, 0, 2, 3), dtype=np.float32)
    return {"frame_dir": name, "label": int(label), "total_frames": len(clip), "keypoint": keypoint}


def export_pyskl(
    store: Store,
    path: str | Path,
    *,
    benchmarks: list[str] | tuple[str, ...] | None = None,
    progress: bool = False,
) -> Path:
    """Write the PYSKL annotation pickle of ``store`` to ``path`` (atomically); returns it.

    Every sample of the store is annotated, in store order; ``split`` holds the benchmarks
    (default: all of the store's), parts named ``{benchmark}_train`` / ``{benchmark}_val``.
    The whole pickle is built in memory (about the size of the store's joints, uncompressed).
    """
    from tqdm import tqdm

    path = Path(path)
    names = store.column("name")
    labels = store.labels
    split = {}
    for bench in benchmarks or store.benchmarks:
        for part, suffix in PYSKL_PARTS.items():
            split[f"{bench}_{suffix}"] = [str(names[i]) for i in store.split(bench, part)]
    bar = tqdm(total=len(store), unit="sample", desc=path.name, disable=not progress)
    annotations = []
    for i, clip in iter_clips(store):
        annotations.append(pyskl_annotation(str(names[i]), labels[i], clip))
        bar.update(1)
    bar.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f, protocol=4)
    os.replace(tmp, path)
    return path
