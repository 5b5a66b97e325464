"""Exports of a store to the formats other toolkits read.

``ctrgcn``: the reference ``.npz`` of CTR-GCN / MAMP (data.md §2 steps 4-5): ``x_train``,
``x_test`` float32 (N, T, 150) zero-padded, ``y_train``, ``y_test`` one-hot float64, samples in
the split's order, NTU-120 single-slot samples duplicated into actor 2. The arrays are streamed
into the (uncompressed) zip one sample at a time, so memory stays flat even for the 20 GB
NTU-120 files.
"""

from __future__ import annotations

import zipfile
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
