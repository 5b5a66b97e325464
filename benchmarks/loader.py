"""Loader throughput: samples/s of SkeletonDataset (temporal sampling + rotation on the batch).

Compares, in one run and with the same sampling, batch size and worker counts:

    baseline   the reference layout: a padded in-RAM float32 array (N, 300, 150), clips gathered
               from it (clip only, no motion prior: the baseline does less work than ours)
    memory     SkeletonDataset(in_memory=True): joints + motion read once into RAM
    zarr, h5   SkeletonDataset streaming from the store, fully shuffled order (1-chunk blocks)
    +block     the same with make_loader(block_window=4) and block_chunks=2: shuffled runs of
               4 blocks of 2 chunks, each worker reading its own runs

Every batch is rotated on the main process (``random_rotation``), as the training loop does.
Reported per configuration: wall-clock samples/s and samples per CPU second (main process and
workers together, read from /proc: the rate per fully used core, robust to other load on the
host). Budget (docs/design.md §6): at least 2,000 samples/s per core. Default run (3,000 synthetic clips
of 40-300 frames, 2 s per configuration) takes about 1.5 minutes on 2 cores:

    python benchmarks/loader.py                       # build stores in a temporary folder
    python benchmarks/loader.py --store ntu60.zarr    # measure a real store
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

import s2v
from s2v.store import write_store
from s2v.train.augment import random_rotation
from s2v.train.data import SkeletonDataset, gather, make_loader
from s2v.train.sampling import TemporalSampler

PAD = 300  # the reference's padded length


def smooth_clips(n: int, seed: int = 0, min_t: int = 40, max_t: int = 300) -> list[np.ndarray]:
    """n clips (T, 2, 25, 3) float32: a random pose moved by a few slow sinusoids per joint plus
    sensor-like noise (so the store compresses like real data, not like constants); every third
    clip has a second actor."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        t = int(rng.integers(min_t, max_t + 1))
        time_ = np.arange(t, dtype=np.float32)[:, None, None, None, None] / 30.0  # seconds
        freq = rng.uniform(0.1, 1.5, size=(1, 3, 2, 25, 3)).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, size=(1, 3, 2, 25, 3)).astype(np.float32)
        amp = rng.uniform(0.0, 0.1, size=(1, 3, 2, 25, 3)).astype(np.float32)
        motion = (amp * np.sin(2 * np.pi * freq * time_ + phase)).sum(axis=1)
        pose = rng.normal(0, 0.3, size=(1, 2, 25, 3)).astype(np.float32)
        noise = rng.normal(0, 0.003, size=(t, 2, 25, 3)).astype(np.float32)
        clip = pose + motion + noise
        if i % 3:
            clip[:, 1] = 0.0
        clips.append(clip.astype(np.float32))
    return clips


def build_stores(folder: Path, n: int, classes: int = 60) -> list[Path]:
    """A Zarr and an HDF5 store of the same n synthetic clips, with an xsub split."""
    t0 = time.perf_counter()
    clips = smooth_clips(n)
    labels = (np.arange(n) % classes).astype(np.int16)
    idx = np.arange(n)
    splits = {"xsub": {"train": idx[idx % 5 != 0], "test": idx[idx % 5 == 0]}}
    attrs = {"dataset": "bench", "label_names": [f"class {k}" for k in range(classes)]}
    paths = []
    for suffix in (".zarr", ".h5"):
        path = folder / f"bench{suffix}"
        write_store(path, clips, {"label": labels}, splits, attrs)
        paths.append(path)
    frames = sum(len(c) for c in clips)
    print(
        f"built {n} clips, {frames} frames ({frames * 600 / 1e6:.0f} MB raw) in "
        f"{time.perf_counter() - t0:.1f} s: "
        + ", ".join(f"{p.name} {_size(p) / 1e6:.0f} MB" for p in paths)
    )
    return paths


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class PaddedBaseline(Dataset):
    """The reference layout: x (N, 300, 150) float32 in RAM, valid lengths known; same sampling.

    Returns (x (M, T, V, C), label) like the reference feeders (no motion prior).
    """

    def __init__(self, ds: SkeletonDataset) -> None:
        """Pad the clips of an in-memory dataset."""
        n = len(ds)
        self.x = np.zeros((n, PAD, 150), dtype=np.float32)
        self.lengths = np.minimum(ds.lengths, PAD)
        for i in range(n):
            a, t = int(ds.starts[i]), int(self.lengths[i])
            self.x[i, :t] = ds.joints[a : a + t].reshape(t, 150)
        self.labels = ds.labels
        self.sampler = ds.sampler
        self.seed = 0
        self._rng: np.random.Generator | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pid != os.getpid():
            info = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng(info.seed if info else self.seed)
            self._pid = os.getpid()
        n = int(self.lengths[i])
        joints = self.x[i, :n].reshape(n, 2, 25, 3)
        pos = self.sampler.positions(n, self._rng)
        x, _ = gather(joints, joints[..., 0], pos)  # same gather; its motion output is dropped
        return torch.from_numpy(x[0]), torch.tensor(self.labels[i], dtype=torch.int64)


