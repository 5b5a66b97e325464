"""The skeleton store (format version 1): one Zarr v3 directory or one HDF5 file per dataset.

Layout (the same names in both backends, see docs/store.md):

    joints              float32 (F, 2, 25, 3)  all samples' frames, concatenated
    motion              float16 (F, 2, 25)     motion prior (s2v.motion), 0 at each sample's last frame
    offsets             int64 (N+1,)           sample i is frames offsets[i]:offsets[i+1]
    samples/<column>    (N,) per column        metadata; string columns are uint8 (N, W), NUL padded
    splits/<bench>/<part>  int32 (n,)          sample indices, e.g. splits/xsub/train
    attributes (root)   JSON                   format, format_version, dataset, options, checksums ...

This module is the one contract between ``s2v.preprocess`` (writes) and ``s2v.train`` (reads).
It never imports torch. A :class:`Store` opens its backend lazily and re-opens it after a fork,
so one object can be handed to DataLoader workers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from s2v.errors import StoreError

FORMAT = "skeleton2vec-store"
FORMAT_VERSION = 1
CHUNK_FRAMES = 4096  # 4096 frames x 600 B = 2.4 MB of raw joints per chunk
SHARD_CHUNKS = 16  # 16 chunks per shard file: a full NTU-120 store is ~300 files
STRING_COLUMN = "string"  # marker in a column's attributes: uint8 (N, W) holding ASCII text


def detect_format(path: str | Path) -> str:
    """'zarr' or 'h5' from a path's suffix (a directory is Zarr)."""
    p = Path(path)
    if p.suffix in (".h5", ".hdf5") or (p.is_file() and p.suffix not in (".zarr",)):
        return "h5"
    return "zarr"


# --------------------------------------------------------------------------------------------
# backends: the few operations the store needs, over zarr v3 and h5py
# --------------------------------------------------------------------------------------------


class _Backend:
    """Minimal tree API shared by the Zarr and HDF5 backends."""

    def create(self, name: str, shape, dtype, chunks, shards=None, compress=True) -> Any: ...
    def get(self, name: str) -> Any: ...
    def has(self, name: str) -> bool: ...
    def attrs(self, name: str = "") -> dict: ...
    def set_attrs(self, values: dict, name: str = "") -> None: ...
    def resize(self, arr: Any, shape) -> None: ...
    def close(self) -> None: ...


# every chunk is written, without first comparing it with the fill value: that comparison
# cost zarr ~40 % of a shard write, and an all-zero chunk is almost nothing once compressed
_WRITE_CONFIG = {"write_empty_chunks": True}


class _ZarrBackend(_Backend):
    def __init__(self, path: Path, mode: str) -> None:
        import zarr

        self._zarr = zarr
        try:
            self.root = zarr.open_group(str(path), mode=mode, zarr_format=3)
        except Exception as exc:  # zarr raises several types for a missing/foreign tree
            raise StoreError(f"{path}: not a readable Zarr v3 store ({exc})") from exc

    def create(self, name, shape, dtype, chunks, shards=None, compress=True):
        from zarr.codecs import BloscCodec, BloscShuffle, TransposeCodec

        comp = None
        filters = None
        if compress:
            # byte shuffle for 4-byte values (the joints): 1.7x faster to write and 2.4x
            # faster to read than bit shuffle, 2 % larger; bit shuffle for narrower ones (the
            # float16 / uint8 motion), where byte planes are few and it saves 7 %
            # (benchmarks/codecs.py)
            wide = np.dtype(dtype).itemsize >= 4
            shuffle = BloscShuffle.shuffle if wide else BloscShuffle.bitshuffle
            comp = BloscCodec(cname="lz4", clevel=1, shuffle=shuffle)
        if compress and len(shape) > 1:
            # frames last inside a chunk: each joint coordinate becomes a smooth time series,
            # which shuffled compresses ~10 % better. lz4 level 1 rather than zstd: ~5 %
            # larger, ~7x faster to write and ~3x faster to read (benchmarks/codecs.py)
            filters = [TransposeCodec(order=tuple(range(1, len(shape))) + (0,))]
        return self.root.create_array(
            name,
            shape=shape,
            dtype=dtype,
            chunks=chunks,
            shards=shards,
            filters=filters,
            compressors=comp,
            fill_value=0,
            overwrite=True,
            config=_WRITE_CONFIG,
        )

    def get(self, name):
        node = self.root[name]
        return node.with_config(_WRITE_CONFIG) if hasattr(node, "with_config") else node

    def has(self, name):
        return name in self.root

    def attrs(self, name=""):
        node = self.root[name] if name else self.root
        return dict(node.attrs)

    def set_attrs(self, values, name=""):
        node = self.root[name] if name else self.root
        node.attrs.update(values)

    def resize(self, arr, shape):
        arr.resize(shape)

    def close(self):
        pass


