"""Build a store from other toolkits' files: CTR-GCN/MAMP ``.npz`` and PYSKL annotation pickles.

``.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``; x float32 (N, T, 150) zero padded,
y one-hot): a sample's frames are its rows up to the last one that is not all zero (the
padding is trailing zero rows); in NTU-120 files a second actor identical to the first is the
reference's duplication of a single actor (data.md §2.4): it is stored as absent with
``slots`` = 1, so that ``export --format ctrgcn`` writes the same file again. Sample names are
not in the file (``sample_000000``, ...); both parts become one benchmark named from the file
name (``NTU60_XSub``/``NTU60_CS`` -> xsub, ``XView``/``CV`` -> xview, ``XSet``/``CSet`` -> xset).
The arrays are streamed from the zip one sample at a time, so memory stays flat.

``.pkl`` (PYSKL): loaded only when the caller trusts it (unpickling runs code); sample names
from ``frame_dir``, benchmarks from the ``split`` keys (``xsub_train`` / ``xsub_val``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import s2v
from s2v.errors import S2VError
from s2v.motion import motion_prior
from s2v.preprocess.convert import _remove, _size, _store_fingerprint
from s2v.preprocess.ntu import parse_name
from s2v.preprocess.pku import PKU_ACTIONS
from s2v.preprocess.splits import NTU_ACTIONS
from s2v.store import StoreWriter, detect_format

# the benchmark part of a reference file name (MAMP's and CTR-GCN's spellings)
BENCHMARK_NAMES = {
    "xsub": "xsub",
    "cs": "xsub",
    "csub": "xsub",
    "xview": "xview",
    "cv": "xview",
    "xset": "xset",
    "cset": "xset",
}
CLASSES = {"ntu60": 60, "ntu120": 120, "pku1": 51, "pku2": 51}
NTU_ID_COLUMNS = ("setup", "camera", "subject", "replication", "action")


@dataclass
class ImportSummary:
    """What an import did (printed by the CLI)."""

    output: str = ""
    source: str = ""
    kind: str = ""  # ctrgcn | pyskl
    dataset: str = ""
    samples: int = 0
    frames: int = 0
    splits: dict | None = None  # benchmark -> (train, test)
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    already_complete: bool = False


def guess_dataset(path: Path) -> str | None:
    """ntu60 / ntu120 / pku1 / pku2 from a file name (``NTU60_XSub.npz``, ``ntu120_3danno.pkl``,
    ``pku_v1...``), None if the name does not tell."""
    stem = path.stem.lower()
    for pattern, name in (
        (r"ntu[-_]?120", "ntu120"),
        (r"ntu[-_]?60", "ntu60"),
        (r"pku[-_]?(mmd)?[-_]?(v|part|phase)?[-_]?(1|i)(?![0-9i])", "pku1"),
        (r"pku[-_]?(mmd)?[-_]?(v|part|phase)?[-_]?(2|ii)(?![0-9i])", "pku2"),
    ):
        if re.search(pattern, stem):
            return name
    return None


def guess_benchmark(path: Path) -> str | None:
    """The benchmark a reference ``.npz`` holds, from its name's last ``_`` part."""
    return BENCHMARK_NAMES.get(path.stem.rsplit("_", 1)[-1].lower())


def label_names(dataset: str, num_classes: int) -> list[str]:
    """The dataset's action names (``action 1``, ... for other datasets)."""
    if dataset in ("ntu60", "ntu120"):
        return list(NTU_ACTIONS[:num_classes])
    if dataset in ("pku1", "pku2"):
        return list(PKU_ACTIONS)
    return [f"action {k + 1}" for k in range(num_classes)]


