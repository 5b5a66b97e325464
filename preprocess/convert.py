"""Batch conversion of a raw NTU RGB+D folder into one store: parallel, ordered, resumable.

Pipeline (design.md §4): list and sort the files -> in batches, in worker threads
(parallel.py; the kernels release the GIL): read, parse, denoise, centre, (align), motion prior,
checksums (fastpath.py does most files in one kernel call per batch) -> append in name order to
the store. The store is written under ``OUT.partial`` with a progress log ``OUT.partial.progress`` (one JSON
line per committed block); it is renamed to OUT only when complete. Rerunning the same command
resumes from the last committed block; output bytes do not depend on the worker count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import s2v
from s2v.errors import ParseError, S2VError
from s2v.motion import motion_prior
from s2v.preprocess import fastpath
from s2v.preprocess.align import align_view
from s2v.preprocess.denoise import PRESETS, denoise
from s2v.preprocess.ntu import (
    Body,
    RawSkeleton,
    group_bodies,
    parse_name,
    parse_skeleton_bytes,
    warm_up,
)
from s2v.preprocess.parallel import Threads
from s2v.preprocess.splits import (
    BENCHMARKS,
    LIMITS,
    NTU_ACTIONS,
    builtin_missing_list,
    make_splits,
    read_name_list,
)
from s2v.store import StoreWriter, open_backend

COLUMNS = {  # metadata column -> dtype, in the order of a row
    "name": str,
    "setup": np.int16,
    "camera": np.int8,
    "subject": np.int16,
    "replication": np.int8,
    "action": np.int16,
    "label": np.int16,
    "frames": np.int32,
    "actors": np.int8,
    "slots": np.int8,
    "source_frames": np.int32,
    "bodies": np.int16,
    "crc_joints": np.uint32,
    "crc_motion": np.uint32,
}


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that determines the store's content (its fingerprint covers all of it)."""

    dataset: str = "ntu60"  # ntu60 | ntu120
    benchmarks: tuple[str, ...] = ()  # empty: all of the dataset's
    preset: str = "ctrgcn"
    align_view: bool = False
    missing_list: str | None = None  # None: the built-in official list
    keep_missing: bool = False
    fmt: str = "zarr"
    motion_dtype: str = "float16"
    chunk_frames: int = 4096
    shard_chunks: int = 16

    def resolved_benchmarks(self) -> tuple[str, ...]:
        return self.benchmarks or tuple(BENCHMARKS[self.dataset])


@dataclass
class Summary:
    """What a conversion did (printed by the CLI, stored in the attributes)."""

    output: str = ""
    converted: int = 0
    skipped_missing: int = 0
    outside_dataset: int = 0
    failed: list[dict] = field(default_factory=list)
    frames: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    already_complete: bool = False


@dataclass
class FileResult:
    """One file's outcome, sent from a worker to the writer."""

    index: int
    name: str
    nbytes: int
    error: str | None = None
    joints: np.ndarray | None = None  # (F, 2, 25, 3) float32
    motion: np.ndarray | None = None  # (F, 2, 25) motion dtype
    row: dict | None = None


class BatchResults(list):
    """A batch's FileResults in order. ``joints``/``motion``: when every sample of the batch
    came out of the batch kernel, all their frames in one pair of arrays (the samples' arrays
    are consecutive slices of them), so the writer takes the batch in one copy; else None."""

    joints: np.ndarray | None = None
    motion: np.ndarray | None = None


# ------------------------------------------------------------------------------------------
# one file
# ------------------------------------------------------------------------------------------


def convert_file(index: int, path: str, opts: ConvertOptions) -> FileResult:
    """Read, parse, denoise, centre, align, motion prior of one file (runs in a worker)."""
    name = os.path.basename(path)[: -len(".skeleton")]
    nbytes = 0
    try:
        ids = parse_name(name)
        if ids is None:
            raise ParseError(name, "not an NTU sample name (SsssCcccPpppRrrrAaaa)")
        try:
            with open(path, "rb", buffering=0) as f:  # no Path objects: ~10 % of the Python here
                data = f.read()
        except OSError as exc:
            raise ParseError(name, f"cannot read: {exc.strerror}") from None
        nbytes = len(data)
        raw = parse_skeleton_bytes(data, name)
    except ParseError as exc:
        return FileResult(index, name, nbytes, error=str(exc))
    return _denoised(index, nbytes, ids, raw, opts)