class _H5Backend(_Backend):
    def __init__(self, path: Path, mode: str) -> None:
        import h5py

        try:
            self.f = h5py.File(str(path), {"w": "w", "r": "r", "a": "a", "r+": "r+"}[mode])
        except OSError as exc:
            raise StoreError(f"{path}: not a readable HDF5 store ({exc})") from exc

    def create(self, name, shape, dtype, chunks, shards=None, compress=True):
        if name in self.f:
            del self.f[name]
        maxshape = (None,) + tuple(shape[1:])
        kw = {"compression": "gzip", "compression_opts": 1, "shuffle": True} if compress else {}
        return self.f.create_dataset(
            name, shape=shape, dtype=dtype, chunks=chunks, maxshape=maxshape, **kw
        )

    def get(self, name):
        return self.f[name]

    def has(self, name):
        return name in self.f

    def attrs(self, name=""):
        node = self.f[name] if name else self.f
        return {k: json.loads(v) for k, v in node.attrs.items()}

    def set_attrs(self, values, name=""):
        node = self.f[name] if name else self.f
        for k, v in values.items():
            node.attrs[k] = json.dumps(v)  # JSON text: the same values as Zarr's attributes

    def resize(self, arr, shape):
        arr.resize(shape)

    def close(self):
        self.f.close()


