"""Writing the NTU RGB+D ``.skeleton`` text format (data.md §1), the inverse of ``ntu.py``.

Used by the synthetic corpus (:mod:`s2v.preprocess.synth`). Numbers are printed like the real
files: ``%.7g``, by a numba kernel that is byte-identical to Python's formatting (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np

from s2v.layout import NUM_JOINTS


class SkeletonBody(NamedTuple):
    """One body in one frame, as written: the 10-field info line and 25 joint lines.

    ``joints`` is (25, 12): x y z depthX depthY colorX colorY orientationW orientationX
    orientationY orientationZ trackingState (the last column is written as an integer).
    """

    body_id: int
    joints: np.ndarray
    lean: tuple[float, float] = (0.0, 0.0)
    hands: tuple[int, int, int, int] = (1, 1, 1, 1)  # left conf, left state, right conf, state
    clipped_edges: int = 0
    is_restricted: int = 0
    tracking_state: int = 2


def _body_arrays(
    bodies_per_frame: Sequence[Sequence[SkeletonBody]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the bodies and pack them for the writer: bodies per frame, IDs, the integer info
    fields, lean and joints (B, 25, 12)."""
    bodies = [b for frame in bodies_per_frame for b in frame]
    counts = np.array([len(frame) for frame in bodies_per_frame], dtype=np.int64)
    ids = np.array([b.body_id for b in bodies], dtype=object)
    if len(bodies) and not all(0 <= int(i) < 2**63 for i in ids):
        raise ValueError("bodyIDs must be integers in [0, 2**63)")
    ints = np.array(
        [(b.clipped_edges, *b.hands, b.is_restricted, b.tracking_state) for b in bodies],
        dtype=np.int64,
    ).reshape(len(bodies), 7)
    lean = np.array([b.lean for b in bodies], dtype=np.float64).reshape(len(bodies), 2)
    joints = np.array([np.asarray(b.joints, np.float64) for b in bodies]).reshape(
        (len(bodies), NUM_JOINTS, 12) if bodies else (0, NUM_JOINTS, 12)
    )
    return counts, ids.astype(np.int64), ints, lean, joints


def format_skeleton_file(
    bodies_per_frame: Sequence[Sequence[SkeletonBody]], *, crlf: bool = False
) -> bytes:
    """The NTU ``.skeleton`` text of a clip: one entry per frame, each a (possibly empty) list
    of bodies. Numbers are printed as ``%.7g`` (7 significant digits, like the real files; the
    trackingState column as an integer); lines end with LF, or CRLF when ``crlf``; the file ends
    with a newline. One compiled kernel writes the text (a few ms for a 200 KB file).
    """
    if any(np.shape(b.joints) != (NUM_JOINTS, 12) for f in bodies_per_frame for b in f):
        raise ValueError("every body needs joints of shape (25, 12)")
    return format_packed(*_body_arrays(bodies_per_frame), crlf)


def format_packed(
    counts: np.ndarray,
    ids: np.ndarray,
    ints: np.ndarray,
    lean: np.ndarray,
    joints: np.ndarray,
    crlf: bool,
) -> bytes:
    if not (np.isfinite(joints).all() and np.isfinite(lean).all()):
        raise ValueError("joint and lean values must be finite")
    if (ints < 0).any() or (ids < 0).any():
        raise ValueError("integer fields must be >= 0")
    out = _format_kernel(
        np.ascontiguousarray(counts, np.int64),
        np.ascontiguousarray(ids, np.int64),
        np.ascontiguousarray(ints, np.int64),
        np.ascontiguousarray(lean, np.float64),
        np.ascontiguousarray(joints, np.float64),
        bool(crlf),
        _P10,
    )
    return out.tobytes()


def _format_reference(
    bodies_per_frame: Sequence[Sequence[SkeletonBody]], *, crlf: bool = False
) -> str:
    """The same text with Python's ``%`` operator (slow): the specification of the kernel."""
    lines = [str(len(bodies_per_frame))]
    for frame in bodies_per_frame:
        lines.append(str(len(frame)))
        for b in frame:
            hl, hls, hr, hrs = b.hands
            lines.append(
                f"{b.body_id} {b.clipped_edges} {hl} {hls} {hr} {hrs} {b.is_restricted} "
                f"{b.lean[0] + 0.0:.7g} {b.lean[1] + 0.0:.7g} {b.tracking_state}"
            )
            lines.append(str(NUM_JOINTS))
            for row in np.asarray(b.joints, np.float64).tolist():
                lines.append(" ".join("%.7g" % (v + 0.0) for v in row[:11]) + f" {int(row[11])}")
    eol = "\r\n" if crlf else "\n"
    return eol.join(lines) + eol


_P10 = np.array([10.0**i for i in range(23)], dtype=np.float64)  # exact powers of ten


@numba.njit(cache=True, nogil=True)
def _put_int(buf, pos, v):
    """Write the decimal digits of the integer ``v``."""
    if v < 0:
        buf[pos] = 45  # '-'
        pos += 1
        v = -v
    n = 0
    w = v
    while True:
        n += 1
        w //= 10
        if w == 0:
            break
    for i in range(pos + n - 1, pos - 1, -1):
        buf[i] = 48 + v % 10
        v //= 10
    return pos + n


