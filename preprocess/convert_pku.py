"""Batch conversion of PKU-MMD (phase 1 or 2) into one store: parallel, ordered, atomic.

Per video, in a process pool: read and check the skeleton file, read the label file, cut every
labelled action into a clip (``--trim mamp``: ``seq[start:end]``; ``aimclr``:
``seq[start-1:end]``), truncate to ``max_frames`` (300, as MAMP), drop clips that are all zero,
optionally centre (the NTU rule), motion prior and checksums. The writer appends the clips in
video-name order, then the splits are built from the official split files. The store has the
NTU store's format (``joints`` (F, 2, 25, 3), actor 2 zero when absent) with PKU columns.

The store is written under ``OUT.partial`` and renamed when complete. Unlike the NTU
conversion it is not resumed (a whole phase converts in about a minute): an interrupted run
starts over when the same command is run again.
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import s2v
from s2v.errors import ParseError, S2VError
from s2v.motion import motion_prior
from s2v.preprocess.convert import (
    ProgressLog,
    Summary,
    _bar,
    _remove,
    _size,
    check_output,
    fingerprint,
    publish,
)
from s2v.preprocess.denoise import centre
from s2v.preprocess.parallel import Workers
from s2v.preprocess.pku import (
    PKU_ACTIONS,
    SPLIT_FILES,
    TRIMS,
    LabelRow,
    SplitFile,
    clip_bounds,
    parse_labels,
    parse_split_file,
    parse_video_name,
    read_skeleton,
    warm_up,
)
from s2v.store import StoreWriter

DATASETS = ("pku1", "pku2")

COLUMNS = {  # metadata column -> dtype, in the order of a row
    "name": str,  # VIDEO_k: the k-th labelled action of the video, from 0
    "video": str,
    "view": str,  # L, M or R
    "subject": np.int16,  # -1: not in PKU-MMD's names
    "action": np.int16,  # 1-based, as in the label file
    "label": np.int16,  # 0-based
    "start": np.int32,  # the label row's start_frame and end_frame, as written
    "end": np.int32,
    "confidence": np.int8,
    "frames": np.int32,  # frames stored (after truncation)
    "actors": np.int8,  # 2 if actor 2 has data in the clip, else 1
    "crc_joints": np.uint32,
    "crc_motion": np.uint32,
}


@dataclass(frozen=True)
class PkuOptions:
    """Everything that determines the store's content (its fingerprint covers all of it)."""

    dataset: str = "pku1"  # pku1 | pku2
    benchmarks: tuple[str, ...] = ()  # empty: xsub and xview
    trim: str = "mamp"  # mamp: seq[start:end]; aimclr: seq[start-1:end]
    center: bool = False  # MAMP does not centre PKU-MMD clips
    max_frames: int = 300  # MAMP truncates longer clips to their first 300 frames
    fmt: str = "zarr"
    motion_dtype: str = "float16"
    chunk_frames: int = 4096
    shard_chunks: int = 16

    def resolved_benchmarks(self) -> tuple[str, ...]:
        return self.benchmarks or tuple(SPLIT_FILES[self.dataset])


@dataclass
class PkuSummary(Summary):
    """What a PKU-MMD conversion did: ``converted`` counts clips, ``failed`` every fault
    (skeleton files, label rows, split files)."""

    videos: int = 0
    dropped_empty: int = 0
    truncated: int = 0
    splits: dict = field(default_factory=dict)  # benchmark -> (train, test) clip counts


@dataclass
class VideoResult:
    """One video's clips, sent from a worker to the writer."""

    index: int
    rows: list[dict] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)  # (T, 2, 25, 3) float32 each
    motion: list[np.ndarray] = field(default_factory=list)  # (T, 2, 25) each
    faults: list[str] = field(default_factory=list)
    dropped_empty: list[str] = field(default_factory=list)
    truncated: int = 0


@dataclass(frozen=True)
class VideoTask:
    index: int
    video: str
    skeleton: str  # path
    labels: str  # path
    skeleton_name: str  # how messages call the files: 'FOLDER/VIDEO.txt'
    labels_name: str


# ------------------------------------------------------------------------------------------
# one video
# ------------------------------------------------------------------------------------------