def open_backend(path: str | Path, mode: str = "r", fmt: str | None = None) -> _Backend:
    """Open the tree at ``path`` ('zarr' or 'h5', guessed from the suffix when None)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if mode == "r" and not path.exists():
        raise StoreError(f"{path}: no such store")
    return _ZarrBackend(path, mode) if fmt == "zarr" else _H5Backend(path, mode)


# --------------------------------------------------------------------------------------------
# string columns and checksums
# --------------------------------------------------------------------------------------------


def encode_strings(values) -> np.ndarray:
    """A sequence of ASCII strings -> uint8 (N, W), NUL padded (W >= 1)."""
    raw = [str(v).encode("ascii") for v in values]
    width = max([len(r) for r in raw] + [1])
    buf = np.zeros((len(raw), width), dtype=np.uint8)
    for i, r in enumerate(raw):
        buf[i, : len(r)] = np.frombuffer(r, dtype=np.uint8)
    return buf


def decode_strings(buf: np.ndarray) -> np.ndarray:
    """uint8 (N, W) -> object array of str."""
    if buf.size == 0:
        return np.array([], dtype=object)
    as_bytes = np.ascontiguousarray(buf).view(f"S{buf.shape[1]}").ravel()
    return np.array([b.decode("ascii") for b in as_bytes], dtype=object)


def sha256_array(a: np.ndarray) -> str:
    """sha256 of an array's C-order bytes, prefixed with dtype and shape."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def crc32_rows(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """crc32 of each sample's bytes: data rows offsets[i]:offsets[i+1] -> uint32 (N,)."""
    import zlib

    out = np.empty(len(offsets) - 1, dtype=np.uint32)
    base = offsets[0]
    for i in range(len(out)):
        a, b = offsets[i] - base, offsets[i + 1] - base
        out[i] = zlib.crc32(np.ascontiguousarray(data[a:b]).data)
    return out


# --------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------


class StoreWriter:
    """Appends samples' frames in order, writing whole shards (Zarr) / chunk groups (HDF5).

    Data is written only in full blocks of ``block_frames`` frames, so that an interrupted
    conversion can be resumed at ``committed`` frames by truncating the arrays there. The
    remainder stays in memory until :meth:`finish` writes the tail.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str = "zarr",
        *,
        resume_frames: int | None = None,
        chunk_frames: int = CHUNK_FRAMES,
        shard_chunks: int = SHARD_CHUNKS,
        motion_dtype: str = "float16",
        pool: Any = None,
    ) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.block_frames = chunk_frames * shard_chunks
        self.motion_dtype = np.dtype(motion_dtype)
        # Zarr blocks are whole shards (separate files), so a process pool can compress and
        # write them in parallel; HDF5 is written by this process alone.
        self.pool = pool if fmt == "zarr" else None
        if resume_frames is None:
            self.be = open_backend(self.path, "w", fmt)
            shards_j = (self.block_frames, 2, 25, 3) if fmt == "zarr" else None
            shards_m = (self.block_frames, 2, 25) if fmt == "zarr" else None
            self.joints = self.be.create(
                "joints", (0, 2, 25, 3), "float32", (chunk_frames, 2, 25, 3), shards_j
            )
            self.motion = self.be.create(
                "motion", (0, 2, 25), self.motion_dtype, (chunk_frames, 2, 25), shards_m
            )
            self.committed = 0
        else:
            self.be = open_backend(self.path, "r+" if fmt == "h5" else "a", fmt)
            self.joints = self.be.get("joints")
            self.motion = self.be.get("motion")
            if self.joints.shape[0] < resume_frames:
                raise StoreError(f"{self.path}: partial store holds fewer frames than its log")
            self.be.resize(self.joints, (resume_frames, 2, 25, 3))
            self.be.resize(self.motion, (resume_frames, 2, 25))
            self.committed = resume_frames
        self._shards = None  # Zarr: the layouts for writing full shards directly
        if fmt == "zarr":
            layouts = [
                ShardFormat(n, a.metadata.to_dict())
                for n, a in (("joints", self.joints), ("motion", self.motion))
            ]
            if all(f.ok and f.shard_frames == self.block_frames for f in layouts):
                self._shards = layouts
        self._written = self.committed  # frames handed to a write (done or in flight)
        # (async result, end frame, its block's buffers), in order
        self._inflight: list[tuple[Any, int, tuple]] = []
        self._spare: list[tuple[np.ndarray, np.ndarray]] = []  # buffers of finished writes
        # the block being filled: samples are copied straight in (no list, no concatenation)
        self._bj = np.empty((self.block_frames, 2, 25, 3), dtype=np.float32)
        self._bm = np.empty((self.block_frames, 2, 25), dtype=self.motion_dtype)
        self._buffered = 0

    @property
    def total_frames(self) -> int:
        """Frames appended so far (written, in flight or buffered)."""
        return self._written + self._buffered

    def append(self, joints: np.ndarray, motion: np.ndarray) -> bool:
        """Add one sample's frames; returns True when the committed frame count advanced.

        joints (F, A, 25, 3) and motion (F, A, 25) with A = 2, or A = 1 for a sample whose
        actor 2 is all zero (the writer fills in the zeros)."""
        a, b = self._buffered, self._buffered + len(joints)
        if b < self.block_frames and joints.shape[1] == 2:  # most samples: one copy each
            self._bj[a:b] = joints
            self._bm[a:b] = motion
            self._buffered = b
            return self.poll()
        done = 0
        while done < len(joints):
            n = min(len(joints) - done, self.block_frames - self._buffered)
            a, b = self._buffered, self._buffered + n
            actors = joints.shape[1]
            self._bj[a:b, :actors] = joints[done : done + n]
            self._bm[a:b, :actors] = motion[done : done + n]
            if actors < 2:
                self._bj[a:b, actors:] = 0
                self._bm[a:b, actors:] = 0
            self._buffered = b
            done += n
            if self._buffered == self.block_frames:
                self._write()
        return self.poll()

    def poll(self, wait: bool = False) -> bool:
        """Advance ``committed`` over finished parallel writes (in order); True if it moved."""
        before = self.committed
        while self._inflight and (wait or self._inflight[0][0].ready()):
            result, end, buffers = self._inflight.pop(0)
            result.get()  # re-raises a worker's exception
            self.committed = end
            self._spare.append(buffers)  # reused: fresh pages cost a fault each on first touch
        if not self._inflight:
            self.committed = self._written
        return self.committed != before

    def _write(self) -> None:
        """Write the buffered frames (a whole block, or the tail) and start a new block."""
        n = self._buffered
        j, m = self._bj[:n], self._bm[:n]
        a, b = self._written, self._written + n
        self.be.resize(self.joints, (b, 2, 25, 3))
        self.be.resize(self.motion, (b, 2, 25))
        whole = n == self.block_frames
        if whole and self._shards is not None:  # Zarr, our codecs: shard files written directly
            task: tuple = (
                write_shards,
                (str(self.path), a, list(zip(self._shards, (j, m), strict=True))),
            )
        else:  # through zarr (other codecs) or h5py
            task = (write_region, (str(self.path), a, j, m))
        if whole and self.pool is not None:  # the pool's write thread; this goes on filling
            while len(self._inflight) >= 2:  # memory stays flat if the writes fall behind
                self._inflight[0][0].get()
                self.poll()
            self._inflight.append((self.pool.apply_async(*task), b, (self._bj, self._bm)))
            # the old block belongs to the write now
            if self._spare:
                self._bj, self._bm = self._spare.pop()
            else:
                self._bj, self._bm = np.empty_like(self._bj), np.empty_like(self._bm)
        elif whole and self._shards is not None:
            task[0](*task[1])
        else:
            self.joints[a:b] = j
            self.motion[a:b] = m
            if self.fmt == "h5":
                self.be.f.flush()
        self._written = b
        self._buffered = 0

    def finish(
        self,
        offsets: np.ndarray,
        samples: dict[str, np.ndarray],
        splits: dict[str, dict[str, np.ndarray]],
        attrs: dict[str, Any],
    ) -> None:
        """Write the tail, the tables and the attributes (with checksums); close."""
        if self._buffered:
            self._write()
        self.poll(wait=True)
        if int(offsets[-1]) != self.committed:
            raise StoreError(
                f"{self.path}: offsets end at {int(offsets[-1])}, store has {self.committed} frames"
            )
        checksums: dict[str, str] = {}
        self._put("offsets", np.asarray(offsets, dtype=np.int64), checksums)
        for col, values in samples.items():
            self._put(f"samples/{col}", values, checksums)
        for bench, parts in splits.items():
            for part, idx in parts.items():
                self._put(f"splits/{bench}/{part}", np.asarray(idx, dtype=np.int32), checksums)
        # the big arrays are covered by their per-sample crc32 columns
        checksums["joints"] = checksums["samples/crc_joints"]
        checksums["motion"] = checksums["samples/crc_motion"]
        full = dict(attrs)
        full.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            checksums=checksums,
            num_samples=len(offsets) - 1,
            num_frames=int(offsets[-1]),
            motion_dtype=self.motion_dtype.name,
        )
        self.be.set_attrs(full)
        self.be.close()

    def _put(self, name: str, values, checksums: dict[str, str]) -> None:
        arr = np.asarray(values)
        is_str = arr.dtype.kind in "OUS"
        if is_str:
            arr = encode_strings(arr)
        chunks = arr.shape if arr.size else (1,) * arr.ndim
        node = self.be.create(name, arr.shape, arr.dtype, chunks, None, compress=arr.size > 4096)
        if arr.size:
            node[...] = arr
        if is_str:
            self.be.set_attrs({"kind": STRING_COLUMN}, name)
        checksums[name] = sha256_array(arr)

    def close(self) -> None:
        self.be.close()