class _Sink:
    """Streams clips into a StoreWriter, with the motion prior and the checksum columns."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.writer = StoreWriter(path, fmt)
        self.lengths: list[int] = []
        self.crc_j: list[int] = []
        self.crc_m: list[int] = []

    def add(self, clip: np.ndarray) -> None:
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        motion = motion_prior(clip).astype(self.writer.motion_dtype)
        self.writer.append(clip, motion)
        self.lengths.append(len(clip))
        self.crc_j.append(zlib.crc32(clip.data))
        self.crc_m.append(zlib.crc32(motion.data))

    def finish(self, samples: dict, splits: dict, attrs: dict) -> None:
        offsets = np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)])
        cols = {k: np.asarray(v) for k, v in samples.items()}
        cols["frames"] = np.asarray(self.lengths, dtype=np.int32)
        cols["crc_joints"] = np.asarray(self.crc_j, dtype=np.uint32)
        cols["crc_motion"] = np.asarray(self.crc_m, dtype=np.uint32)
        self.writer.finish(offsets, cols, splits, attrs)

    def close(self) -> None:
        self.writer.close()


# ------------------------------------------------------------------------------------------
# CTR-GCN / MAMP .npz
# ------------------------------------------------------------------------------------------


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


def _npz_y(zf: zipfile.ZipFile, key: str, source: Path) -> np.ndarray:
    with zf.open(f"{key}.npy") as f:
        y = np.lib.format.read_array(f)
    if y.ndim != 2:
        raise S2VError(f"{source}: {key} has shape {y.shape}, expected (N, classes) one-hot")
    rows_ok = (np.sum(y == 1, axis=1) == 1) & (np.sum(y != 0, axis=1) == 1)
    if not rows_ok.all():
        raise S2VError(f"{source}: {key} row {int(np.argmin(rows_ok))} is not one-hot")
    return y.argmax(axis=1)


def _npz_clips(zf: zipfile.ZipFile, key: str, n: int, source: Path, duplicated: bool):
    """Yield (clip (T, 2, 25, 3), slots) of ``key`` one sample at a time."""
    with zf.open(f"{key}.npy") as f:
        shape, fortran, dtype = _npy_header(f)
        if len(shape) != 3 or shape[2] != 150 or fortran or dtype != np.float32:
            raise S2VError(
                f"{source}: {key} is {dtype} {shape}, expected C-order float32 (N, T, 150)"
            )
        if shape[0] != n:
            raise S2VError(f"{source}: {key} has {shape[0]} samples, its labels {n}")
        t = shape[1]
        for i in range(n):
            raw = f.read(t * 150 * 4)
            if len(raw) != t * 150 * 4:
                raise S2VError(f"{source}: {key} ends early, at sample {i}")
            rows = np.frombuffer(raw, dtype=np.float32).reshape(t, 150)
            nonzero = np.flatnonzero(rows.any(axis=1))
            if len(nonzero) == 0:
                raise S2VError(f"{source}: {key} sample {i} is all zero")
            rows = rows[: nonzero[-1] + 1]
            clip = rows.reshape(len(rows), 2, 25, 3).copy()
            if duplicated and np.array_equal(clip[:, 1], clip[:, 0]):
                clip[:, 1] = 0  # the reference's copy of a single actor (NTU-120)
                yield clip, 1
            else:
                yield clip, 2 if (duplicated or clip[:, 1].any()) else 1


def _import_npz(source: Path, sink: _Sink, dataset: str, benchmark: str, progress: bool):
    from tqdm import tqdm

    with zipfile.ZipFile(source) as zf:
        members = set(zf.namelist())
        for k in ("x_train", "y_train", "x_test", "y_test"):
            if f"{k}.npy" not in members:
                raise S2VError(f"{source}: no '{k}' array (not a CTR-GCN/MAMP .npz)")
        y = {p: _npz_y(zf, f"y_{p}", source) for p in ("train", "test")}
        with zf.open("y_train.npy") as f:
            num_classes = _npy_header(f)[0][1]
        n_train, n_test = len(y["train"]), len(y["test"])
        bar = tqdm(total=n_train + n_test, unit="sample", desc=source.name, disable=not progress)
        slots, actors = [], []
        for part in ("train", "test"):
            for clip, s in _npz_clips(zf, f"x_{part}", len(y[part]), source, dataset == "ntu120"):
                sink.add(clip)
                slots.append(s)
                actors.append(2 if clip[:, 1].any() else 1)
                bar.update(1)
        bar.close()
    n = n_train + n_test
    samples = {
        "name": [f"sample_{i:06d}" for i in range(n)],
        "label": np.concatenate([y["train"], y["test"]]).astype(np.int16),
        "actors": np.asarray(actors, dtype=np.int8),
        "slots": np.asarray(slots, dtype=np.int8),
    }
    idx = np.arange(n, dtype=np.int32)
    splits = {benchmark: {"train": idx[:n_train], "test": idx[n_train:]}}
    return samples, splits, int(num_classes)


# ------------------------------------------------------------------------------------------
# PYSKL pickle
# ------------------------------------------------------------------------------------------


def _load_pickle(source: Path) -> dict:
    import pickle

    with open(source, "rb") as f:
        try:
            data = pickle.load(f)
        except Exception as exc:  # any unpickling failure: a damaged or foreign file
            raise S2VError(f"{source}: cannot unpickle ({type(exc).__name__}: {exc})") from None
    if not (isinstance(data, dict) and "annotations" in data and "split" in data):
        raise S2VError(f"{source}: not a PYSKL annotation file (no 'split' and 'annotations')")
    return data


def _import_pyskl(source: Path, sink: _Sink, progress: bool):
    from tqdm import tqdm

    data = _load_pickle(source)
    annotations = data["annotations"]
    names, labels, slots, actors = [], [], [], []
    bar = tqdm(total=len(annotations), unit="sample", desc=source.name, disable=not progress)
    for k, ann in enumerate(annotations):
        try:
            name, label = str(ann["frame_dir"]), int(ann["label"])
            kp = np.asarray(ann["keypoint"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise S2VError(f"{source}: annotation {k}: {type(exc).__name__}: {exc}") from None
        if kp.ndim != 4 or kp.shape[2:] != (25, 3) or not 1 <= kp.shape[0] <= 2:
            raise S2VError(
                f"{source}: annotation {k} ({name}): keypoint {kp.shape}, "
                "expected (M, T, 25, 3) with M = 1 or 2"
            )
        if kp.shape[1] == 0 or int(ann.get("total_frames", kp.shape[1])) != kp.shape[1]:
            raise S2VError(
                f"{source}: annotation {k} ({name}): total_frames "
                f"{ann.get('total_frames')} but keypoint has {kp.shape[1]} frames"
            )
        clip = np.zeros((kp.shape[1], 2, 25, 3), dtype=np.float32)
        clip[:, : kp.shape[0]] = kp.transpose(1, 0, 2, 3)
        sink.add(clip)
        names.append(name)
        labels.append(label)
        slots.append(kp.shape[0])
        actors.append(2 if clip[:, 1].any() else 1)
        bar.update(1)
    bar.close()
    if len(set(names)) != len(names):
        raise S2VError(f"{source}: frame_dir names are not unique")
    index = {n: i for i, n in enumerate(names)}
    splits: dict[str, dict[str, np.ndarray]] = {}
    for key, members in data["split"].items():
        bench, _, part = str(key).rpartition("_")
        part = {"train": "train", "val": "test", "test": "test"}.get(part)
        if not bench or part is None:
            raise S2VError(f"{source}: split '{key}' is not BENCHMARK_train or BENCHMARK_val")
        missing = [m for m in members if m not in index]
        if missing:
            raise S2VError(
                f"{source}: split '{key}' names {len(missing)} unknown samples, e.g. {missing[0]}"
            )
        splits.setdefault(bench, {})[part] = np.asarray([index[m] for m in members], np.int32)
    for parts in splits.values():
        for part in ("train", "test"):
            parts.setdefault(part, np.zeros(0, np.int32))
    samples: dict[str, Any] = {
        "name": np.asarray(names, dtype=object),
        "label": np.asarray(labels, dtype=np.int16),
        "actors": np.asarray(actors, dtype=np.int8),
        "slots": np.asarray(slots, dtype=np.int8),
    }
    ids = [parse_name(n) for n in names]
    if ids and all(i is not None for i in ids):  # NTU sample names: their IDs as columns
        for col in NTU_ID_COLUMNS:
            samples[col] = np.asarray([getattr(i, col) for i in ids], dtype=np.int16)
    num_classes = int(max(labels)) + 1 if labels else 0
    return samples, splits, num_classes


# ------------------------------------------------------------------------------------------
# the import
# ------------------------------------------------------------------------------------------


def import_file(
    source: str | Path,
    output: str | Path,
    *,
    dataset: str | None = None,
    benchmark: str | None = None,
    trust_pickle: bool = False,
    fmt: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> ImportSummary:
    """Build the store ``output`` from a CTR-GCN/MAMP ``.npz`` or a PYSKL ``.pkl``; see the
    module docstring. ``dataset``/``benchmark`` default to what the file name says."""
    t0 = time.perf_counter()
    source, output = Path(source), Path(output)
    if not source.is_file():
        raise S2VError(f"{source}: no such file")
    suffix = source.suffix.lower()
    if suffix == ".npz":
        kind = "ctrgcn"
    elif suffix in (".pkl", ".pickle"):
        kind = "pyskl"
        if not trust_pickle:
            raise S2VError(
                f"{source}: loading a pickle runs code stored in it; pass --trust-pickle "
                "if you trust where the file comes from"
            )
    else:
        raise S2VError(f"{source}: expected a CTR-GCN/MAMP .npz or a PYSKL .pkl")
    dataset = dataset or guess_dataset(source)
    if dataset is None:
        raise S2VError(f"{source}: cannot tell the dataset from the file name (give --dataset)")
    if kind == "ctrgcn":
        benchmark = benchmark or guess_benchmark(source)
        if benchmark is None:
            raise S2VError(
                f"{source}: cannot tell the benchmark from the file name (give --benchmark)"
            )
    fmt = fmt or detect_format(output)
    options = {"source": source.name, "kind": kind, "dataset": dataset, "benchmark": benchmark}
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    h.update(f"{fmt}:{source.stat().st_size}".encode())
    fp = h.hexdigest()[:32]
    summary = ImportSummary(str(output), str(source), kind, dataset)
    summary.bytes_in = source.stat().st_size
    if output.exists():
        if _store_fingerprint(output) == fp:
            st = s2v.open(output)
            summary.already_complete = True
            summary.samples, summary.frames = len(st), int(st.offsets[-1])
            summary.seconds = time.perf_counter() - t0
            return summary
        if not overwrite:
            raise S2VError(f"{output} exists (use --overwrite to replace it)")
    partial = output.with_name(output.name + ".partial")
    _remove(partial)
    sink = _Sink(partial, fmt)
    try:
        if kind == "ctrgcn":
            samples, splits, num_classes = _import_npz(source, sink, dataset, benchmark, progress)
        else:
            samples, splits, num_classes = _import_pyskl(source, sink, progress)
        if dataset in CLASSES and num_classes > CLASSES[dataset]:
            raise S2VError(
                f"{source}: labels of {num_classes} classes, {dataset} has {CLASSES[dataset]}"
            )
        attrs = {
            "dataset": dataset,
            "layout": "ntu25",
            "label_names": label_names(dataset, CLASSES.get(dataset, num_classes)),
            "benchmarks": sorted(splits),
            "options": options,
            "imported_from": source.name,
            "fingerprint": fp,
            "tool": f"skeleton2vec {s2v.__version__}",
            "failed": [],
            "source": source.name,
        }
        sink.finish(samples, splits, attrs)
    except BaseException:
        sink.close()
        _remove(partial)
        raise
    if output.exists():
        _remove(output)
    os.replace(partial, output)
    summary.samples = len(samples["label"])
    summary.frames = int(sum(sink.lengths))
    summary.splits = {b: (len(p["train"]), len(p["test"])) for b, p in splits.items()}
    summary.bytes_out = _size(output)
    summary.seconds = time.perf_counter() - t0
    return summary