def _denoised(index: int, nbytes: int, ids, raw: RawSkeleton, opts: ConvertOptions) -> FileResult:
    """A parsed file's result: bodies denoised, merged and centred, (aligned), motion prior."""
    try:
        den = denoise(raw.name, group_bodies(raw), raw.num_valid_frames, opts.preset)
    except ParseError as exc:
        return FileResult(index, raw.name, nbytes, error=str(exc))
    joints = den.joints
    if opts.align_view:
        joints = align_view(joints)
    motion = motion_prior(joints).astype(opts.motion_dtype)
    return _result(
        index, raw.name, nbytes, ids, joints, motion, den.slots, raw.num_frames, den.bodies
    )


def _result(
    index: int,
    name: str,
    nbytes: int,
    ids,
    joints: np.ndarray,
    motion: np.ndarray,
    slots: int,
    source_frames: int,
    bodies: int,
    actors: int | None = None,
) -> FileResult:
    """A converted sample's result with its metadata row (and checksums)."""
    row = {
        "name": name,
        "setup": ids.setup,
        "camera": ids.camera,
        "subject": ids.subject,
        "replication": ids.replication,
        "action": ids.action,
        "label": ids.action - 1,
        "frames": len(joints),
        "actors": actors if actors is not None else (2 if joints[:, 1].any() else 1),
        "slots": slots,
        "source_frames": source_frames,
        "bodies": bodies,
        "crc_joints": zlib.crc32(joints.data),
        "crc_motion": zlib.crc32(motion.data),
    }
    return FileResult(index, name, nbytes, joints=joints, motion=motion, row=row)


def convert_batch(batch: list[tuple[int, str]], opts: ConvertOptions) -> BatchResults:
    """``convert_file`` for several files, the same results: one kernel call does them all
    (see ``fastpath``); only what it cannot take goes through ``convert_file`` again (which
    also gives the precise error)."""
    if opts.align_view or not batch:
        return BatchResults(convert_file(i, p, opts) for i, p in batch)
    paths = [p for _, p in batch]
    names = [os.path.basename(p)[: -len(".skeleton")] for p in paths]
    ids = [parse_name(n) for n in names]
    buf, starts, sizes, readable = fastpath.read_batch(paths)
    ctrgcn = opts.preset == "ctrgcn"
    info, xyz, body_id, frame, out_j, out_m, used = fastpath.parse_batch(buf, starts, sizes, ctrgcn)
    motion = out_m[:used].astype(opts.motion_dtype)
    results = BatchResults()
    joined = True  # every sample is a slice of out_j / motion
    rows = info.tolist()  # Python ints, once
    for k, (index, path) in enumerate(batch):
        status, r0, rec, declared, valid, o, frames, slots, bodies, actors = rows[k]
        name, nbytes = names[k], int(sizes[k])
        if ids[k] is None or not readable[k] or status == fastpath.PER_FILE:
            results.append(convert_file(index, path, opts))
            joined = joined and results[-1].error is not None
        elif status == fastpath.PARSED:  # several bodyIDs, preset none: numpy
            joined = False
            raw = RawSkeleton(
                name, declared, valid, xyz[r0 : r0 + rec], body_id[r0 : r0 + rec],
                frame[r0 : r0 + rec],
            )  # fmt: skip
            results.append(_denoised(index, nbytes, ids[k], raw, opts))
        else:
            j, m = out_j[o : o + frames], motion[o : o + frames]
            res = _result(index, name, nbytes, ids[k], j, m, slots, declared, bodies, actors)
            results.append(res)
    if joined:
        results.joints, results.motion = out_j[:used], motion
    return results


def _work(args: tuple[list[tuple[int, str]], ConvertOptions]) -> BatchResults:
    """One batch, in a worker thread."""
    return convert_batch(*args)