def write_region(path: str, start: int, joints: np.ndarray, motion: np.ndarray) -> None:
    """Write whole shards of a Zarr store's joints and motion through zarr (any codecs)."""
    import numcodecs.blosc
    import zarr

    # Blosc's internal thread pool does not survive fork: compress in this thread only
    numcodecs.blosc.use_threads = False
    root = zarr.open_group(path, mode="r+", zarr_format=3)
    root["joints"].with_config(_WRITE_CONFIG)[start : start + len(joints)] = joints
    root["motion"].with_config(_WRITE_CONFIG)[start : start + len(motion)] = motion


class ShardFormat:
    """How one array's full shards are laid out on disk, for :func:`write_shards`.

    Zarr v3 ``sharding_indexed`` (zarr specs, "Sharding codec" v1.0): a shard is one file,
    ``NAME/c/I/0/...`` for shard I along the frame axis; its inner chunks, each encoded by the
    inner codecs, follow each other (for a chunk grid of shape (K, 1, ...) the Morton order is
    just 0..K-1), then the index: (offset, nbytes) as little-endian uint64 per inner chunk
    followed by the CRC-32C of those bytes. Writing this directly costs about half of what
    zarr's asynchronous pipeline takes for the same shard (benchmarks/prep.py).
    """

    # the codecs _ZarrBackend.create writes; any other array goes through zarr itself
    def __init__(self, name: str, meta: dict) -> None:
        self.name = name
        self.ok = False
        meta = json.loads(json.dumps(meta))  # tuples -> lists, enums -> their names
        codecs = meta.get("codecs", [])
        if len(codecs) != 1 or codecs[0].get("name") != "sharding_indexed":
            return
        if meta.get("chunk_key_encoding") != {
            "name": "default",
            "configuration": {"separator": "/"},
        }:
            return
        conf = codecs[0]["configuration"]
        inner = conf["codecs"]
        index_codecs = [
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "crc32c"},
        ]
        if conf.get("index_location") != "end" or conf.get("index_codecs") != index_codecs:
            return
        if [c["name"] for c in inner] != ["transpose", "bytes", "blosc"]:
            return
        if inner[1].get("configuration") != {"endian": "little"}:
            return
        shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
        chunk = conf["chunk_shape"]
        if list(chunk[1:]) != list(shard[1:]) or shard[0] % chunk[0]:
            return
        blosc = dict(inner[2]["configuration"])
        blosc["shuffle"] = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[blosc["shuffle"]]
        self.order = tuple(inner[0]["configuration"]["order"])
        self.blosc = blosc
        self.chunk_frames = int(chunk[0])
        self.shard_frames = int(shard[0])
        self.ndim = len(shard)
        self.ok = True

    def key(self, shard: int) -> str:
        return "/".join([self.name, "c", str(shard)] + ["0"] * (self.ndim - 1))

    def encode(self, data: np.ndarray) -> list[bytes]:
        """One full shard's frames -> the pieces of its file, in order."""
        import google_crc32c
        from numcodecs import Blosc

        try:
            codec = Blosc.from_config(dict(self.blosc))
        except TypeError:  # numcodecs < 0.16: the typesize comes from the array, as in zarr
            codec = Blosc.from_config({k: v for k, v in self.blosc.items() if k != "typesize"})
        k = self.shard_frames // self.chunk_frames
        parts: list[bytes] = []
        index = np.empty((k, 2), dtype="<u8")
        offset = 0
        for i in range(k):
            chunk = data[i * self.chunk_frames : (i + 1) * self.chunk_frames]
            encoded = codec.encode(np.ascontiguousarray(chunk.transpose(self.order)))
            parts.append(encoded)
            index[i] = offset, len(encoded)
            offset += len(encoded)
        index_bytes = index.tobytes()
        parts.append(index_bytes)
        parts.append(np.uint32(google_crc32c.value(index_bytes)).astype("<u4").tobytes())
        return parts


