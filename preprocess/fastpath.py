"""Many NTU files per kernel call, without Python per file.

``convert_file`` spends part of a file's time in Python around its kernels (arrays,
dataclasses, dispatch), holding Python's lock. Here a batch of files is read into one buffer
and one numba call (without the lock) does, for each file, the line index, the fast parse,
the grouping into bodies, the denoising (one bodyID: merge and centring; several: the ctrgcn
kernel of denoise.py) and the motion prior, straight into one output buffer. With another
preset, files with several bodyIDs come back parsed (their records) for the numpy path;
anything irregular goes through ``convert_file`` again, which gives the precise error. The
results are the same arrays ``convert_file`` gives (tested on the real files and on a
synthetic corpus with faults). Worker threads holding the lock this little run side by side
(parallel.py).
"""

from __future__ import annotations

import os
import threading

import numba
import numpy as np

from s2v.motion import motion_prior_into
from s2v.preprocess.denoise import _ctrgcn_kernel, _single_actor_centred
from s2v.preprocess.ntu import _P10, _fast_kernel, _index_lines, _scratch

# per-file status from the kernel: SINGLE and DENOISED are finished samples; PARSED files
# (several bodyIDs, preset other than ctrgcn) come back as records; PER_FILE: convert_file
SINGLE, PER_FILE, PARSED, DENOISED = 0, 1, 2, 3
# columns of the kernel's per-file info
STATUS, FIRST_RECORD, RECORDS, DECLARED, VALID, OUT, FRAMES, SLOTS, BODIES, ACTORS = range(10)


@numba.njit(cache=True, nogil=True)
def _bodies_denoised(xyz, bid, fr, valid, out):
    """A parsed file with several bodyIDs: its records grouped into bodies (in order of first
    appearance, as ``group_bodies``) and denoised by ``_ctrgcn_kernel`` into ``out``.
    Returns (outcome, frames, slots, bodies), outcome -1 where a bodyID appears twice in one
    frame (``convert_file`` says so)."""
    rec = len(bid)
    ids = np.empty(rec, dtype=np.int64)
    starts = np.empty(rec, dtype=np.int64)
    counts = np.zeros(rec, dtype=np.int64)
    body_of = np.empty(rec, dtype=np.int64)
    nb = 0
    for r in range(rec):
        k = 0
        while k < nb and ids[k] != bid[r]:
            k += 1
        if k == nb:
            ids[k] = bid[r]
            starts[k] = fr[r]
            nb += 1
        body_of[r] = k
        counts[k] += 1
    at = np.empty(nb, dtype=np.int64)
    total = 0
    for k in range(nb):
        if starts[k] + counts[k] > valid:
            return -1, 0, 0, nb
        at[k] = total
        total += counts[k]
    grouped = np.empty((rec * 25, 3), dtype=np.float32)
    for r in range(rec):
        k = body_of[r]
        grouped[at[k] * 25 : at[k] * 25 + 25] = xyz[r]  # xyz: (records, 25, 3)
        at[k] += 1
    code, frames, slots, _ = _ctrgcn_kernel(grouped, starts[:nb], counts[:nb], valid, out)
    return code, frames, slots, nb


@numba.njit(cache=True, nogil=True)
def _batch_kernel(
    buf, starts, sizes, p10, nl, spaces, xyz, body_id, frame, out_j, out_m, info, ctrgcn
):
    """Per file i, info[i] (columns above); records of file i are xyz[first:first + records],
    its sample out_j[out:out + frames]. Returns the output frames used."""
    counts = np.zeros(2, dtype=np.int64)
    o = 0
    r0 = 0
    for i in range(len(starts)):
        s = starts[i]
        n = sizes[i]
        info[i, STATUS] = PER_FILE
        info[i, FIRST_RECORD] = r0
        b = buf[s : s + n]
        k = _index_lines(b, nl, spaces)
        if k < 0:
            continue
        cap = n // 600 + 1
        x = xyz[r0 : r0 + cap]
        bid = body_id[r0 : r0 + cap]
        fr = frame[r0 : r0 + cap]
        rec = _fast_kernel(b, nl[:k], spaces[:k], p10, x, bid, fr, counts)
        if rec < 0:
            continue
        info[i, RECORDS] = rec
        info[i, DECLARED] = counts[0]
        info[i, VALID] = counts[1]
        r0 += rec
        f = counts[1]
        if o + f > out_j.shape[0]:
            continue
        single = True
        for r in range(1, rec):
            if bid[r] != bid[0]:
                single = False
                break
        if single:
            if fr[0] + rec - 1 >= f:
                continue  # a bodyID twice in one frame: convert_file says so
            if not _single_actor_centred(x[:rec], fr[0], f, out_j[o : o + f]):
                continue  # nothing but zeros: convert_file says so
            frames, slots, bodies, actors = f, 1, 1, 1
            info[i, STATUS] = SINGLE
        elif not ctrgcn:
            info[i, STATUS] = PARSED
            continue
        else:
            code, frames, slots, bodies = _bodies_denoised(
                x[:rec], bid[:rec], fr[:rec], f, out_j[o : o + f]
            )
            if code != 0:
                continue  # unusable: convert_file says why
            actors = 1
            for r in range(o, o + frames):
                for j in range(25):
                    for c in range(3):
                        if out_j[r, 1, j, c] != 0:
                            actors = 2
            info[i, STATUS] = DENOISED
        motion_prior_into(out_j[o : o + frames], out_m[o : o + frames])
        info[i, OUT] = o
        info[i, FRAMES] = frames
        info[i, SLOTS] = slots
        info[i, BODIES] = bodies
        info[i, ACTORS] = actors
        o += frames
    return o