def _pool(workers: int):
    """The worker threads (None for one worker); their kernels loaded first."""
    if workers <= 1:
        return contextlib.nullcontext(None)
    warm_up()  # the parser's kernels, the batch kernel; then denoising's and the motion prior's
    fastpath.warm_up()
    two = [Body(i, np.ones((12, 25, 3), dtype=np.float32), 0) for i in (1, 2)]
    denoise("warm-up", two[:1], 12)
    denoise("warm-up", two, 12)
    motion_prior(np.zeros((2, 2, 25, 3), dtype=np.float32))
    return Threads(workers)


def _batches(
    tasks: list[tuple[int, str]], opts: ConvertOptions, pool, workers: int, batch: int = 8
) -> Iterator[BatchResults]:
    """Batches of results in task order. With a pool: a bounded number of batches in flight,
    so memory stays flat however many files there are."""
    batches = [(tasks[k : k + batch], opts) for k in range(0, len(tasks), batch)]
    if pool is None:
        for b in batches:
            yield _work(b)
        return
    yield from pool.map(_work, batches)


# ------------------------------------------------------------------------------------------
# inputs, fingerprint, progress log
# ------------------------------------------------------------------------------------------


def list_inputs(raw_dir: Path, opts: ConvertOptions) -> tuple[list[Path], list[str], int]:
    """(files to convert in name order, names skipped as missing, files outside the dataset)."""
    if not raw_dir.is_dir():
        raise S2VError(f"{raw_dir}: not a directory")
    found: dict[str, Path] = {}
    for p in raw_dir.rglob("*.skeleton"):
        stem = p.name[: -len(".skeleton")]
        if stem in found:
            raise S2VError(f"{p}: sample {stem} found twice (also {found[stem]})")
        found[stem] = p
    if not found:
        raise S2VError(f"{raw_dir}: no .skeleton files found")
    limits = LIMITS[opts.dataset]
    outside = 0
    names = []
    for stem in sorted(found):
        ids = parse_name(stem)
        if ids is not None and (ids.setup > limits["setup"] or ids.action > limits["action"]):
            outside += 1
            continue
        names.append(stem)
    missing: set[str] = set()
    if not opts.keep_missing:
        src = opts.missing_list or builtin_missing_list(opts.dataset)
        if not Path(src).is_file():
            raise S2VError(f"{src}: missing-skeleton list not found")
        missing = set(read_name_list(src))
    skipped = [n for n in names if n in missing]
    files = [found[n] for n in names if n not in missing]
    return files, skipped, outside


def fingerprint(files: list[Path], opts: ConvertOptions) -> str:
    """Identifies a conversion: options + every input's name and size."""
    h = hashlib.sha256(json.dumps(asdict(opts), sort_keys=True).encode())
    for p in files:
        h.update(f"{p.name}:{p.stat().st_size};".encode())
    return h.hexdigest()[:32]


def _store_fingerprint(path: Path) -> str | None:
    try:
        be = open_backend(path, "r")
        try:
            return be.attrs().get("fingerprint")
        finally:
            be.close()
    except S2VError:
        return None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_output(output: Path, fp: str, overwrite: bool, summary: Summary) -> bool:
    """True if ``output`` is already complete for fingerprint ``fp`` (``summary`` is filled in
    from it). Raises if it holds a store made from other inputs or options and ``overwrite`` is
    off; returns False when there is nothing there or it may be replaced."""
    if not output.exists():
        return False
    if _store_fingerprint(output) == fp:
        st = s2v.open(output)
        summary.already_complete = True
        summary.converted = len(st)
        summary.frames = int(st.offsets[-1])
        summary.failed = list(st.attrs.get("failed", []))
        summary.bytes_out = _size(output)
        return True
    if not overwrite:
        raise S2VError(
            f"{output} exists and was made from other inputs or options "
            "(use --overwrite to replace it)"
        )
    return False