@numba.njit(cache=True, nogil=True)
def _scale(v, k, p10):
    """v * 10**k, one correctly rounded operation when |k| <= 22."""
    while k > 22:
        v *= p10[22]
        k -= 22
    while k < -22:
        v /= p10[22]
        k += 22
    if k >= 0:
        return v * p10[k]
    return v / p10[-k]


@numba.njit(cache=True, nogil=True)
def _product_error(a, b):
    """e with a * b == fl(a * b) + e exactly (Dekker's TwoProduct)."""
    p = a * b
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


@numba.njit(cache=True, nogil=True)
def _round_scaled(v, k, p10):
    """round(v * 10**k) of the exact product, ties to even (as printf does for %g)."""
    x = _scale(v, k, p10)
    f = math.floor(x)
    d = x - f
    if d == 0.5 and -22 <= k <= 22:
        # the rounded product sits on a tie: the exact value's side decides
        if k >= 0:
            side = _product_error(v, p10[k])
        else:
            prod = x * p10[-k]
            side = (v - prod) - _product_error(x, p10[-k])
        if side > 0.0:
            d = 1.0
        elif side < 0.0:
            d = 0.0
    if d > 0.5 or (d == 0.5 and int(f) % 2 == 1):
        f += 1.0
    return int(f)


@numba.njit(cache=True, nogil=True)
def _put_g7(buf, pos, v, p10, dig):
    """Write ``'%.7g' % v`` for a finite v (0 and -0 both as ``0``); ``dig``: 7-byte scratch."""
    if v == 0.0:
        buf[pos] = 48
        return pos + 1
    if v < 0.0:
        buf[pos] = 45
        pos += 1
        v = -v
    e = int(math.floor(math.log10(v)))
    m = _round_scaled(v, 6 - e, p10)
    if m >= 10000000:
        e += 1
        m = _round_scaled(v, 6 - e, p10)
    elif m < 1000000:
        e -= 1
        m = _round_scaled(v, 6 - e, p10)
    if m >= 10000000:  # 9.9999995... rounded up to the next power of ten
        m //= 10
        e += 1
    u = np.uint32(m)  # unsigned division by a constant is a multiplication
    for i in range(6, -1, -1):
        q = u // np.uint32(10)
        dig[i] = np.uint8(48 + (u - q * np.uint32(10)))
        u = q
    nd = 7
    while nd > 1 and dig[nd - 1] == 48:
        nd -= 1
    if -4 <= e < 7:
        if e >= 0:
            for i in range(e + 1):
                buf[pos] = dig[i] if i < nd else 48
                pos += 1
            if nd > e + 1:
                buf[pos] = 46  # '.'
                pos += 1
                for i in range(e + 1, nd):
                    buf[pos] = dig[i]
                    pos += 1
        else:
            buf[pos] = 48
            buf[pos + 1] = 46
            pos += 2
            for _ in range(-e - 1):
                buf[pos] = 48
                pos += 1
            for i in range(nd):
                buf[pos] = dig[i]
                pos += 1
    else:
        buf[pos] = dig[0]
        pos += 1
        if nd > 1:
            buf[pos] = 46
            pos += 1
            for i in range(1, nd):
                buf[pos] = dig[i]
                pos += 1
        buf[pos] = 101  # 'e'
        buf[pos + 1] = 45 if e < 0 else 43
        pos += 2
        ae = -e if e < 0 else e
        if ae < 10:
            buf[pos] = 48
            pos += 1
        pos = _put_int(buf, pos, ae)
    return pos


@numba.njit(cache=True, nogil=True)
def _eol(buf, pos, crlf):
    if crlf:
        buf[pos] = 13
        pos += 1
    buf[pos] = 10
    return pos + 1


@numba.njit(cache=True, nogil=True)
def _format_kernel(counts, ids, ints, lean, joints, crlf, p10):
    nb, nj = joints.shape[0], joints.shape[1]
    buf = np.empty(64 + 24 * counts.shape[0] + nb * (256 + nj * 12 * 18), np.uint8)
    dig = np.empty(8, np.uint8)
    pos = _eol(buf, _put_int(buf, 0, counts.shape[0]), crlf)
    b = 0
    for f in range(counts.shape[0]):
        pos = _eol(buf, _put_int(buf, pos, counts[f]), crlf)
        for _ in range(counts[f]):
            pos = _put_int(buf, pos, ids[b])
            for q in range(6):
                buf[pos] = 32
                pos = _put_int(buf, pos + 1, ints[b, q])
            for q in range(2):
                buf[pos] = 32
                pos = _put_g7(buf, pos + 1, lean[b, q], p10, dig)
            buf[pos] = 32
            pos = _eol(buf, _put_int(buf, pos + 1, ints[b, 6]), crlf)
            pos = _eol(buf, _put_int(buf, pos, nj), crlf)
            for j in range(nj):
                for c in range(11):
                    pos = _put_g7(buf, pos, joints[b, j, c], p10, dig)
                    buf[pos] = 32
                    pos += 1
                pos = _eol(buf, _put_int(buf, pos, int(joints[b, j, 11])), crlf)
            b += 1
    return buf[:pos]
