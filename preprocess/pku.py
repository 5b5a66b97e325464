"""PKU-MMD (phase 1 = ``pku1``, phase 2 = ``pku2``) files: names, skeletons, labels, splits.

Formats (data.md §5):
- skeleton file ``VIDEO.txt``: one untrimmed video, one line per frame of 150 numbers =
  2 bodies x 25 joints x (x, y, z), body 2 all zeros when absent (``%.6f``, single spaces, LF);
- label file ``VIDEO.txt`` (same base name, another folder): rows
  ``action_id,start_frame,end_frame,confidence``;
- split files (``cross-subject.txt``, ``cross-view.txt``; phase 2 ``cross_subject_v2.txt``,
  ``cross_view_v2.txt``): line 1 a header, line 2 the training video IDs (comma and space
  separated), line 3 a header, line 4 the test video IDs.

Numbers are converted as the reference does (``np.loadtxt``: correctly rounded text -> float64,
then float32 for the arrays) by one numba kernel that also checks every row's count; damaged
input is reported as ``FILE: line L: what is wrong``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from s2v.errors import ParseError
from s2v.preprocess.ntu import _P10, _is_space, _parse_float

VALUES_PER_FRAME = 150  # 2 bodies x 25 joints x (x, y, z)

# Video names: phase 1 '0002-L' ... '0364-R', phase 2 'A01N01-L' ... 'A26N13-R'; L/M/R = view.
NAME_RE = {
    "pku1": re.compile(r"^(\d{4})-([LMR])$"),
    "pku2": re.compile(r"^A(\d{2})N(\d{2})-([LMR])$"),
}

# Official split files of each phase and benchmark; phase 1's are also seen with underscores.
SPLIT_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "pku1": {
        "xsub": ("cross-subject.txt", "cross_subject.txt"),
        "xview": ("cross-view.txt", "cross_view.txt"),
    },
    "pku2": {"xsub": ("cross_subject_v2.txt",), "xview": ("cross_view_v2.txt",)},
}

TRIMS = ("mamp", "aimclr")

# The 51 actions, 1-based IDs as in the label files (PKU-MMD's Actions.xlsx). Both phases use
# this ID space (phase 2 has 41 of them); labels are 51-way, as in MAMP.
PKU_ACTIONS: tuple[str, ...] = (
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping",
    "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack", "falling",
    "giving something to other person", "hand waving", "handshaking",
    "hopping (one foot jumping)", "hugging other person", "jump up", "kicking other person",
    "kicking something", "make a phone call/answer phone", "pat on back of other person",
    "pickup", "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person",
    "pushing other person", "put on a hat/cap", "put something inside pocket", "reading",
    "rub two hands together", "salute", "sitting down", "standing up", "take off a hat/cap",
    "take off glasses", "take off jacket", "take out something from pocket", "taking a selfie",
    "tear up paper", "throw", "touch back (backache)", "touch chest (stomachache/heart pain)",
    "touch head (headache)", "touch neck (neckache)", "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm", "wear jacket", "wear on glasses",
    "wipe face", "writing",
)  # fmt: skip
assert len(PKU_ACTIONS) == 51


@dataclass(frozen=True)
class PkuVideo:
    """A video name's parts. The performer is not part of PKU-MMD's names: subject is -1."""

    name: str
    view: str  # 'L', 'M' or 'R'
    subject: int = -1


def parse_video_name(name: str, dataset: str) -> PkuVideo | None:
    """``0002-L`` (pku1) / ``A01N01-L`` (pku2), with or without ``.txt`` -> its parts; None if
    the name is not one of the phase's video names."""
    stem = name[: -len(".txt")] if name.endswith(".txt") else name
    m = NAME_RE[dataset].match(stem)
    if m is None:
        return None
    return PkuVideo(stem, m.group(m.lastindex))


# --------------------------------------------------------------------------------------------
# skeleton files
# --------------------------------------------------------------------------------------------

# kernel status codes
_OK, _FIELDS, _NOT_NUM, _NONFINITE, _SLOW = range(5)