class ShardReader:
    """Whole chunks of one Zarr array laid out as :class:`ShardFormat` describes, decoded
    straight from the shard files: a pread of the chunk's bytes, Blosc into a reused buffer and
    the transpose back, about 3x less CPU per chunk than zarr's asynchronous pipeline (which
    also allocates fresh buffers, a page fault per 4 KB). The training loader's block cache
    reads through it (train/data.py). Each shard's index is read once and its CRC-32C checked;
    a chunk the index marks absent reads as the fill value (0)."""

    _ABSENT = 2**64 - 1

    def __init__(self, path: Path, fmt: ShardFormat, shape: tuple, dtype: Any) -> None:
        from numcodecs import Blosc

        self.path = Path(path)
        self.fmt = fmt
        self.k = fmt.shard_frames // fmt.chunk_frames
        # the chunk as stored: its axes in the transpose codec's order
        chunk_shape = (fmt.chunk_frames, *shape[1:])
        stored = tuple(chunk_shape[i] for i in fmt.order)
        self._stored = np.empty(stored, dtype=dtype)
        self._back = tuple(int(i) for i in np.argsort(fmt.order))  # stored -> frames first
        self._codec = Blosc()  # Blosc's frames describe themselves: any cname and shuffle
        self._index: dict[int, np.ndarray] = {}

    def _shard_index(self, shard: int) -> np.ndarray | None:
        """(k, 2) offsets and sizes of the shard's chunks; None if the shard file is absent."""
        import google_crc32c

        idx = self._index.get(shard)
        if idx is None:
            target = self.path / self.fmt.key(shard)
            try:
                with open(target, "rb") as f:
                    f.seek(-(16 * self.k + 4), os.SEEK_END)
                    tail = f.read(16 * self.k + 4)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise StoreError(f"{target}: cannot read the shard index ({exc})") from None
            crc = int.from_bytes(tail[-4:], "little")
            if len(tail) != 16 * self.k + 4 or google_crc32c.value(tail[:-4]) != crc:
                raise StoreError(f"{target}: shard index damaged (CRC-32C mismatch)")
            idx = np.frombuffer(tail[:-4], dtype="<u8").reshape(self.k, 2)
            self._index[shard] = idx
        return idx

    def read_into(self, chunk: int, out: np.ndarray) -> None:
        """Chunk ``chunk``'s first ``len(out)`` frames into ``out`` (frames first)."""
        shard, i = divmod(chunk, self.k)
        idx = self._shard_index(shard)
        if idx is None or int(idx[i, 0]) == self._ABSENT:
            out[...] = 0
            return
        offset, nbytes = int(idx[i, 0]), int(idx[i, 1])
        target = self.path / self.fmt.key(shard)
        fd = os.open(target, os.O_RDONLY)
        try:
            raw = os.pread(fd, nbytes, offset)
        finally:
            os.close(fd)
        if len(raw) != nbytes:
            raise StoreError(f"{target}: chunk {i} is cut short")
        self._codec.decode(raw, out=self._stored)
        out[...] = self._stored.transpose(self._back)[: len(out)]