def _cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system, all threads) used so far by this process and ``pids``."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def measure(
    ds: Dataset, workers: int, batch: int, seconds: float, block_window: int = 0
) -> tuple[float, float]:
    """(samples per second, samples per CPU second of the main process and its workers) over
    ``seconds`` after one warm-up batch, rotating each batch like training. The second is
    robust to other load on the host: it is the rate per fully used core."""
    loader = make_loader(
        ds, batch, True, workers, seed=0, drop_last=True, block_window=block_window
    )
    gen = torch.Generator().manual_seed(0)
    it = iter(loader)
    next(it)  # warm-up: worker start, store open, first chunks
    pids = [w.pid for w in getattr(it, "_workers", [])]  # the loader's worker processes
    count, epoch = 0, 0
    cpu0, t0 = _cpu_seconds(pids), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try:
            x = next(it)[0]
        except StopIteration:
            epoch += 1
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            it = iter(loader)
            continue
        random_rotation(x, generator=gen)
        count += len(x)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds(pids) - cpu0
    del it, loader  # stop persistent workers
    return count / wall, count / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--store", type=Path, help="measure this store instead of synthetic ones")
    ap.add_argument("--benchmark", default="xsub", help="split to read (default: xsub)")
    ap.add_argument("--clips", type=int, default=3000, help="synthetic clips to build")
    ap.add_argument("--sampler", choices=["uniform", "crop_resize"], default="uniform")
    ap.add_argument("--batch", type=int, default=128, help="batch size")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="worker counts")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per configuration")
    ap.add_argument("--window", type=int, default=4, help="block_window of the +block rows")
    ap.add_argument("--repeat", type=int, default=1, help="measure each row this many times")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one core per process: rates per process are rates per core

    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory(prefix="s2v-loader-")
        stores = build_stores(Path(tmp.name), args.clips)
    else:
        stores = [args.store]
    frames = 90 if args.sampler == "uniform" else 120
    sampler = TemporalSampler(args.sampler, frames)

    def make(path: Path, **kw) -> SkeletonDataset:
        return SkeletonDataset(path, args.benchmark, sampler=sampler, **kw)

    t0 = time.perf_counter()
    memory = make(stores[0], in_memory=True)
    baseline = PaddedBaseline(memory)
    # (name, dataset factory, block window); streaming datasets are made fresh per measurement
    # so that no run starts with blocks cached by the one before
    rows: list[tuple[str, Callable[[], Dataset], int]] = [
        ("baseline (padded RAM)", lambda: baseline, 0),
        ("memory", lambda: memory, 0),
    ]
    for path in stores:
        fmt = s2v.store.detect_format(path)
        rows.append((fmt, lambda path=path: make(path), 0))
        rows.append((f"{fmt} +block", lambda path=path: make(path, block_chunks=2), args.window))
    print(
        f"{len(memory)} samples of {stores[0].name} ({args.benchmark}/train), sampler "
        f"{args.sampler} T={frames}, batch {args.batch}, {os.cpu_count()} cores; "
        f"datasets ready in {time.perf_counter() - t0:.1f} s"
    )

    results: dict[tuple[str, int], tuple[float, float]] = {}
    for _ in range(args.repeat):  # best of: other processes on the host add noise
        for name, factory, window in rows:
            for w in args.workers:
                rate = measure(factory(), w, args.batch, args.seconds, window)
                best = results.get((name, w), (0.0, 0.0))
                results[name, w] = (max(rate[0], best[0]), max(rate[1], best[1]))

    head = f"{'':<22}" + "".join(f"{f'--- {w} workers ---':>33}" for w in args.workers)
    print(head)
    cols = f"{'samples/s':>11}{'/cpu-s':>8}{'x base':>7}{'x b/cpu':>8}"
    print(f"{'source':<22}" + cols * len(args.workers))
    print("-" * len(head))
    for name, _, _ in rows:
        line = f"{name:<22}"
        for w in args.workers:
            (rate, per_cpu), (base, base_cpu) = results[name, w], results[rows[0][0], w]
            line += f"{rate:>11,.0f}{per_cpu:>8,.0f}{rate / base:>7.2f}{per_cpu / base_cpu:>8.2f}"
        print(line)
    print(
        "samples/s: wall-clock rate, rotation on the batch included; /cpu-s: samples per CPU "
        "second of the\nmain process and its workers together (= per fully used core; robust to "
        "other load on the host);\nx base, x b/cpu: the same two as ratios to the padded "
        "baseline with the same workers. Budget: >= 2,000 per core."
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