@numba.njit(cache=True, nogil=True)
def _skeleton_kernel(buf, p10, out, err):
    """Parse the rows of a skeleton file into ``out`` (float32 (cap, 150)); returns the row
    count. Blank lines are allowed only at the end. err = [code, line, count, token start,
    token end]; code _SLOW: a number needs Python's float (more than 15 significant digits)."""
    n = len(buf)
    pos = 0
    line = 0
    row = 0
    blank = 0  # the first blank line seen (an error if a row follows it)
    while pos < n:
        end = pos
        while end < n and buf[end] != 10:
            end += 1
        line += 1
        cnt = 0
        i = pos
        while i < end:
            while i < end and _is_space(buf[i]):
                i += 1
            if i >= end:
                break
            s = i
            while i < end and not _is_space(buf[i]):
                i += 1
            if cnt < 150:
                st, v = _parse_float(buf, s, i, p10)
                if st == 0:
                    out[row, cnt] = np.float32(v)
                else:
                    err[0] = (_SLOW, _NOT_NUM, _NONFINITE)[st - 1]
                    err[1] = line
                    err[3] = s
                    err[4] = i
                    return row
            cnt += 1
        pos = end + 1
        if cnt == 0:
            if blank == 0:
                blank = line
            continue
        if blank != 0:  # a row after a blank line: the blank line is a ragged row
            err[0] = _FIELDS
            err[1] = blank
            err[2] = 0
            return row
        if cnt != 150:
            err[0] = _FIELDS
            err[1] = line
            err[2] = cnt
            return row
        row += 1
    return row


@numba.njit(cache=True, nogil=True)
def _fast_kernel(buf, p10, out):
    """The happy path only (``%.6f``-like numbers, single spaces, LF or CRLF): returns the row
    count, or -1 at the first irregularity (the careful :func:`_skeleton_kernel` then says
    what is wrong). Conversion is exact: at most 15 digits and a scale of at most 10^22."""
    n = len(buf)
    p = 0
    row = 0
    cap = out.shape[0]
    while p < n:
        if row >= cap:
            return -1
        if buf[p] == 32:  # a leading space (every line but the first in the real files)
            p += 1
        for c in range(150):
            # the same number scan as ntu._fast_kernel's, written out: a shared inline helper
            # returning a tuple measured 20-50 % slower on both kernels
            neg = False
            if p < n and buf[p] == 45:  # '-'
                neg = True
                p += 1
            mant = np.int64(0)
            nd = 0
            exp10 = 0
            while p < n:
                d = np.int64(buf[p]) - 48
                if d < 0 or d > 9:
                    break
                mant = mant * 10 + d
                nd += 1
                p += 1
            if p < n and buf[p] == 46:  # '.'
                p += 1
                while p < n:
                    d = np.int64(buf[p]) - 48
                    if d < 0 or d > 9:
                        break
                    mant = mant * 10 + d
                    nd += 1
                    exp10 -= 1
                    p += 1
            if nd == 0 or nd > 15 or exp10 < -22:
                return -1
            v = np.float64(mant) / p10[-exp10]
            out[row, c] = np.float32(-v if neg else v)
            if c < 149:
                if p >= n or buf[p] != 32:
                    return -1
                p += 1
        if p < n and buf[p] == 32:  # a trailing space
            p += 1
        if p < n and buf[p] == 13:
            p += 1
        if p < n:
            if buf[p] != 10:
                return -1
            p += 1
        row += 1
    return row


def parse_skeleton_numpy(data: bytes, name: str) -> np.ndarray:
    """Plain Python version of :func:`parse_skeleton_bytes` (its specification, and the path
    for numbers the kernel does not convert exactly)."""
    rows = []
    blank = 0
    for line, text in enumerate(data.split(b"\n"), 1):
        tokens = text.split()
        if not tokens:
            blank = blank or line
            continue
        if blank:
            raise ParseError(name, f"expected {VALUES_PER_FRAME} values, got 0", blank)
        if len(tokens) != VALUES_PER_FRAME:
            raise ParseError(name, f"expected {VALUES_PER_FRAME} values, got {len(tokens)}", line)
        values = []
        for t in tokens:
            try:
                v = float(t)
            except ValueError:
                raise ParseError(name, f"non-numeric value '{_text(t)}'", line) from None
            if not np.isfinite(v):
                raise ParseError(name, f"x/y/z must be finite, got '{_text(t)}'", line)
            values.append(v)
        rows.append(values)
    if not rows:
        raise ParseError(name, "no frame in the file")
    return np.asarray(rows, dtype=np.float64).astype(np.float32).reshape(-1, 2, 25, 3)


def _text(token: bytes) -> str:
    return token.decode("ascii", "replace")[:40]


