"""The .skeleton parser: exact values on real files, and a clear error for every damage."""

from pathlib import Path

import numpy as np
import pytest

from s2v.errors import ParseError
from s2v.preprocess.ntu import group_bodies, parse_name, parse_skeleton_bytes, read_skeleton


def python_parse(path: Path) -> tuple[np.ndarray, list[str]]:
    """The reference scripts' way: line by line, float32 of the first three fields."""
    lines = path.read_text().splitlines()
    xyz, ids = [], []
    i = 1
    for _ in range(int(lines[0])):
        nb = int(lines[i])
        i += 1
        for _ in range(nb):
            ids.append(lines[i].split()[0])
            i += 2
            for _ in range(25):
                xyz.append(np.array(lines[i].split()[:3], dtype=np.float32))
                i += 1
    return np.array(xyz, dtype=np.float32).reshape(-1, 25, 3), ids


def test_real_files_parse_to_the_reference_values(shared_data):
    files = sorted((shared_data / "ntu").glob("*.skeleton"))
    assert len(files) == 16
    for path in files:
        raw = read_skeleton(path)
        xyz, ids = python_parse(path)
        assert np.array_equal(raw.xyz, xyz), path.name
        assert [str(i) for i in raw.body_id] == ids, path.name


def test_crlf_and_lf_give_the_same_arrays(shared_data):
    data = (shared_data / "ntu" / "S001C001P001R001A001.skeleton").read_bytes()
    lf = data.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    a, b = parse_skeleton_bytes(lf, "x"), parse_skeleton_bytes(crlf, "x")
    assert np.array_equal(a.xyz, b.xyz) and np.array_equal(a.body_id, b.body_id)


