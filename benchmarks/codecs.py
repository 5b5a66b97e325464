"""Blosc codec choice for the joints array: size and speed of candidate codecs on real chunks of
a store, relative to the previous default (zstd level 1, bit shuffle) measured in this process.

    python benchmarks/codecs.py STORE [--repeat 5]

Each chunk is laid out as the store does (the transpose codec puts frames last) and encoded
and decoded with numcodecs' Blosc in this thread only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import zarr
from numcodecs import Blosc

CANDIDATES = [
    ("zstd", 1, Blosc.BITSHUFFLE),
    ("zstd", 1, Blosc.SHUFFLE),
    ("zstd", 3, Blosc.BITSHUFFLE),
    ("lz4", 1, Blosc.BITSHUFFLE),
    ("lz4", 1, Blosc.SHUFFLE),
    ("lz4", 5, Blosc.BITSHUFFLE),
    ("blosclz", 1, Blosc.BITSHUFFLE),
]


def measure(chunks: list[np.ndarray], cname: str, level: int, shuffle: int, repeat: int):
    codec = Blosc(cname=cname, clevel=level, shuffle=shuffle)
    raw = sum(c.nbytes for c in chunks)
    enc_t = dec_t = float("inf")
    for _ in range(repeat):  # best of repeat: the least disturbed pass
        t0 = time.perf_counter()
        blobs = [codec.encode(c) for c in chunks]
        enc_t = min(enc_t, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for b in blobs:
            codec.decode(b)
        dec_t = min(dec_t, time.perf_counter() - t0)
    return sum(len(b) for b in blobs) / raw, enc_t, dec_t, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chunks", type=int, default=8, help="chunks of 4,096 frames to use")
    args = ap.parse_args()
    import numcodecs.blosc

    numcodecs.blosc.use_threads = False
    joints = zarr.open_group(args.store, mode="r")["joints"]
    n = min(args.chunks * 4096, joints.shape[0])
    data = joints[:n]
    chunks = [
        np.ascontiguousarray(np.moveaxis(data[i : i + 4096], 0, -1)) for i in range(0, n, 4096)
    ]
    base = measure(chunks, *CANDIDATES[0], args.repeat)
    print(f"{len(chunks)} chunks, {base[3] / 1e6:.1f} MB raw; ratios against zstd-1 bitshuffle")
    print(f"{'codec':24s} {'size %':>7s} {'size x':>7s} {'enc MB/s':>9s} {'enc x':>6s} "
          f"{'dec MB/s':>9s} {'dec x':>6s}")  # fmt: skip
    for cand in CANDIDATES:
        size, enc, dec, raw = measure(chunks, *cand, args.repeat)
        name = f"{cand[0]}-{cand[1]} {'bit' if cand[2] == Blosc.BITSHUFFLE else 'byte'}shuffle"
        print(
            f"{name:24s} {100 * size:7.1f} {size / base[0]:7.2f} {raw / enc / 1e6:9.0f} "
            f"{base[1] / enc:6.2f} {raw / dec / 1e6:9.0f} {base[2] / dec:6.2f}"
        )


if __name__ == "__main__":
    main()