def convert_video(task: VideoTask, opts: PkuOptions) -> VideoResult:
    """Read, check and cut one video into clips (runs in a worker)."""
    res = VideoResult(task.index)
    try:
        text = Path(task.labels).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        res.faults.append(f"{task.labels_name}: no such label file (video {task.video} skipped)")
        return res
    except OSError as exc:
        res.faults.append(f"{task.labels_name}: cannot read: {exc.strerror}")
        return res
    rows, faults = parse_labels(text, task.labels_name)
    try:
        seq = read_skeleton(task.skeleton, task.skeleton_name)
    except ParseError as exc:
        res.faults.append(f"{exc} (video {task.video} skipped)")
        res.faults.extend(str(f) for f in faults)
        return res
    info = parse_video_name(task.video, opts.dataset)
    for row in rows:
        try:
            clip = cut_clip(seq, row, opts, task.labels_name, task.skeleton_name)
        except ParseError as exc:
            faults.append(exc)
            continue
        name = f"{task.video}_{row.index:03d}"
        if clip is None:
            res.dropped_empty.append(name)
            continue
        a, b = clip_bounds(row, opts.trim)
        res.truncated += b - a > len(clip)
        motion = motion_prior(clip).astype(opts.motion_dtype)
        res.joints.append(clip)
        res.motion.append(motion)
        res.rows.append(
            {
                "name": name,
                "video": task.video,
                "view": info.view,
                "subject": info.subject,
                "action": row.action,
                "label": row.action - 1,
                "start": row.start,
                "end": row.end,
                "confidence": row.confidence,
                "frames": len(clip),
                "actors": 2 if clip[:, 1].any() else 1,
                "crc_joints": zlib.crc32(clip.data),
                "crc_motion": zlib.crc32(motion.data),
            }
        )
    res.faults.extend(str(f) for f in sorted(faults, key=lambda f: f.line or 0))
    return res


def cut_clip(
    seq: np.ndarray, row: LabelRow, opts: PkuOptions, labels_name: str, skeleton_name: str
) -> np.ndarray | None:
    """The clip of one label row: float32 (T, 2, 25, 3), truncated to ``opts.max_frames``,
    centred if asked; None if it is all zero. Raises :class:`ParseError` (naming the label
    file's line) for a row outside the video, or a clip that cannot be centred."""
    a, b = clip_bounds(row, opts.trim)
    if a < 0 or b > len(seq):
        hint = " (--trim aimclr counts frames from 1)" if a < 0 <= row.start else ""
        raise ParseError(
            labels_name,
            f"frames {row.start}..{row.end} lie outside the video "
            f"({len(seq)} frames in {skeleton_name}){hint}",
            row.line,
        )
    # MAMP keeps the first 300 frames; a clip with no data in them is dropped (MAMP tests the
    # whole cut, so it would keep such a clip as an all-zero sample)
    clip = np.ascontiguousarray(seq[a : min(b, a + opts.max_frames)])
    if not clip.any():
        return None
    if opts.center:
        if not clip[:, 0].any():
            raise ParseError(
                labels_name,
                "actor 1 is absent from the whole clip, so it cannot be centred (--center)",
                row.line,
            )
        flat = centre(clip.reshape(len(clip), 150).copy(), labels_name)
        clip = flat.reshape(len(clip), 2, 25, 3)
    return clip


def _work(args: tuple[list[VideoTask], PkuOptions]) -> list[VideoResult]:
    batch, opts = args
    return [convert_video(t, opts) for t in batch]


def _pool(workers: int):
    """A process pool (None for one worker), created before the store is opened."""
    if workers <= 1:
        return contextlib.nullcontext(None)
    warm_up()
    motion_prior(np.zeros((2, 2, 25, 3), dtype=np.float32))
    return Workers(workers)


def _results(
    tasks: list[VideoTask], opts: PkuOptions, pool, workers: int, batch: int = 2
) -> Iterator[VideoResult]:
    """Results in task order; with a pool, a bounded number of batches in flight."""
    if pool is None:
        for t in tasks:
            yield convert_video(t, opts)
        return
    batches = [(tasks[k : k + batch], opts) for k in range(0, len(tasks), batch)]
    for done in pool.map(_work, batches):
        yield from done


# ------------------------------------------------------------------------------------------
# inputs and splits
# ------------------------------------------------------------------------------------------


def list_videos(raw_dir: Path, dataset: str) -> tuple[list[Path], int]:
    """(skeleton files of the phase in name order, other .txt files in the folder)."""
    if not raw_dir.is_dir():
        raise S2VError(f"{raw_dir}: not a directory")
    files, other = [], 0
    for p in sorted(raw_dir.glob("*.txt")):
        if parse_video_name(p.name, dataset) is None:
            other += 1
        else:
            files.append(p)
    if not files:
        example = "0002-L.txt" if dataset == "pku1" else "A01N01-L.txt"
        raise S2VError(f"{raw_dir}: no {dataset} skeleton files (named like {example})")
    return files, other


