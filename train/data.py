"""The streaming dataset: store samples -> sampled clips, motion priors and labels; the loader.

``SkeletonDataset`` holds the store's path (a lazily opened :class:`s2v.Store`) and a few numpy
arrays (sample numbers, first frames, lengths, labels): no per-sample Python objects, so it forks
cheaply into DataLoader workers, where each worker opens the store for itself.

Reading. Zarr and HDF5 decode whole chunks (4096 frames by default, a few dozen samples), and a
zarr read costs a few ms whatever its size. So the dataset reads whole chunk-aligned blocks into a
small per-process LRU cache and serves samples from it: in an order that stays inside a few chunks
for a while (:class:`BlockShuffleSampler`, ``make_loader(block_window=...)``) each chunk is
decoded about once per worker and epoch. ``in_memory=True`` reads both arrays once instead
(shared copy-on-write by forked workers).

Randomness. Temporal sampling (and rotation with ``rotate=True``) draws from one numpy Generator
per process: in a DataLoader worker it is seeded with torch's per-worker seed (the loader's
seeded ``generator`` -> base seed + worker id), in the main process with ``seed``. A run is
reproducible from its seeds; workers and epochs draw different crops. Rotation normally runs on the
batch on the training device (``s2v.train.augment.random_rotation``), not here.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, get_worker_info

from s2v.store import Store
from s2v.train.augment import MAX_ANGLE, rotate, rotation_matrices
from s2v.train.sampling import Positions, TemporalSampler

CACHE_BLOCKS = 8  # decoded blocks kept per process: 8 x (2.4 + 0.4) MB with the default chunks


class BlockCache:
    """Chunk-aligned blocks of the joints and motion arrays, decoded once, least recently used
    evicted. One per process (backend handles do not survive a fork)."""

    def __init__(self, store: Store, block_frames: int, capacity: int = CACHE_BLOCKS) -> None:
        self.joints = store.joints  # backend arrays, fetched once: a zarr lookup costs ~ms
        self.motion = store.motion_array
        self.total = int(store.offsets[-1])
        self.block_frames = block_frames
        self.capacity = max(1, capacity)
        self.blocks: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.decoded = 0  # blocks read from the backend, for benchmarks
        # Zarr stores in this tool's shard layout: chunks decoded straight from the shard files
        self.readers = store.chunk_readers()
        if self.readers is not None and block_frames % self.readers[0].fmt.chunk_frames:
            self.readers = None

    def _block(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self.blocks.get(k)
        if hit is not None:
            self.blocks.move_to_end(k)
            return hit
        a, b = k * self.block_frames, min(self.total, (k + 1) * self.block_frames)
        if self.readers is None:
            hit = (np.asarray(self.joints[a:b]), np.asarray(self.motion[a:b]))
        else:
            hit = self._direct(a, b)
        self.decoded += 1
        self.blocks[k] = hit
        if len(self.blocks) > self.capacity:
            self.blocks.popitem(last=False)
        return hit

    def _direct(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames a:b (a whole block, or the array's tail) through the shard readers (fresh
        arrays: views of a block may outlive its place in the cache)."""
        rj, rm = self.readers
        j = np.empty((b - a, *self.joints.shape[1:]), dtype=np.float32)
        m = np.empty((b - a, *self.motion.shape[1:]), dtype=self.motion.dtype)
        cf = rj.fmt.chunk_frames
        for c in range(a // cf, (b + cf - 1) // cf):
            lo, hi = c * cf - a, min(b, (c + 1) * cf) - a
            rj.read_into(c, j[lo:hi])
            rm.read_into(c, m[lo:hi])
        return j, m

    def read(self, a: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames a:a+n: joints (n, 2, 25, 3) float32 and motion (n, 2, 25) as stored; views of
        the cached block when the range lies in one block."""
        bf = self.block_frames
        first, last = a // bf, (a + n - 1) // bf
        if first == last:
            j, m = self._block(first)
            return j[a - first * bf : a - first * bf + n], m[a - first * bf : a - first * bf + n]
        parts_j, parts_m = [], []
        for k in range(first, last + 1):
            j, m = self._block(k)
            lo, hi = max(a, k * bf) - k * bf, min(a + n, (k + 1) * bf) - k * bf
            parts_j.append(j[lo:hi])
            parts_m.append(m[lo:hi])
        return np.concatenate(parts_j), np.concatenate(parts_m)


class SkeletonDataset(Dataset):
    """Samples of one benchmark split -> ``(x, motion, label)``.

    x:      float32 (M=2, T, V=25, C=3)  joints at the sampled positions
    motion: float32 (M=2, T, V=25)       the stored motion prior at the nearest source frames
    label:  int64 ()                     0-based class
    With ``sampler.clips = K > 1`` (multi-clip test) x is (K, M, T, V, C) and motion (K, M, T, V).

    ``indices`` (store sample numbers, e.g. a seeded subset of a split) replaces the split.
    Streaming reads go through a cache of ``cache_blocks`` blocks of ``block_chunks`` storage
    chunks each (2 chunks per read amortise zarr's per-call cost in a block-shuffled order; 1
    is cheaper for a fully random order).
    """

    def __init__(
        self,
        store: Store | str | Path,
        benchmark: str | None,
        part: str = "train",
        sampler: TemporalSampler | None = None,
        in_memory: bool = False,
        indices: np.ndarray | None = None,
        rotate: bool = False,
        seed: int = 0,
        cache_blocks: int = CACHE_BLOCKS,
        block_chunks: int = 1,
        max_angle: float = MAX_ANGLE,
    ) -> None:
        # a fresh Store: only the path, attributes and offsets travel to workers
        self.store = Store(store.path if isinstance(store, Store) else store)
        self.sampler = sampler or TemporalSampler(train=part == "train")
        if indices is None:
            if benchmark is None:
                raise ValueError("SkeletonDataset: give a benchmark or explicit indices")
            indices = self.store.split(benchmark, part)
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) and not (
            0 <= self.indices.min() and self.indices.max() < len(self.store)
        ):
            raise IndexError(f"{self.store.path}: sample indices outside 0..{len(self.store) - 1}")
        offsets = self.store.offsets
        self.starts = offsets[self.indices]
        self.lengths = offsets[self.indices + 1] - self.starts
        if len(self.lengths) and self.lengths.min() < 1:
            bad = int(self.indices[np.argmin(self.lengths)])
            raise ValueError(f"{self.store.path}: sample {bad} has no frames")
        self.labels = self.store.labels[self.indices]
        self.rotate = rotate
        self.max_angle = max_angle
        self.seed = seed
        self.cache_blocks = cache_blocks
        self.block_frames = int(self.store.joints.chunks[0]) * max(1, block_chunks)
        self.store.close()
        self.joints: np.ndarray | None = None
        self.motion: np.ndarray | None = None
        if in_memory:
            # one contiguous array each, read once; forked workers share the pages
            self.joints = np.ascontiguousarray(self.store.joints[...])
            self.motion = np.ascontiguousarray(self.store.motion_array[...])
            self.store.close()
        self._pid = -1  # process that owns _cache and _rng
        self._cache: BlockCache | None = None
        self._rng: np.random.Generator | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_pid=-1, _cache=None, _rng=None)
        return state

    def __copy__(self) -> SkeletonDataset:
        """A shallow copy (arrays shared) with fresh per-process state, so a copy given another
        ``seed`` draws from that seed even in the process that used the original."""
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__getstate__())
        return new

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def in_memory(self) -> bool:
        return self.joints is not None

    def _own(self) -> None:
        """Per-process state: the Generator (torch's worker seed in a worker) and the cache."""
        self._pid = os.getpid()
        info = get_worker_info()
        self._rng = np.random.default_rng(info.seed if info is not None else self.seed)
        self._cache = None

    @property
    def rng(self) -> np.random.Generator:
        """This process's Generator for sampling and rotation."""
        if self._pid != os.getpid():
            self._own()
        return self._rng

    def block_ids(self) -> np.ndarray:
        """int64 (n,): the cache block that holds each item's first frame."""
        return self.starts // self.block_frames

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Item i's frames: joints (n, 2, 25, 3) float32, motion (n, 2, 25) as stored."""
        a, n = int(self.starts[i]), int(self.lengths[i])
        if self.joints is not None:
            return self.joints[a : a + n], self.motion[a : a + n]
        if self._pid != os.getpid():
            self._own()
        if self._cache is None:
            self._cache = BlockCache(self.store, self.block_frames, self.cache_blocks)
        return self._cache.read(a, n)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        joints, motion = self.read(i)
        rng = self.rng
        pos = self.sampler.positions(len(joints), rng if self.sampler.train else None)
        x, m = gather(joints, motion, pos)  # (K, M, T, V, C), (K, M, T, V)
        x, m = torch.from_numpy(x), torch.from_numpy(m)
        if self.rotate:
            angles = rng.uniform(-self.max_angle, self.max_angle, size=(len(x), 3))
            x = rotate(x, rotation_matrices(torch.from_numpy(angles.astype(np.float32))))
        if self.sampler.clips == 1:
            x, m = x[0], m[0]
        return x, m, torch.tensor(self.labels[i], dtype=torch.int64)


def gather(joints: np.ndarray, motion: np.ndarray, pos: Positions) -> tuple[np.ndarray, np.ndarray]:
    """Clips at ``pos`` (K, T) from joints (n, M, V, C) and motion (n, M, V).

    Returns x float32 (K, M, T, V, C), linearly blended where ``pos.w`` is set, and motion
    float32 (K, M, T, V) at the nearest source frames, both C-contiguous.
    """
    x = joints[pos.lo]
    if pos.w is not None:  # x + w * (x_hi - x), in place: half the time of (1 - w) x + w x_hi
        d = joints[pos.hi]
        d -= x
        d *= pos.w[..., None, None, None]
        x += d
    m = motion[pos.nearest()]
    x = np.ascontiguousarray(x.transpose(0, 2, 1, 3, 4), dtype=np.float32)
    m = np.ascontiguousarray(m.transpose(0, 2, 1, 3), dtype=np.float32)
    return x, m


class BlockShuffleSampler(Sampler[int]):
    """A shuffled order that stays within ``window`` storage blocks at a time.

    Runs of ``window`` consecutive blocks are visited in random order and the items of a run are
    shuffled together, so a streaming reader decodes each block about once per epoch instead of
    once per item. Batches then mix only one run's samples (a few hundred neighbours in store
    order): a trade of shuffle quality for read speed.

    With ``num_workers > 1`` runs are dealt to ``num_workers`` streams and the streams'
    ``batch_size`` pieces interleaved, so that batch b, which the DataLoader hands to worker
    ``b % num_workers``, comes from that worker's own runs (no block decoded by every worker);
    pieces shorter than a batch go last. The order depends on ``(seed, epoch)`` only; with
    ``num_replicas > 1`` each rank takes a contiguous share (padded by wrapping, or cut with
    ``drop_last``), like ``DistributedSampler``; call ``set_epoch``.
    """

    def __init__(
        self,
        block_ids: np.ndarray,
        window: int = 4,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        self.block_ids = np.asarray(block_ids, dtype=np.int64)
        self.window = max(1, window)
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.epoch = 0
        n = len(self.block_ids)
        self.num_samples = n // num_replicas if drop_last else -(-n // num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's items (n,) and the random rank of each one's run (n,), in run order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        # runs of `window` consecutive blocks, cut at a random phase: a sample that spills into
        # the next block then usually finds it in its own run
        run = (self.block_ids + int(rng.integers(self.window))) // self.window
        runs, inverse = np.unique(run, return_inverse=True)
        key = rng.permutation(len(runs))[inverse]
        items = np.lexsort((rng.random(len(key)), key))
        return items, key[items]

    def _per_worker(self, items: np.ndarray, runs: np.ndarray) -> np.ndarray:
        """Deal runs to the shortest of num_workers streams; interleave batch-sized pieces."""
        cut = np.flatnonzero(np.diff(runs)) + 1
        streams: list[list[np.ndarray]] = [[] for _ in range(self.num_workers)]
        sizes = np.zeros(self.num_workers, dtype=np.int64)
        for run in np.split(items, cut):
            w = int(np.argmin(sizes))
            streams[w].append(run)
            sizes[w] += len(run)
        flat = [np.concatenate(s) if s else items[:0] for s in streams]
        b = self.batch_size
        full = [len(f) // b for f in flat]
        pieces = [
            f[k * b : (k + 1) * b]
            for k in range(max(full))
            for f, n in zip(flat, full, strict=True)
            if k < n
        ]
        pieces += [f[n * b :] for f, n in zip(flat, full, strict=True)]
        return np.concatenate(pieces)

    def __iter__(self) -> Iterator[int]:
        items, runs = self.order()
        total = self.num_samples * self.num_replicas
        if total > len(items):  # wrap around, as DistributedSampler pads
            items, runs = np.resize(items, total), np.resize(runs, total)
        share = slice(self.rank * self.num_samples, (self.rank + 1) * self.num_samples)
        items, runs = items[share], runs[share]
        if self.num_workers > 1:
            items = self._per_worker(items, runs)
        return iter(items.tolist())

    def __len__(self) -> int:
        return self.num_samples


def make_loader(
    dataset: SkeletonDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    seed: int,
    drop_last: bool,
    distributed: bool = False,
    block_window: int = 0,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader over ``dataset`` with reproducible order and worker seeds.

    distributed: a ``DistributedSampler`` over the process group (the caller calls
    ``loader.sampler.set_epoch(epoch)`` each epoch); else a seeded ``generator`` shuffles.
    block_window > 0 (with shuffle): a :class:`BlockShuffleSampler` over runs of that many cache
    blocks, each worker reading its own runs (call ``set_epoch`` on it too; the dataset's block
    cache is grown to hold a run). Workers persist across epochs; memory is pinned only when
    CUDA is available (``pin_memory=None``).
    """
    rank, world = 0, 1
    if distributed:
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    # per-rank generator: worker seeds (drawn from it) differ across ranks
    gen = torch.Generator()
    gen.manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1))
    sampler = None
    if shuffle and block_window > 0:
        # a run's blocks plus the next one (a sample spilling over) must fit in the cache
        dataset.cache_blocks = max(dataset.cache_blocks, block_window + 1)
        sampler = BlockShuffleSampler(
            dataset.block_ids(), block_window, seed, world, rank, drop_last, batch_size, num_workers
        )
    elif distributed:
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else None,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        generator=gen,
        persistent_workers=num_workers > 0,
    )