def skeleton_text(frames: list[list[tuple[int, np.ndarray]]]) -> str:
    """Build a file: frames of [(bodyID, joints (25, 3))]."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for bid, joints in bodies:
            out.append(f"{bid} 0 1 1 1 1 0 0.01 0.02 2")
            out.append("25")
            for x, y, z in joints:
                out.append(f"{x:.7g} {y:.7g} {z:.7g} 250.1 200.2 900.3 500.4 0.1 0.2 0.3 0.4 2")
    return "\n".join(out) + "\n"


def body(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.3, (25, 3)) + [0, 0, 3]


def test_body_ids_are_exact_64_bit_integers():
    # these two IDs are equal as float64; the parser must keep them apart
    a, b = 72057594037931101, 72057594037931102
    assert float(a) == float(b)
    text = skeleton_text([[(a, body(0)), (b, body(1))]] * 3)
    raw = parse_skeleton_bytes(text.encode(), "x")
    assert list(raw.body_id) == [a, b, a, b, a, b]
    assert [bd.body_id for bd in group_bodies(raw)] == [a, b]


def test_zero_body_frames_are_dropped_and_not_counted():
    text = skeleton_text([[], [(7, body(0))], [], [(7, body(1))], []])
    raw = parse_skeleton_bytes(text.encode(), "x")
    assert raw.num_frames == 5 and raw.num_valid_frames == 2
    assert list(raw.frame) == [0, 1]


def test_a_body_that_reappears_is_shifted_to_a_contiguous_block():
    # reference quirk: frames of a body form one block from its first appearance
    text = skeleton_text(
        [[(1, body(0)), (2, body(1))], [(1, body(2))], [(1, body(3)), (2, body(4))]]
    )
    bodies = group_bodies(parse_skeleton_bytes(text.encode(), "x"))
    assert [(b.body_id, b.start, b.length) for b in bodies] == [(1, 0, 3), (2, 0, 2)]


def test_values_that_need_pythons_float_are_exact():
    j = body(0)
    text = skeleton_text([[(1, j)]]).splitlines()
    # 17 significant digits and a large exponent take the slow path
    text[4] = "0.12345678901234567 1e-30 3.0000000000000000001 1 1 1 1 1 1 1 1 2"
    raw = parse_skeleton_bytes(("\n".join(text) + "\n").encode(), "x")
    assert raw.xyz[0, 0].tolist() == [
        np.float32(0.12345678901234567),
        np.float32(1e-30),
        np.float32(3.0000000000000000001),
    ]


def fault(text: str, line: int, new: str | None) -> bytes:
    lines = text.splitlines()
    if new is None:
        lines = lines[: line - 1]
    else:
        lines[line - 1] = new
    return ("\n".join(lines) + "\n").encode()


GOOD = skeleton_text([[(1, body(0))], [(1, body(1))]])


@pytest.mark.parametrize(
    "data, line, message",
    [
        (fault(GOOD, 20, None), 20, "file ends early, expected a joint line"),
        (fault(GOOD, 5, "0.1 0.2 0.3 4 5 6 7"), 5, "expected 12 values, got 7"),
        (fault(GOOD, 6, "0.1 abc 0.3 4 5 6 7 8 9 10 11 2"), 6, "non-numeric value 'abc'"),
        (fault(GOOD, 7, "0.1 0.2 NaN 4 5 6 7 8 9 10 11 2"), 7, "x/y/z must be finite, got 'NaN'"),
        (fault(GOOD, 3, "1 0 1 1"), 3, "expected 10 values, got 4"),
        (fault(GOOD, 4, "24"), 4, "expected 25 joints, got 24"),
        (fault(GOOD, 1, "two"), 1, "expected a non-negative integer, got 'two'"),
        (fault(GOOD, 30, None), 30, "file ends early"),
        (b"3\n0\n0\n0\n", 1, "no frame has a body"),
        (b"", 1, "file ends early"),
    ],
)
def test_damaged_files_give_name_line_and_reason(data, line, message):
    with pytest.raises(ParseError) as info:
        parse_skeleton_bytes(data, "S001C001P001R001A001")
    text = str(info.value)
    assert text.startswith(f"S001C001P001R001A001: line {line}: ")
    assert message in text


def test_names_are_parsed_and_others_rejected():
    ids = parse_name("S017C003P040R002A120.skeleton")
    assert (ids.setup, ids.camera, ids.subject, ids.replication, ids.action) == (17, 3, 40, 2, 120)
    assert parse_name("S17C003P040R002A120") is None and parse_name("readme.txt") is None


def _both_kernels(data: bytes):
    from s2v.preprocess import ntu

    buf = np.frombuffer(data, np.uint8)
    cap = len(buf) // 600 + 1
    fast = (np.empty((cap, 25, 3), np.float32), np.empty(cap, np.int64), np.empty(cap, np.int32))
    nl = np.empty(len(buf) // 2 + 2, np.int64)
    spaces = np.empty(len(buf) // 2 + 2, np.int32)
    lines = ntu._index_lines(buf, nl, spaces)
    n_fast = -1
    if lines >= 0:
        counts = np.zeros(2, np.int64)
        n_fast = ntu._fast_kernel(buf, nl[:lines], spaces[:lines], ntu._P10, *fast, counts)
    careful = (np.empty((cap, 25, 3), np.float32), np.empty(cap, np.int64), np.empty(cap, np.int32))
    err = np.zeros(7, np.int64)
    n_careful = ntu._parse_kernel(buf, ntu._P10, *careful, np.empty((256, 5), np.int64), err)
    return n_fast, fast, n_careful, careful, err


def test_fast_path_takes_real_files_and_exponents_and_agrees_with_the_careful_kernel(shared_data):
    files = sorted((shared_data / "ntu").glob("*.skeleton"))
    j = body(3)
    j[0] = [-7.457591e-05, 1.5e-3, 3.0]  # exponent notation, as %g prints small values
    extra = skeleton_text([[(1, j)], [(1, body(4))]]).encode()
    assert b"e-05" in extra
    for data in [p.read_bytes() for p in files] + [extra]:
        n_fast, fast, n_careful, careful, err = _both_kernels(data)
        assert n_fast >= 0, "the fast kernel bailed out on a valid file"
        assert n_fast == n_careful and err[0] == 0 and err[6] == 0
        for a, b in zip(fast, careful, strict=True):
            assert np.array_equal(a[:n_fast], b[:n_fast])


def _with_numbers(max_frac: int, seed: int) -> tuple[bytes, np.ndarray]:
    """A 4-frame file whose x, y, z are written with 0 to max_frac fraction digits (cycling),
    0 to 3 integer digits, signs, leading zeros in the fraction and exponents; and the values
    float32(float(text)) of them."""
    rng = np.random.default_rng(seed)
    lines = skeleton_text([[(1, body(0))]] * 4).splitlines()
    want = []
    for n, i in enumerate(k for k, line in enumerate(lines) if line.count(" ") == 11):
        nums = []
        for c in range(3):
            frac = (n * 3 + c) % (max_frac + 1)
            whole = ["", "0", "7", "42", "315"][int(rng.integers(0, 5))]
            digits = "".join(str(d) for d in rng.integers(0, 10, frac))
            if rng.random() < 0.2:
                digits = "000" + digits[3:]  # leading zeros in the fraction
            text = (whole or "0") if not digits else f"{whole}.{digits}"
            if rng.random() < 0.5:
                text = "-" + text
            if rng.random() < 0.1:
                text += "e-0" + str(int(rng.integers(1, 9)))
            nums.append(text)
        lines[i] = " ".join(nums + lines[i].split(" ")[3:])
        want.append([np.float32(float(t)) for t in nums])
    return ("\n".join(lines) + "\n").encode(), np.array(want, np.float32).reshape(4, 25, 3)


def test_numbers_with_any_count_of_digits_parse_exactly():
    """The fast kernel reads up to 8 fraction digits at once: every count of digits it takes
    (up to 15 significant) gives float32(float(text)); longer ones go to the careful path
    and are exact too."""
    for seed in range(3):
        data, want = _with_numbers(12, seed)
        n_fast, fast, *_ = _both_kernels(data)
        assert n_fast == 4, "the fast kernel bailed out"
        np.testing.assert_array_equal(fast[0][:4], want)
        data, want = _with_numbers(17, seed)
        np.testing.assert_array_equal(parse_skeleton_bytes(data, "x").xyz, want)


def test_fast_path_bails_out_or_agrees_on_irregular_text():
    text = skeleton_text([[(1, body(0))], [(1, body(1))]])
    variants = [
        text.replace(" ", "  ", 1),  # double space in a body line
        text.replace("250.1 ", "250.1  "),  # double spaces among the ignored fields
        text.replace(" ", "  ", 3),  # double space between x and y
        text.replace(" ", "\t", 3),  # a tab
        text.replace("\n25\n", "\n 25\n", 1),
        text[:-30],  # truncated
    ]
    bailed = 0
    for v in variants:
        n_fast, fast, n_careful, careful, err = _both_kernels(v.encode())
        if n_fast == -1:
            bailed += 1
            continue
        assert n_fast == n_careful and err[0] == 0
        assert np.array_equal(fast[0][:n_fast], careful[0][:n_fast])
    assert bailed >= 3


def _index_lines_py(data: bytes) -> list[tuple[int, int]] | None:
    """Plain-Python statement of _index_lines: (line end, spaces on the line) per line, or
    None when two spaces follow each other anywhere (the kernel returns -1)."""
    if b"  " in data:
        return None
    out, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        out.append((end, data.count(b" ", start, end)))
        start = end + 1
    return out


def test_block_at_a_time_line_index_equals_a_plain_scan():
    from s2v.preprocess import ntu

    rng = np.random.default_rng(0)
    base = skeleton_text([[(1, body(1))], [(2, body(2)), (3, body(3))]]).encode()
    cases = [b"", b"1", b"\n", b"a b\n", b"a  b", b"1234567 \n x", b"1234567  x\n",
             b"12345678 \n", b"       ", b"1234567 ", b" 1234567", b"\n" * 9, base]  # fmt: skip
    for at in (62, 63, 64, 127, 128):  # across the 64-byte blocks and into the byte tail
        for piece in (b"  ", b" \n", b"\n ", b"\n\n", b" x "):
            cases.append(b"a" * at + piece + b"b b\n" * 20)
            cases.append(b"a" * at + piece)
    for i in range(400):  # spaces/newlines dropped in, doubled across word boundaries, cut
        b = bytearray(base)
        for p in rng.integers(0, len(b), size=rng.integers(1, 5)):
            b[p] = int(rng.choice([32, 10, 48, 13]))
        cases.append(bytes(b[: rng.integers(1, len(b))] if i % 3 == 0 else b))
    for data in cases:
        buf = np.frombuffer(data, np.uint8)
        nl = np.empty(len(buf) // 2 + 2, np.int64)
        spaces = np.empty(len(buf) // 2 + 2, np.int32)
        k = ntu._index_lines(buf, nl, spaces)
        want = _index_lines_py(data)
        if want is None or len(want) > len(nl):  # -1 also when nl is too short
            assert k == -1, data[:40]
        else:
            assert list(zip(nl[:k].tolist(), spaces[:k].tolist(), strict=True)) == want
