"""NTU RGB+D ``.skeleton`` files: names and a strict, fast parser.

Format (data.md §1): ``numFrames``; per frame ``numBodies``; per body a 10-field info line
(bodyID first, a 64-bit integer), ``numJoints`` (25) and 25 joint lines of 12 fields of which
only x, y, z (fields 0-2) are converted. CRLF and LF both occur.

The parser is one numba kernel over the file's bytes. Numbers are converted exactly as the
reference scripts do (Python ``float`` = correctly rounded text -> float64, then float32):
values with at most 15 significant digits and a decimal exponent within +-22 take the exact
fast path (Clinger 1990: both operands exact in float64, one correctly rounded operation);
anything else is handed back to Python's ``float``. Unlike the reference, damaged files are
rejected with ``NAME: line L: what is wrong`` (data.md §2, "the reference accepts some damaged
input silently").
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from s2v.errors import ParseError
from s2v.preprocess.bits import eq_mask64, load_u64, popcount, tzcount

NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

# kernel status codes
_OK, _TRUNC, _FIELDS, _NOT_INT, _NOT_NUM, _NONFINITE, _JOINTS, _EMPTY, _BIG_ID, _TOO_MANY = range(
    10
)

_P10 = np.array([10.0**i for i in range(23)], dtype=np.float64)


@dataclass(frozen=True)
class NtuName:
    """The five IDs in a sample name ``SsssCcccPpppRrrrAaaa``."""

    name: str
    setup: int
    camera: int
    subject: int
    replication: int
    action: int  # 1-based, as in the name


def parse_name(name: str) -> NtuName | None:
    """``S001C002P003R001A004`` (with or without ``.skeleton``) -> its IDs, None if not a name."""
    stem = name[: -len(".skeleton")] if name.endswith(".skeleton") else name
    m = NAME_RE.match(stem)
    if m is None:
        return None
    s, c, p, r, a = (int(g) for g in m.groups())
    return NtuName(stem, s, c, p, r, a)


@dataclass
class RawSkeleton:
    """A parsed file: one record per (non-empty frame, body), in file order.

    xyz: float32 (R, 25, 3); body_id: int64 (R,); frame: int32 (R,) index among the frames that
    have at least one body (frames with 0 bodies are dropped, as in the reference).
    """

    name: str
    num_frames: int  # frames declared in the header
    num_valid_frames: int  # frames with at least one body
    xyz: np.ndarray
    body_id: np.ndarray
    frame: np.ndarray


@numba.njit(cache=True, nogil=True, inline="always")
def _is_space(c):
    return c == 32 or c == 9 or c == 13  # ' ', '\t', '\r'


@numba.njit(cache=True, nogil=True, inline="always")
def _line_end(buf, pos):
    n = len(buf)
    while pos < n and buf[pos] != 10:
        pos += 1
    return pos


@numba.njit(cache=True, nogil=True, inline="always")
def _tokens(buf, start, end, tok_s, tok_e):
    """Split buf[start:end] on whitespace; fill up to len(tok_s) token bounds; return the count."""
    count = 0
    i = start
    while i < end:
        while i < end and _is_space(buf[i]):
            i += 1
        if i >= end:
            break
        s = i
        while i < end and not _is_space(buf[i]):
            i += 1
        if count < len(tok_s):
            tok_s[count] = s
            tok_e[count] = i
        count += 1
    return count


@numba.njit(cache=True, nogil=True, inline="always")
def _parse_int(buf, s, e):
    """Non-negative or negative decimal integer; returns (ok, value). Up to 18 digits."""
    i = s
    neg = False
    if i < e and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    if i >= e or e - i > 18:
        return False, 0
    v = 0
    while i < e:
        d = buf[i] - 48
        if d < 0 or d > 9:
            return False, 0
        v = v * 10 + d
        i += 1
    return True, -v if neg else v


@numba.njit(cache=True, nogil=True, inline="always")
def _parse_float(buf, s, e, p10):
    """Decimal text -> (status, float64). status 0 ok, 1 needs Python's float, 2 non-numeric,
    3 not finite (nan/inf)."""
    i = s
    neg = False
    if i < e and (buf[i] == 45 or buf[i] == 43):
        neg = buf[i] == 45
        i += 1
    if i < e and (buf[i] | 32) in (110, 105):  # 'n' or 'i': nan / inf
        return 3, 0.0
    mant = 0
    sig = 0  # significant digits taken into mant
    exp10 = 0
    ndig = 0
    while i < e and 48 <= buf[i] <= 57:
        if mant != 0 or buf[i] != 48:
            if sig < 19:
                mant = mant * 10 + (buf[i] - 48)
                sig += 1
            else:
                exp10 += 1
                sig += 1
        ndig += 1
        i += 1
    if i < e and buf[i] == 46:  # '.'
        i += 1
        while i < e and 48 <= buf[i] <= 57:
            if mant != 0 or buf[i] != 48:
                if sig < 19:
                    mant = mant * 10 + (buf[i] - 48)
                    exp10 -= 1
                sig += 1
            else:
                exp10 -= 1
            ndig += 1
            i += 1
    if ndig == 0:
        return 2, 0.0
    if i < e and (buf[i] | 32) == 101:  # 'e'
        i += 1
        eneg = False
        if i < e and (buf[i] == 45 or buf[i] == 43):
            eneg = buf[i] == 45
            i += 1
        if i >= e:
            return 2, 0.0
        ev = 0
        while i < e and 48 <= buf[i] <= 57:
            if ev < 10000:
                ev = ev * 10 + (buf[i] - 48)
            i += 1
        exp10 += -ev if eneg else ev
    if i != e:
        return 2, 0.0
    if mant == 0:
        v = 0.0
    elif sig > 15 or exp10 > 22 or exp10 < -22:
        return 1, 0.0
    elif exp10 >= 0:
        v = float(mant) * p10[exp10]
    else:
        v = float(mant) / p10[-exp10]
    return 0, -v if neg else v


@numba.njit(cache=True, nogil=True)
def _parse_kernel(buf, p10, xyz, body_id, frame, fix, err):
    """Parse a whole file, checking everything. Returns the number of records.

    err = [code, line, a, b, token start, token end, number of fix rows]; fix: int64 (K, 5) rows
    (record, joint*3+coord, token start, token end, line) of values that need Python's float.
    """
    n = len(buf)
    tok_s = np.zeros(13, dtype=np.int64)
    tok_e = np.zeros(13, dtype=np.int64)
    pos = 0
    line = 1
    nfix = 0
    # header: number of frames
    if pos >= n:
        err[0] = _TRUNC
        err[1] = line
        return 0
    end = _line_end(buf, pos)
    cnt = _tokens(buf, pos, end, tok_s, tok_e)
    if cnt != 1:
        err[0] = _FIELDS
        err[1] = line
        err[2] = 1
        err[3] = cnt
        return 0
    ok, num_frames = _parse_int(buf, tok_s[0], tok_e[0])
    if not ok or num_frames < 0:
        err[0] = _NOT_INT
        err[1] = line
        err[4] = tok_s[0]
        err[5] = tok_e[0]
        return 0
    err[2] = num_frames
    pos = end + 1
    line += 1
    rec = 0
    valid = 0
    for _f in range(num_frames):
        # number of bodies
        if pos >= n:
            err[0] = _TRUNC
            err[1] = line
            err[2] = 0
            return rec
        end = _line_end(buf, pos)
        cnt = _tokens(buf, pos, end, tok_s, tok_e)
        if cnt != 1:
            err[0] = _FIELDS
            err[1] = line
            err[2] = 1
            err[3] = cnt
            return rec
        ok, nb = _parse_int(buf, tok_s[0], tok_e[0])
        if not ok or nb < 0:
            err[0] = _NOT_INT
            err[1] = line
            err[4] = tok_s[0]
            err[5] = tok_e[0]
            return rec
        pos = end + 1
        line += 1
        if nb == 0:
            continue
        for _b in range(nb):
            # body info line: 10 fields, bodyID first
            if pos >= n:
                err[0] = _TRUNC
                err[1] = line
                err[2] = 1
                return rec
            end = _line_end(buf, pos)
            cnt = _tokens(buf, pos, end, tok_s, tok_e)
            if cnt != 10:
                err[0] = _FIELDS
                err[1] = line
                err[2] = 10
                err[3] = cnt
                return rec
            ok, bid = _parse_int(buf, tok_s[0], tok_e[0])
            if not ok:
                err[0] = _BIG_ID
                err[1] = line
                err[4] = tok_s[0]
                err[5] = tok_e[0]
                return rec
            pos = end + 1
            line += 1
            # number of joints
            if pos >= n:
                err[0] = _TRUNC
                err[1] = line
                err[2] = 2
                return rec
            end = _line_end(buf, pos)
            cnt = _tokens(buf, pos, end, tok_s, tok_e)
            if cnt != 1:
                err[0] = _FIELDS
                err[1] = line
                err[2] = 1
                err[3] = cnt
                return rec
            ok, nj = _parse_int(buf, tok_s[0], tok_e[0])
            if not ok:
                err[0] = _NOT_INT
                err[1] = line
                err[4] = tok_s[0]
                err[5] = tok_e[0]
                return rec
            if nj != 25:
                err[0] = _JOINTS
                err[1] = line
                err[3] = nj
                return rec
            pos = end + 1
            line += 1
            if rec >= xyz.shape[0]:
                err[0] = _TOO_MANY
                err[1] = line
                return rec
            for j in range(25):
                if pos >= n:
                    err[0] = _TRUNC
                    err[1] = line
                    err[2] = 3
                    return rec
                end = _line_end(buf, pos)
                cnt = _tokens(buf, pos, end, tok_s, tok_e)
                if cnt != 12:
                    err[0] = _FIELDS
                    err[1] = line
                    err[2] = 12
                    err[3] = cnt
                    return rec
                for c in range(3):
                    st, v = _parse_float(buf, tok_s[c], tok_e[c], p10)
                    if st == 0:
                        xyz[rec, j, c] = np.float32(v)
                    elif st == 1:
                        if nfix >= fix.shape[0]:
                            err[0] = _TOO_MANY
                            err[1] = line
                            return rec
                        fix[nfix, 0] = rec
                        fix[nfix, 1] = j * 3 + c
                        fix[nfix, 2] = tok_s[c]
                        fix[nfix, 3] = tok_e[c]
                        fix[nfix, 4] = line
                        nfix += 1
                    else:
                        err[0] = _NOT_NUM if st == 2 else _NONFINITE
                        err[1] = line
                        err[4] = tok_s[c]
                        err[5] = tok_e[c]
                        return rec
                pos = end + 1
                line += 1
            body_id[rec] = bid
            frame[rec] = valid
            rec += 1
        valid += 1
    err[3] = valid
    err[6] = nfix
    if valid == 0:
        err[0] = _EMPTY
        err[1] = 1
    return rec


@numba.njit(cache=True, nogil=True)
def _index_lines(buf, nl, spaces):
    """One pass: line ends and the number of spaces on each line. Returns the line count, or -1
    if the file has more lines than ``nl`` holds or two spaces in a row anywhere.

    64 bytes per step: the newlines and the spaces of a block become two bit masks (bits.py);
    each newline's position is its trailing-zero count, the spaces before it close its line
    (a popcount). About 2x faster than the 8-bytes-at-a-time bit tricks this replaced, and 4x
    faster than a byte loop. The last len(buf) % 64 bytes go byte by byte.
    """
    n = len(buf)
    nb = n // 64
    one, s63 = np.uint64(1), np.uint64(63)
    k = 0
    cnt = 0
    cap = len(nl)
    carry = np.uint64(0)  # the previous block ends with a space (as bit 0)
    dbl = np.uint64(0)  # any two spaces in a row
    for w in range(nb):
        base = w * 64
        nlm = eq_mask64(buf, base, np.uint8(10))
        spm = eq_mask64(buf, base, np.uint8(32))
        dbl |= spm & ((spm << one) | carry)
        carry = spm >> s63
        while nlm != 0:
            low = nlm & (~nlm + one)  # the first newline's bit
            below = low - one  # the bytes before it
            if k >= cap:
                return -1
            nl[k] = base + tzcount(nlm)
            spaces[k] = cnt + popcount(spm & below)
            k += 1
            cnt = 0
            spm &= ~(below | low)  # the spaces after this newline remain
            nlm &= nlm - one
        cnt += popcount(spm)
    prev = buf[nb * 64 - 1] if nb else 0
    for p in range(nb * 64, n):
        c = buf[p]
        if c == 32:
            if prev == 32:
                return -1
            cnt += 1
        elif c == 10:
            if k >= cap:
                return -1
            nl[k] = p
            spaces[k] = cnt
            k += 1
            cnt = 0
        prev = c
    if dbl != 0:
        return -1
    if n and buf[n - 1] != 10:
        if k >= cap:
            return -1
        nl[k] = n
        spaces[k] = cnt
        k += 1
    return k


@numba.njit(cache=True, nogil=True, inline="always")
def _byte(buf, p):
    """buf[p] for an index known to be in range: as an unsigned index, numba adds no
    negative-index wraparound (about 10 % of the parser's time)."""
    return buf[np.uint64(p)]


@numba.njit(cache=True, nogil=True, inline="always")
def _line_uint(buf, s, e):
    """The non-negative integer that is the whole of buf[s:e] (trailing '\\r' allowed), or -1."""
    if e > s and _byte(buf, e - 1) == 13:
        e -= 1
    if e <= s or e - s > 18:
        return -1
    v = 0
    for p in range(s, e):
        d = np.int64(_byte(buf, p)) - 48
        if d < 0 or d > 9:
            return -1
        v = v * 10 + d
    return v


# SWAR constants (8 text bytes in one uint64, first byte lowest)
_HI4 = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIX = np.uint64(0x0606060606060606)
_THREES = np.uint64(0x3333333333333333)
_LO7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HI = np.uint64(0x8080808080808080)
_LO4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_I10 = np.array([10**k for k in range(19)], dtype=np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _digits_ahead(w):
    """How many of the 8 bytes in w, from the first, are ASCII digits before any other byte.
    A byte is a digit iff its high nibble is 3 and adding 6 keeps it 3 (ASCII text: no carry
    between bytes before the first non-digit)."""
    t = ((w & _HI4) | (((w + _SIX) & _HI4) >> np.uint64(4))) ^ _THREES  # 0 where a digit
    m = (((t & _LO7) + _LO7) | t) & _HI  # bit 7 of each byte that is not a digit
    return 8 if m == 0 else tzcount(m) >> 3


@numba.njit(cache=True, nogil=True, inline="always")
def _digits_value(w, k):
    """The value of the first k (1..8) digit bytes of w: the digits moved to the top with
    zeros in front, then pairs, quads and octets combined by three multiplies (the
    eight-digit trick of simdjson, Lemire 2018)."""
    v = w << np.uint64(64 - 8 * k)
    v = ((v & _LO4) * np.uint64(2561)) >> np.uint64(8)
    v = ((v & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    v = ((v & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return np.int64(v)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fast_kernel(buf, nl, spaces, p10, xyz, body_id, frame, out):
    """The happy path only: returns the record count, or -1 at the first irregularity (the
    careful :func:`_parse_kernel` then re-parses the file and describes what is wrong).

    nl: positions of the line ends (every b'\\n', plus len(buf) if the file does not end with
    one). out = [declared frames, valid frames].
    """
    nlines = len(nl)
    nbuf = len(buf)
    i10 = _I10
    if nlines == 0:
        return -1
    num_frames = _line_uint(buf, 0, nl[0])
    if num_frames <= 0:
        return -1
    k = 1  # next line
    rec = 0
    valid = 0
    cap = xyz.shape[0]
    for _f in range(num_frames):
        if k >= nlines:
            return -1
        nb = _line_uint(buf, nl[k - 1] + 1, nl[k])
        k += 1
        if nb < 0:
            return -1
        if nb == 0:
            continue
        if k + nb * 27 > nlines or rec + nb > cap:
            return -1
        for _b in range(nb):
            # body line: the bodyID, then 9 more fields
            s, e = nl[k - 1] + 1, nl[k]
            bid = 0
            p = s
            while p < e and 48 <= _byte(buf, p) <= 57:
                bid = bid * 10 + (np.int64(_byte(buf, p)) - 48)
                p += 1
            if p == s or p - s > 18 or p >= e or _byte(buf, p) != 32:
                return -1
            if (
                spaces[k] != 9
                or _byte(buf, e - 1) == 32
                or _byte(buf, e - 1) == 13
                and _byte(buf, e - 2) == 32
            ):
                return -1
            if _line_uint(buf, nl[k] + 1, nl[k + 1]) != 25:
                return -1
            k += 2
            for j in range(25):
                p, e = nl[k - 1] + 1, nl[k]
                k += 1
                for c in range(3):
                    neg = False
                    if _byte(buf, p) == 45:
                        neg = True
                        p += 1
                    mant = np.int64(0)
                    exp10 = 0
                    nd = 0
                    while p < e:
                        d = np.int64(_byte(buf, p)) - 48
                        if d < 0 or d > 9:
                            break
                        mant = mant * 10 + d
                        nd += 1
                        p += 1
                    if p < e and _byte(buf, p) == 46:
                        p += 1
                        kd = 8
                        if p + 8 <= nbuf:  # up to 8 fraction digits at once
                            w = load_u64(buf, p)
                            kd = _digits_ahead(w)
                            if kd > 0:
                                mant = mant * i10[kd] + _digits_value(w, kd)
                                exp10 -= kd
                                nd += kd
                                p += kd
                        while kd == 8 and p < e:  # more digits (or no 8 bytes left)
                            d = np.int64(_byte(buf, p)) - 48
                            if d < 0 or d > 9:
                                break
                            mant = mant * 10 + d
                            exp10 -= 1
                            nd += 1
                            p += 1
                    if p < e and (
                        _byte(buf, p) == 101 or _byte(buf, p) == 69
                    ):  # exponent, as in 7.4e-05
                        p += 1
                        eneg = False
                        if p < e and (_byte(buf, p) == 45 or _byte(buf, p) == 43):
                            eneg = _byte(buf, p) == 45
                            p += 1
                        ev = 0
                        ne = 0
                        while p < e and 48 <= _byte(buf, p) <= 57 and ne < 4:
                            ev = ev * 10 + (np.int64(_byte(buf, p)) - 48)
                            ne += 1
                            p += 1
                        if ne == 0:
                            return -1
                        exp10 += -ev if eneg else ev
                    # exact: mant and 10^|exp10| are both exact doubles (Clinger's fast path)
                    if nd == 0 or nd > 18 or mant > 9007199254740992 or abs(exp10) > 22:
                        return -1
                    if p >= e or _byte(buf, p) != 32:
                        return -1
                    if exp10 < 0:
                        v = np.float64(mant) / p10[-exp10]
                    else:
                        v = np.float64(mant) * p10[exp10]
                    xyz[rec, j, c] = np.float32(-v if neg else v)
                    p += 1
                # the 9 other fields: counted, not converted
                # 12 fields: 11 single spaces (no double spaces: checked by the line index)
                if (
                    spaces[k - 1] != 11
                    or _byte(buf, e - 1) == 32
                    or _byte(buf, e - 1) == 13
                    and _byte(buf, e - 2) == 32
                ):
                    return -1
            body_id[rec] = bid
            frame[rec] = valid
            rec += 1
        valid += 1
    if valid == 0:
        return -1
    out[0] = num_frames
    out[1] = valid
    return rec


_SCRATCH = threading.local()


def _scratch(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The line index's scratch arrays (line ends, spaces per line) for at least ``n`` lines,
    reused by this thread from file to file: allocating ~4 bytes of index per byte of text
    afresh for each file costs more than the index pass itself touches."""
    nl = getattr(_SCRATCH, "nl", None)
    if nl is None or len(nl) < n:
        _SCRATCH.nl = nl = np.empty(max(n, 1 << 20), dtype=np.int64)
        _SCRATCH.spaces = np.empty(len(nl), dtype=np.int32)
    return nl, _SCRATCH.spaces


def parse_skeleton_bytes(data: bytes, name: str) -> RawSkeleton:
    """Parse one ``.skeleton`` file's bytes; raises :class:`ParseError` on damaged input."""
    buf = np.frombuffer(data, dtype=np.uint8)
    cap = len(buf) // 600 + 1  # a body record is >= 25 joint lines of >= 24 bytes
    xyz = np.empty((cap, 25, 3), dtype=np.float32)
    body_id = np.empty(cap, dtype=np.int64)
    frame = np.empty(cap, dtype=np.int32)
    counts = np.zeros(2, dtype=np.int64)
    nl, spaces = _scratch(len(buf) // 2 + 2)
    lines = _index_lines(buf, nl, spaces)
    rec = -1
    if lines >= 0:
        rec = _fast_kernel(buf, nl[:lines], spaces[:lines], _P10, xyz, body_id, frame, counts)
    if rec >= 0:
        return RawSkeleton(
            name, int(counts[0]), int(counts[1]), xyz[:rec], body_id[:rec], frame[:rec]
        )
    # something unusual: the careful kernel parses exactly what it can and says what is wrong
    fix = np.empty((256, 5), dtype=np.int64)
    err = np.zeros(7, dtype=np.int64)
    rec = _parse_kernel(buf, _P10, xyz, body_id, frame, fix, err)
    code, line = int(err[0]), int(err[1])
    if code != _OK:
        if code in (_FIELDS, _NOT_NUM, _NOT_INT) and not data.endswith(b"\n"):
            if line == data.count(b"\n") + 1:  # the cut-off last line of a truncated file
                raise ParseError(
                    name, "file ends early, in the middle of a line (truncated?)", line
                )
        raise ParseError(name, _describe(code, err, data), line)
    for r, k, s, e, ln in fix[: int(err[6])]:
        text = data[s:e].decode("ascii", "replace")
        try:
            v = float(text)
        except ValueError:
            raise ParseError(name, f"non-numeric value '{text}'", int(ln)) from None
        if not np.isfinite(v):
            raise ParseError(name, f"x/y/z must be finite, got '{text}'", int(ln))
        xyz[r, k // 3, k % 3] = np.float32(v)
    return RawSkeleton(
        name=name,
        num_frames=int(err[2]),
        num_valid_frames=int(err[3]),
        xyz=xyz[:rec],
        body_id=body_id[:rec],
        frame=frame[:rec],
    )


def _describe(code: int, err: np.ndarray, data: bytes) -> str:
    token = data[int(err[4]) : int(err[5])].decode("ascii", "replace")[:40]
    if code == _TRUNC:
        what = ("a body count", "a body line", "a joint count", "a joint line")[int(err[2])]
        return f"file ends early, expected {what} (truncated?)"
    if code == _FIELDS:
        return f"expected {int(err[2])} values, got {int(err[3])}"
    if code == _NOT_INT:
        return f"expected a non-negative integer, got '{token}'"
    if code == _BIG_ID:
        return f"bodyID '{token}' is not a 64-bit integer"
    if code == _NOT_NUM:
        return f"non-numeric value '{token}'"
    if code == _NONFINITE:
        return f"x/y/z must be finite, got '{token}'"
    if code == _JOINTS:
        return f"expected 25 joints, got {int(err[3])}"
    if code == _EMPTY:
        return "no frame has a body" if int(err[2]) else "the file declares 0 frames"
    return "too many bodies for the file size (corrupt counts?)"


def read_skeleton(path: str | Path) -> RawSkeleton:
    """Read and parse one ``.skeleton`` file."""
    path = Path(path)
    name = path.name[: -len(".skeleton")] if path.name.endswith(".skeleton") else path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(name, f"cannot read: {exc.strerror}") from None
    return parse_skeleton_bytes(data, name)


@dataclass
class Body:
    """One bodyID's frames, as the reference groups them.

    joints: float32 (n, 25, 3), frames in file order; start: index of its first (kept) frame.
    Reference quirk (data.md §2 step 1): a body's frames form one contiguous block from its
    first appearance, so its interval is [start, start + n - 1] even if it vanished meanwhile.
    """

    body_id: int
    joints: np.ndarray
    start: int

    @property
    def length(self) -> int:
        return len(self.joints)

    @property
    def end(self) -> int:
        return self.start + len(self.joints) - 1


def group_bodies(raw: RawSkeleton) -> list[Body]:
    """Records -> bodies in order of first appearance."""
    if len(raw.body_id) == 0:
        return []
    if raw.body_id[0] == raw.body_id[-1] and np.all(raw.body_id == raw.body_id[0]):
        body = Body(int(raw.body_id[0]), raw.xyz, int(raw.frame[0]))  # one body: most files
        if body.end >= raw.num_valid_frames:
            raise ParseError(raw.name, f"bodyID {body.body_id} appears twice in one frame")
        return [body]
    ids, first, inverse = np.unique(raw.body_id, return_index=True, return_inverse=True)
    bodies = []
    for k in np.argsort(first, kind="stable"):
        sel = np.flatnonzero(inverse == k)
        body = Body(int(ids[k]), raw.xyz[sel], int(raw.frame[sel[0]]))
        if body.end >= raw.num_valid_frames:
            raise ParseError(raw.name, f"bodyID {body.body_id} appears twice in one frame")
        bodies.append(body)
    return bodies


def warm_up() -> None:
    """Load the compiled kernels now (a forked worker pool then inherits them, instead of every
    worker loading numba's cache on its first file)."""
    joint = "0.1 0.2 3.0 1 2 3 4 0 0 0 0 2\n"
    text = "2\n1\n72057594037931101 0 1 1 1 1 0 0 0 2\n25\n" + joint * 25 + "0\n"
    parse_skeleton_bytes(text.encode(), "warm-up")
    try:  # the careful kernel too
        parse_skeleton_bytes(text.replace("0.1 ", "0.1  ", 1).encode(), "warm-up")
    except ParseError:
        pass