def write_shards(path: str, start: int, arrays: list[tuple[ShardFormat, np.ndarray]]) -> None:
    """Write whole shards (frames ``start`` on, a multiple of the shard size) straight to
    their files; see :class:`ShardFormat`."""
    import numcodecs.blosc

    numcodecs.blosc.use_threads = False  # this thread only (cores are busy parsing)
    for fmt, data in arrays:
        if start % fmt.shard_frames or len(data) % fmt.shard_frames:
            raise StoreError(
                f"{path}: {fmt.name}: write of frames {start}+{len(data)} is not whole shards"
            )
        for s in range(len(data) // fmt.shard_frames):
            part = data[s * fmt.shard_frames : (s + 1) * fmt.shard_frames]
            target = Path(path) / fmt.key(start // fmt.shard_frames + s)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                f.writelines(fmt.encode(part))


# --------------------------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------------------------


class Store:
    """A read-only view of a store. Cheap to create and to pickle; opens the backend lazily.

    >>> st = s2v.open("ntu60.zarr")
    >>> len(st), st.samples.head(), st.clip(0).shape, st.split("xsub", "train")[:5]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fmt = detect_format(self.path)
        self._be: _Backend | None = None
        self._pid = -1
        be = open_backend(self.path, "r", self.fmt)
        try:
            self.attrs: dict[str, Any] = be.attrs()
            if self.attrs.get("format") != FORMAT:
                raise StoreError(f"{self.path}: not a skeleton2vec store (no '{FORMAT}' attribute)")
            if self.attrs.get("format_version") != FORMAT_VERSION:
                raise StoreError(
                    f"{self.path}: store format version {self.attrs.get('format_version')}, "
                    f"this tool reads version {FORMAT_VERSION}"
                )
            self.offsets: np.ndarray = np.asarray(be.get("offsets")[...], dtype=np.int64)
        finally:
            be.close()
        self._samples: pd.DataFrame | None = None

    # the backend handle is per process: never pickled, re-opened after fork
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_be"] = None
        state["_pid"] = -1
        return state

    def _backend(self) -> _Backend:
        if self._be is None or self._pid != os.getpid():
            self._be = open_backend(self.path, "r", self.fmt)
            self._pid = os.getpid()
        return self._be

    def close(self) -> None:
        if self._be is not None and self._pid == os.getpid():
            self._be.close()
        self._be = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __repr__(self) -> str:
        return (
            f"Store({str(self.path)!r}, dataset={self.attrs.get('dataset')!r}, "
            f"samples={len(self)}, frames={int(self.offsets[-1])})"
        )

    @property
    def dataset(self) -> str:
        return str(self.attrs.get("dataset", ""))

    @property
    def label_names(self) -> list[str]:
        return list(self.attrs.get("label_names", []))

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def benchmarks(self) -> list[str]:
        return list(self.attrs.get("benchmarks", []))

    @property
    def joints(self) -> Any:
        """The backend array (F, 2, 25, 3): slice it to read frames."""
        return self._backend().get("joints")

    @property
    def motion_array(self) -> Any:
        """The backend array (F, 2, 25) of the motion prior."""
        return self._backend().get("motion")

    def column(self, name: str) -> np.ndarray:
        """One metadata column as a numpy array (strings decoded)."""
        be = self._backend()
        key = f"samples/{name}"
        if not be.has(key):
            raise StoreError(f"{self.path}: no samples column '{name}'")
        values = np.asarray(be.get(key)[...])
        if be.attrs(key).get("kind") == STRING_COLUMN:
            return decode_strings(values)
        return values

    def column_names(self) -> list[str]:
        be = self._backend()
        grp = be.get("samples")
        return sorted(grp.keys())

    @property
    def samples(self) -> pd.DataFrame:
        """All metadata columns as a DataFrame indexed by sample number."""
        if self._samples is None:
            self._samples = pd.DataFrame({c: self.column(c) for c in self.column_names()})
        return self._samples

    @property
    def labels(self) -> np.ndarray:
        return self.column("label").astype(np.int64)

    def frames(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def clip(self, i: int) -> np.ndarray:
        """Sample i's frames: float32 (T, 2, 25, 3)."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range 0..{len(self) - 1}")
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.asarray(self.joints[a:b])

    def motion(self, i: int) -> np.ndarray:
        """Sample i's motion prior: float32 (T, 2, 25)."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range 0..{len(self) - 1}")
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return np.asarray(self.motion_array[a:b], dtype=np.float32)

    def split(self, benchmark: str, part: str = "train") -> np.ndarray:
        """Sample indices of a benchmark's part ('train' or 'test'), in the reference order."""
        be = self._backend()
        key = f"splits/{benchmark}/{part}"
        if not be.has(key):
            have = ", ".join(self.benchmarks) or "none"
            raise StoreError(f"{self.path}: no split '{benchmark}/{part}' (benchmarks: {have})")
        return np.asarray(be.get(key)[...], dtype=np.int64)

    def chunk_readers(self) -> tuple[ShardReader, ShardReader] | None:
        """Direct chunk readers of joints and motion (:class:`ShardReader`) for a Zarr store
        written in this tool's shard layout; None otherwise (HDF5, other codecs)."""
        if self.fmt != "zarr":
            return None
        readers = []
        for name, arr in (("joints", self.joints), ("motion", self.motion_array)):
            meta = arr.metadata.to_dict()
            fmt = ShardFormat(name, meta)
            if not fmt.ok or meta.get("fill_value") not in (0, 0.0):
                return None
            readers.append(ShardReader(self.path, fmt, arr.shape, arr.dtype))
        if readers[0].fmt.chunk_frames != readers[1].fmt.chunk_frames:
            return None
        return readers[0], readers[1]

    def iter_blocks(self, block_frames: int = 1 << 16) -> Iterator[tuple[int, np.ndarray]]:
        """(start frame, joints block) over the whole joints array, for scans like verify."""
        arr = self.joints
        total = int(self.offsets[-1])
        for a in range(0, total, block_frames):
            yield a, np.asarray(arr[a : min(total, a + block_frames)])


def open_store(path: str | Path) -> Store:
    """Open a skeleton2vec store (Zarr directory or HDF5 file) for reading."""
    return Store(path)


def write_store(
    path: str | Path,
    clips: list[np.ndarray],
    samples: dict[str, Any],
    splits: dict[str, dict[str, Any]],
    attrs: dict[str, Any],
    fmt: str | None = None,
    **writer_options: Any,
) -> Store:
    """Write a complete store from in-memory clips (each float32 (T, 2, 25, 3)); returns it opened.

    Computes the motion prior and the checksum columns. ``samples`` must hold at least ``label``;
    ``frames`` is filled in. For small stores (tests, imports); conversions stream instead.
    """
    from s2v.motion import motion_prior

    fmt = fmt or detect_format(path)
    writer = StoreWriter(path, fmt, **writer_options)
    lengths = []
    crc_j, crc_m = [], []
    import zlib

    for clip in clips:
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        if clip.ndim != 4 or clip.shape[1:] != (2, 25, 3):
            raise StoreError(f"clip of shape {clip.shape}: expected (T, 2, 25, 3)")
        motion = motion_prior(clip).astype(writer.motion_dtype)
        writer.append(clip, motion)
        lengths.append(len(clip))
        crc_j.append(zlib.crc32(clip.data))
        crc_m.append(zlib.crc32(motion.data))
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    cols = {k: np.asarray(v) for k, v in samples.items()}
    cols["frames"] = np.asarray(lengths, dtype=np.int32)
    cols["crc_joints"] = np.asarray(crc_j, dtype=np.uint32)
    cols["crc_motion"] = np.asarray(crc_m, dtype=np.uint32)
    attrs = dict(attrs)
    attrs.setdefault("benchmarks", sorted(splits))
    writer.finish(offsets, cols, splits, attrs)
    return Store(path)