def parse_skeleton_bytes(data: bytes, name: str) -> np.ndarray:
    """A skeleton file's bytes -> float32 (F, 2, 25, 3); raises :class:`ParseError` naming the
    line of the first damaged row (a count other than 150, a non-numeric or non-finite value)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((data.count(b"\n") + 1, VALUES_PER_FRAME), dtype=np.float32)
    rows = _fast_kernel(buf, _P10, out)
    if rows > 0:
        return out[:rows].reshape(rows, 2, 25, 3)
    err = np.zeros(5, dtype=np.int64)
    rows = _skeleton_kernel(buf, _P10, out, err)
    code, line = int(err[0]), int(err[1])
    if code == _SLOW:
        return parse_skeleton_numpy(data, name)
    if code == _FIELDS:
        raise ParseError(name, f"expected {VALUES_PER_FRAME} values, got {int(err[2])}", line)
    if code in (_NOT_NUM, _NONFINITE):
        token = _text(data[int(err[3]) : int(err[4])])
        what = "non-numeric value" if code == _NOT_NUM else "x/y/z must be finite, got"
        raise ParseError(name, f"{what} '{token}'", line)
    if rows == 0:
        raise ParseError(name, "no frame in the file")
    return out[:rows].reshape(rows, 2, 25, 3)


def read_skeleton(path: str | Path, name: str | None = None) -> np.ndarray:
    """Read one skeleton file -> float32 (F, 2, 25, 3). ``name``: how messages call the file."""
    path = Path(path)
    name = name or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(name, f"cannot read: {exc.strerror}") from None
    return parse_skeleton_bytes(data, name)


def warm_up() -> None:
    """Load the compiled kernel now (a forked worker pool then inherits it)."""
    row = " ".join(["0.5"] * VALUES_PER_FRAME) + "\n"
    parse_skeleton_bytes(row.encode(), "warm-up")


# --------------------------------------------------------------------------------------------
# label files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    """One labelled action: ``index`` counts the file's non-blank rows from 0 (it names the
    clip, so names do not move when another row is damaged); ``line`` is 1-based."""

    index: int
    line: int
    action: int  # 1-based, as in the file
    start: int
    end: int
    confidence: int


def parse_labels(text: str, name: str) -> tuple[list[LabelRow], list[ParseError]]:
    """Rows of a label file and the faults of the rows that cannot be used (each a
    ``ParseError`` naming its line); a damaged row does not stop the others."""
    rows: list[LabelRow] = []
    faults: list[ParseError] = []
    index = 0
    for line, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s:
            continue
        k = index
        index += 1
        parts = [p.strip() for p in s.split(",")]
        if parts[-1] == "" and len(parts) == 5:  # a trailing comma
            parts = parts[:-1]
        if len(parts) != 4:
            faults.append(
                ParseError(
                    name,
                    "expected 4 comma-separated values (action_id,start_frame,end_frame,"
                    f"confidence), got {len(parts)}",
                    line,
                )
            )
            continue
        try:
            action, start, end, conf = (int(p) for p in parts)
        except ValueError:
            bad = next(p for p in parts if not _is_int(p))
            faults.append(ParseError(name, f"expected an integer, got '{bad[:40]}'", line))
            continue
        if not 1 <= action <= len(PKU_ACTIONS):
            faults.append(ParseError(name, f"action id {action} outside 1..51", line))
        elif start < 0:
            faults.append(ParseError(name, f"negative start frame {start}", line))
        elif start >= end:
            faults.append(
                ParseError(name, f"start frame {start} is not before end frame {end}", line)
            )
        else:
            rows.append(LabelRow(k, line, action, start, end, conf))
    return rows, faults


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def clip_bounds(row: LabelRow, trim: str) -> tuple[int, int]:
    """The frames [a, b) of the video that make the clip: MAMP ``seq[start:end]``; AimCLR
    ``seq[start-1:end]`` (1-based start, so one frame more, at the beginning)."""
    if trim == "mamp":
        return row.start, row.end
    if trim == "aimclr":
        return row.start - 1, row.end
    raise ValueError(f"unknown trim {trim!r}; choose from {TRIMS}")


# --------------------------------------------------------------------------------------------
# split files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitFile:
    """The video IDs of a split file, in file order (line 2: train, line 4: test)."""

    name: str
    train: tuple[str, ...]
    test: tuple[str, ...]


def parse_split_file(text: str, name: str) -> SplitFile:
    """Read a split file; raises :class:`ParseError` if line 2 or line 4 is missing or empty.

    Lines 1 and 3 are headers (their text is not checked); IDs are comma separated, spaces
    and a trailing comma are allowed, repeats are dropped.
    """
    lines = text.splitlines()
    parts = []
    for line, what in ((2, "training"), (4, "test")):
        if len(lines) < line:
            raise ParseError(
                name,
                f"missing: expected the {what} video IDs (the file has {len(lines)} lines)",
                line,
            )
        ids = [t.strip() for t in lines[line - 1].split(",")]
        ids = list(dict.fromkeys(t for t in ids if t))
        if not ids:
            raise ParseError(name, f"no {what} video IDs (expected them on this line)", line)
        parts.append(tuple(ids))
    return SplitFile(name, parts[0], parts[1])