_LOCAL = threading.local()


def _buffer(n: int) -> np.ndarray:
    """This thread's read buffer, at least ``n`` bytes (reused: no page faults per batch)."""
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or len(buf) < n:
        _LOCAL.buf = buf = np.empty(max(n, 8 << 20), dtype=np.uint8)
    return buf


def _records(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's record arrays (xyz, body_id, frame) for at least ``n`` records, reused:
    they never leave ``convert_batch`` (samples are written to fresh arrays)."""
    rec = getattr(_LOCAL, "records", None)
    if rec is None or len(rec[1]) < n:
        m = max(n, 1 << 13)
        rec = np.empty((m, 25, 3), np.float32), np.empty(m, np.int64), np.empty(m, np.int32)
        _LOCAL.records = rec
    return rec[0][:n], rec[1][:n], rec[2][:n]


def read_batch(paths: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bool]]:
    """Read files into one buffer, each at an 8-byte boundary: (buffer, starts, sizes, ok);
    a file that cannot be read is marked not ok (``convert_file`` reports it)."""
    fds: list[int | None] = []
    sizes = np.zeros(len(paths), dtype=np.int64)
    for k, p in enumerate(paths):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            fds.append(None)
            continue
        fds.append(fd)
        try:
            sizes[k] = os.fstat(fd).st_size
        except OSError:
            sizes[k] = 0
    starts = np.zeros(len(paths), dtype=np.int64)
    total = 0
    for k in range(len(paths)):
        starts[k] = total
        total += (int(sizes[k]) + 8) // 8 * 8  # room for one byte more than the file
    buf = _buffer(total + 8)
    view = memoryview(buf)
    ok = []
    for k, fd in enumerate(fds):
        if fd is None:
            ok.append(False)
            continue
        try:
            a, n = int(starts[k]), int(sizes[k])
            # one read of a byte more than the file: exactly n bytes back is the whole file
            # (a file that grew, shrank or came back short goes through convert_file)
            ok.append(os.readv(fd, [view[a : a + n + 1]]) == n)
        except OSError:
            ok.append(False)
        finally:
            os.close(fd)
    return buf, starts, sizes, ok


def parse_batch(buf: np.ndarray, starts: np.ndarray, sizes: np.ndarray, ctrgcn: bool = True):
    """Run the batch kernel: (info, xyz, body_id, frame, joints, motion32, output frames used).
    ctrgcn: denoise files with several bodyIDs too (the ctrgcn preset); else they come back
    PARSED."""
    caps = sizes // 600 + 1
    total = int(caps.sum())
    nl, spaces = _scratch(int(sizes.max(initial=0)) // 2 + 2)
    xyz, body_id, frame = _records(total)
    out_j = np.empty((total, 2, 25, 3), dtype=np.float32)
    out_m = np.empty((total, 2, 25), dtype=np.float32)
    info = np.zeros((len(starts), 10), dtype=np.int64)
    used = _batch_kernel(
        buf, starts, sizes, _P10, nl, spaces, xyz, body_id, frame, out_j, out_m, info, ctrgcn
    )
    return info, xyz, body_id, frame, out_j, out_m, int(used)


def warm_up() -> None:
    """Load the batch kernel now (before workers start), on a two-frame file."""
    joint = "0.1 0.2 3.0 1 2 3 4 0 0 0 0 2\n"
    text = ("2\n1\n72057594037931101 0 1 1 1 1 0 0 0 2\n25\n" + joint * 25 + "0\n").encode()
    buf = np.zeros(len(text) + 8, dtype=np.uint8)
    buf[: len(text)] = np.frombuffer(text, dtype=np.uint8)
    parse_batch(buf, np.zeros(1, dtype=np.int64), np.array([len(text)], dtype=np.int64))