def find_split_file(splits_dir: Path, dataset: str, benchmark: str) -> Path:
    """The official split file of a benchmark in ``splits_dir``."""
    if not splits_dir.is_dir():
        raise S2VError(f"{splits_dir}: not a directory")
    names = SPLIT_FILES[dataset][benchmark]
    for n in names:
        if (splits_dir / n).is_file():
            return splits_dir / n
    raise S2VError(f"{splits_dir}: no {benchmark} split file ({' or '.join(names)})")


def make_splits(
    split_files: dict[str, Path], videos: set[str], clips_of: dict[str, list[int]]
) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """{benchmark: {'train', 'test'}} sample indices, and the faults of the split files.

    A part lists, in the order of its split file line, the clips of each video (in label-row
    order). IDs that are not skeleton files in RAW_DIR are reported (one message per line); a
    video listed for both parts stays in train. A split file without its lines is reported and
    its benchmark is left out.
    """
    splits: dict[str, dict[str, np.ndarray]] = {}
    faults: list[str] = []
    for bench, path in split_files.items():
        name = f"{path.parent.name}/{path.name}"
        try:
            sf = parse_split_file(path.read_text(encoding="utf-8", errors="replace"), name)
        except ParseError as exc:
            faults.append(f"{exc} ({bench} left out)")
            continue
        faults += _split_faults(sf, videos)
        train = set(sf.train)
        test = [v for v in sf.test if v not in train]
        splits[bench] = {
            "train": _indices(sf.train, clips_of),
            "test": _indices(test, clips_of),
        }
    return splits, faults


def _split_faults(sf: SplitFile, videos: set[str]) -> list[str]:
    faults = []
    for line, ids in ((2, sf.train), (4, sf.test)):
        unknown = [v for v in ids if v not in videos]
        if unknown:
            shown = ", ".join(unknown[:5]) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            noun = "video" if len(unknown) == 1 else "videos"
            faults.append(
                str(
                    ParseError(
                        sf.name, f"{len(unknown)} unknown {noun} (no skeleton file): {shown}", line
                    )
                )
            )
    train = set(sf.train)
    both = [v for v in sf.test if v in train]
    if both:
        shown = ", ".join(both[:5]) + (" ..." if len(both) > 5 else "")
        faults.append(
            str(ParseError(sf.name, f"also listed for training on line 2 (kept there): {shown}", 4))
        )
    return faults


def _indices(ids, clips_of: dict[str, list[int]]) -> np.ndarray:
    out = [i for v in ids for i in clips_of.get(v, [])]
    return np.asarray(out, dtype=np.int32)


# ------------------------------------------------------------------------------------------
# the conversion
# ------------------------------------------------------------------------------------------