class ProgressLog:
    """Append-only JSON lines: a header, then one record per committed block."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, fp: str) -> None:
        with open(self.path, "w") as f:
            f.write(json.dumps({"fingerprint": fp}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> tuple[str | None, list[dict]]:
        """(fingerprint, records); a torn last line (killed while writing) is ignored."""
        if not self.path.exists():
            return None, []
        lines = self.path.read_text().splitlines()
        try:
            head = json.loads(lines[0])["fingerprint"]
        except (IndexError, ValueError, KeyError):
            return None, []
        records = []
        for line in lines[1:]:
            try:
                records.append(json.loads(line))
            except ValueError:
                break
        return head, records

    def commit(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())


# ------------------------------------------------------------------------------------------
# the conversion
# ------------------------------------------------------------------------------------------


def publish(partial: Path, output: Path, log: ProgressLog) -> None:
    """The complete ``partial`` store becomes ``output``; its progress log goes."""
    if output.exists():
        _remove(output)  # --overwrite: the old store goes only once the new one is complete
    os.replace(partial, output)
    log.path.unlink(missing_ok=True)


def convert(
    raw_dir: str | Path,
    output: str | Path,
    opts: ConvertOptions,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_failure: Callable[[str], None] | None = None,
) -> Summary:
    """Convert every sample of ``raw_dir`` into the store ``output``; see the module docstring."""
    t0 = time.perf_counter()
    raw_dir, output = Path(raw_dir), Path(output)
    if opts.dataset not in BENCHMARKS:
        raise S2VError(f"unknown dataset '{opts.dataset}' (ntu60 or ntu120)")
    if opts.preset not in PRESETS:
        raise S2VError(f"unknown preset '{opts.preset}' ({', '.join(PRESETS)})")
    for b in opts.resolved_benchmarks():
        if b not in BENCHMARKS[opts.dataset]:
            raise S2VError(f"{opts.dataset} has no benchmark '{b}'")
    files, skipped, outside = list_inputs(raw_dir, opts)
    fp = fingerprint(files, opts)
    summary = Summary(output=str(output), skipped_missing=len(skipped), outside_dataset=outside)
    summary.bytes_in = sum(p.stat().st_size for p in files)

    if check_output(output, fp, overwrite, summary):
        summary.seconds = time.perf_counter() - t0
        return summary

    partial = output.with_name(output.name + ".partial")
    log = ProgressLog(output.with_name(output.name + ".partial.progress"))
    head, records = log.read()
    if partial.exists() or log.path.exists():
        if head != fp:
            if not overwrite:
                raise S2VError(
                    f"{partial} is an unfinished conversion of other inputs or options "
                    "(use --overwrite to discard it)"
                )
            head, records = None, []
    rows: list[dict] = []
    failed: list[dict] = []
    for rec in records:
        rows.extend(_row_dict(r) for r in rec["rows"])
        failed.extend(rec["failed"])
    committed = records[-1]["committed"] if records else 0
    next_file = records[-1]["next_file"] if records else 0
    skip = records[-1]["skip"] if records else 0
    writer_opts = dict(
        chunk_frames=opts.chunk_frames,
        shard_chunks=opts.shard_chunks,
        motion_dtype=opts.motion_dtype,
    )
    n_workers = workers or os.cpu_count() or 1
    with _pool(n_workers) as pool:
        writer = None
        if head == fp and partial.exists():
            try:
                writer = StoreWriter(
                    partial, opts.fmt, resume_frames=committed, pool=pool, **writer_opts
                )
            except S2VError:
                writer = None  # damaged partial (e.g. HDF5 killed mid-write): start over
        if writer is None:
            _remove(partial)
            rows, failed, committed, next_file, skip = [], [], 0, 0, 0
            log.start(fp)
            writer = StoreWriter(partial, opts.fmt, pool=pool, **writer_opts)
        summary.resumed_from = next_file

        # processed, not yet committed: (file index, row | None, failure | None, first frame)
        pending: list[tuple[int, dict | None, dict | None, int]] = []
        bar = _bar(len(files), next_file, progress)
        tasks = [(i, str(files[i])) for i in range(next_file, len(files))]
        try:
            for batch in _batches(tasks, opts, pool, n_workers):
                bar.update(len(batch))
                whole = batch.joints is not None and not skip  # the batch in one copy
                start = writer.total_frames
                for res in batch:
                    if res.error is not None:
                        fail = {"name": res.name, "reason": res.error}
                        pending.append((res.index, None, fail, start))
                        if on_failure:
                            on_failure(res.error)
                        continue
                    if whole:
                        pending.append((res.index, res.row, None, start))
                        start += len(res.joints)
                        continue
                    joints, motion = res.joints, res.motion
                    if skip:  # resuming inside this file: its first frames are already written
                        joints, motion, start = joints[skip:], motion[skip:], start - skip
                        skip = 0
                    pending.append((res.index, res.row, None, start))
                    if writer.append(joints, motion):
                        pending = _commit(log, writer.committed, pending, rows, failed, len(files))
                    start = writer.total_frames
                if whole and writer.append(batch.joints, batch.motion):
                    pending = _commit(log, writer.committed, pending, rows, failed, len(files))
            if writer.poll(wait=True):  # blocks still being written by the pool
                pending = _commit(log, writer.committed, pending, rows, failed, len(files))
        except KeyboardInterrupt:
            bar.close()
            writer.close()
            raise S2VError(f"interrupted: rerun the same command to resume ({partial})") from None
    bar.close()

    for _idx, row, fail, _start in pending:
        if row is not None:
            rows.append(row)
        else:
            failed.append(fail)
    if not rows:
        writer.close()
        _remove(partial)
        log.path.unlink(missing_ok=True)
        raise S2VError(f"{raw_dir}: no file could be converted ({len(failed)} failed)")
    columns = _columns(rows)
    offsets = np.concatenate([[0], np.cumsum(columns["frames"], dtype=np.int64)])
    benchmarks = opts.resolved_benchmarks()
    splits = make_splits(opts.dataset, columns, benchmarks)
    n_classes = 60 if opts.dataset == "ntu60" else 120
    attrs = {
        "dataset": opts.dataset,
        "layout": "ntu25",
        "label_names": list(NTU_ACTIONS[:n_classes]),
        "benchmarks": list(benchmarks),
        "options": asdict(opts),
        "preset": opts.preset,
        "align_view": opts.align_view,
        "centre": "joint 1 of actor 1 at its first non-zero frame",
        "fingerprint": fp,
        "tool": f"skeleton2vec {s2v.__version__}",
        "skipped_missing": len(skipped),
        "outside_dataset": outside,
        "failed": failed,
        "source": str(raw_dir.name),
    }
    writer.finish(offsets, columns, splits, attrs)
    publish(partial, output, log)

    summary.converted = len(rows)
    summary.failed = failed
    summary.frames = int(offsets[-1])
    summary.bytes_out = _size(output)
    summary.seconds = time.perf_counter() - t0
    return summary


def _commit(
    log: ProgressLog,
    committed: int,
    pending: list[tuple[int, dict | None, dict | None, int]],
    rows: list[dict],
    failed: list[dict],
    n_files: int,
) -> list:
    """Record the entries whose frames are all written; return the rest."""
    done_rows, done_failed = [], []
    k = 0
    for k, (_idx, row, fail, start) in enumerate(pending):  # noqa: B007
        n = row["frames"] if row is not None else 0
        if start + n > committed:
            break
        (done_rows if row is not None else done_failed).append(row if row is not None else fail)
    else:
        k = len(pending)
    rest = pending[k:]
    next_file = rest[0][0] if rest else (pending[-1][0] + 1 if pending else n_files)
    skip = committed - rest[0][3] if rest else 0
    log.commit(
        {
            "committed": committed,
            "next_file": next_file,
            "skip": max(skip, 0),
            "rows": [[r[c] for c in COLUMNS] for r in done_rows],  # values in COLUMNS order
            "failed": done_failed,
        }
    )
    rows.extend(done_rows)
    failed.extend(done_failed)
    return rest


def _row_dict(row: list | dict) -> dict:
    """A row from the progress log: a list in COLUMNS order (a dict in logs of earlier versions)."""
    return row if isinstance(row, dict) else dict(zip(COLUMNS, row, strict=True))


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for col, dtype in COLUMNS.items():
        values = [r[col] for r in rows]
        out[col] = np.array(values, dtype=object) if dtype is str else np.array(values, dtype)
    return out


def _bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="file",
        desc="converting",
        disable=not enabled,
        dynamic_ncols=True,
        file=sys.stderr,
    )


def default_output(dataset: str, fmt: str) -> Path:
    """``ntu60.zarr`` / ``ntu120.h5`` in the current directory."""
    return Path(f"{dataset}.{'zarr' if fmt == 'zarr' else 'h5'}")