def convert_pku(
    raw_dir: str | Path,
    labels_dir: str | Path,
    splits_dir: str | Path,
    output: str | Path,
    opts: PkuOptions,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_failure: Callable[[str], None] | None = None,
) -> PkuSummary:
    """Convert the PKU-MMD videos of ``raw_dir`` into the store ``output``; see the module
    docstring."""
    t0 = time.perf_counter()
    raw_dir, labels_dir, splits_dir = Path(raw_dir), Path(labels_dir), Path(splits_dir)
    output = Path(output)
    if opts.dataset not in DATASETS:
        raise S2VError(f"unknown dataset '{opts.dataset}' (pku1 or pku2)")
    if opts.trim not in TRIMS:
        raise S2VError(f"unknown trim '{opts.trim}' ({', '.join(TRIMS)})")
    if opts.max_frames < 1:
        raise S2VError(f"max_frames must be at least 1, got {opts.max_frames}")
    for b in opts.resolved_benchmarks():
        if b not in SPLIT_FILES[opts.dataset]:
            raise S2VError(f"{opts.dataset} has no benchmark '{b}' (xsub, xview)")
    files, other = list_videos(raw_dir, opts.dataset)
    if not labels_dir.is_dir():
        raise S2VError(f"{labels_dir}: not a directory")
    split_files = {
        b: find_split_file(splits_dir, opts.dataset, b) for b in opts.resolved_benchmarks()
    }
    label_files = [labels_dir / p.name for p in files]
    inputs = files + [p for p in label_files if p.is_file()] + list(split_files.values())
    fp = fingerprint(inputs, opts)
    summary = PkuSummary(output=str(output), outside_dataset=other, videos=len(files))
    summary.bytes_in = sum(p.stat().st_size for p in files)

    if check_output(output, fp, overwrite, summary):
        summary.seconds = time.perf_counter() - t0
        return summary
    partial = output.with_name(output.name + ".partial")
    log = ProgressLog(output.with_name(output.name + ".partial.progress"))
    head, _ = log.read()
    if (partial.exists() or log.path.exists()) and head != fp and not overwrite:
        raise S2VError(
            f"{partial} is an unfinished conversion of other inputs or options "
            "(use --overwrite to discard it)"
        )
    skel_dir, lab_dir = raw_dir.name or str(raw_dir), labels_dir.name or str(labels_dir)
    tasks = [
        VideoTask(
            i,
            p.stem,
            str(p),
            str(labels_dir / p.name),
            f"{skel_dir}/{p.name}",
            f"{lab_dir}/{p.name}",
        )
        for i, p in enumerate(files)
    ]
    rows: list[dict] = []
    failed: list[dict] = []
    dropped: list[str] = []
    n_workers = workers or os.cpu_count() or 1
    with _pool(n_workers) as pool:
        _remove(partial)
        log.start(fp)  # names the inputs of the unfinished conversion
        writer = StoreWriter(
            partial,
            opts.fmt,
            chunk_frames=opts.chunk_frames,
            shard_chunks=opts.shard_chunks,
            motion_dtype=opts.motion_dtype,
        )
        bar = _bar(len(tasks), 0, progress)
        try:
            for res in _results(tasks, opts, pool, n_workers):
                bar.update(1)
                for msg in res.faults:
                    failed.append({"name": msg.split(": ", 1)[0], "reason": msg})
                    if on_failure:
                        on_failure(msg)
                for joints, motion in zip(res.joints, res.motion, strict=True):
                    writer.append(joints, motion)
                rows.extend(res.rows)
                dropped.extend(res.dropped_empty)
                summary.truncated += res.truncated
        except KeyboardInterrupt:
            bar.close()
            writer.close()
            raise S2VError(
                f"interrupted: rerun the same command to start over ({partial})"
            ) from None
        bar.close()
        if not rows:
            writer.close()
            _remove(partial)
            log.path.unlink(missing_ok=True)
            raise S2VError(f"{raw_dir}: no clip could be converted ({len(failed)} faults)")
        columns = _columns(rows)
        offsets = np.concatenate([[0], np.cumsum(columns["frames"], dtype=np.int64)])
        clips_of: dict[str, list[int]] = {}
        for i, v in enumerate(columns["video"]):
            clips_of.setdefault(v, []).append(i)
        splits, split_faults = make_splits(split_files, {p.stem for p in files}, clips_of)
        for msg in split_faults:
            failed.append({"name": msg.split(": ", 1)[0], "reason": msg})
            if on_failure:
                on_failure(msg)
        attrs = {
            "dataset": opts.dataset,
            "layout": "ntu25",
            "label_names": list(PKU_ACTIONS),
            "benchmarks": list(splits),
            "options": asdict(opts),
            "trim": opts.trim,
            "max_frames": opts.max_frames,
            "center": opts.center,
            "centre": "joint 1 of actor 1 at its first non-zero frame" if opts.center else "none",
            "align_view": False,
            "fingerprint": fp,
            "tool": f"skeleton2vec {s2v.__version__}",
            "videos": len(files),
            "dropped_empty": dropped,
            "truncated": summary.truncated,
            "outside_dataset": other,
            "failed": failed,
            "source": str(raw_dir.name),
        }
        writer.finish(offsets, columns, splits, attrs)
    publish(partial, output, log)

    summary.converted = len(rows)
    summary.failed = failed
    summary.dropped_empty = len(dropped)
    summary.frames = int(offsets[-1])
    summary.splits = {b: (len(p["train"]), len(p["test"])) for b, p in splits.items()}
    summary.bytes_out = _size(output)
    summary.seconds = time.perf_counter() - t0
    return summary


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for col, dtype in COLUMNS.items():
        values = [r[col] for r in rows]
        out[col] = np.array(values, dtype=object) if dtype is str else np.array(values, dtype)
    return out


def default_output(dataset: str, fmt: str) -> Path:
    """``pku1.zarr`` / ``pku2.h5`` in the current directory."""
    return Path(f"{dataset}.{'zarr' if fmt == 'zarr' else 'h5'}")
