"""PKU-MMD conversion: parsing, trims, dropped and truncated clips, labels, splits, faults."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import s2v
from s2v.errors import ParseError, S2VError
from s2v.preprocess.cli import main
from s2v.preprocess.convert_pku import PkuOptions, convert_pku
from s2v.preprocess.pku import (
    PKU_ACTIONS,
    parse_labels,
    parse_skeleton_bytes,
    parse_skeleton_numpy,
    parse_split_file,
)

REAL = "A10N08-L"  # real phase-2 file: 1,040 frames, body 2 in frames 312..1039


def video_text(seq: np.ndarray) -> str:
    """(F, 2, 25, 3) -> the PKU text: %.6f, single spaces, lines after the first start with a
    space (as in the real files)."""
    return "\n ".join(" ".join(f"{v:.6f}" for v in row) for row in seq.reshape(len(seq), 150))


def synthetic(frames: int, seed: int, two: bool = False) -> np.ndarray:
    """A video whose values survive the %.6f round trip: multiples of 1e-6."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(-2_000_000, 3_000_000, size=(frames, 2, 25, 3)) / 1e6
    if not two:
        seq[:, 1] = 0
    return seq


def exact(text: str) -> np.ndarray:
    """The reference reading of a video: np.loadtxt -> float32."""
    rows = [np.array(line.split(), dtype=np.float64) for line in text.splitlines() if line.strip()]
    return np.asarray(rows).astype(np.float32).reshape(-1, 2, 25, 3)


@pytest.fixture
def corpus(tmp_path, shared_data):
    """skeletons/ (the real file and two synthetic videos), labels/, splits/ of phase 2."""
    sk, lab, spl = tmp_path / "skeletons", tmp_path / "labels", tmp_path / "splits"
    for d in (sk, lab, spl):
        d.mkdir()
    shutil.copyfile(shared_data / "pkummd" / f"{REAL}.txt", sk / f"{REAL}.txt")
    (sk / "A01N01-M.txt").write_text(video_text(synthetic(120, 1)) + "\n")
    quiet = synthetic(500, 2, two=True)
    quiet[40:80] = 0  # no body at all in frames 40..79
    (sk / "A01N02-R.txt").write_text(video_text(quiet) + "\n")
    (lab / f"{REAL}.txt").write_text("8,10,60,1\n13,300,700,2\n41,1000,1040,1\n")
    (lab / "A01N01-M.txt").write_text("5,0,30,2\n6,30,119,1\n")
    (lab / "A01N02-R.txt").write_text("1,40,80,1\n51,100,450,1\n")
    (spl / "cross_subject_v2.txt").write_text(
        f"Training videos: \nA01N02-R, {REAL}\nValidation videos: \nA01N01-M\n"
    )
    (spl / "cross_view_v2.txt").write_text(
        f"Training videos: \n{REAL}, A01N01-M\nValidation videos: \nA01N02-R, \n"
    )
    return tmp_path


def run(corpus, out="s.zarr", **opts):
    options = PkuOptions(dataset="pku2", **opts)
    s = convert_pku(
        corpus / "skeletons",
        corpus / "labels",
        corpus / "splits",
        corpus / out,
        options,
        workers=1,
        progress=False,
    )
    return s, s2v.open(corpus / out)


def clip_of(st, name):
    return st.clip(int(np.flatnonzero(st.column("name") == name)[0]))


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------


def test_the_real_file_parses_exactly_as_loadtxt(shared_data):
    data = (shared_data / "pkummd" / f"{REAL}.txt").read_bytes()
    seq = parse_skeleton_bytes(data, REAL)
    assert seq.shape == (1040, 2, 25, 3) and seq.dtype == np.float32
    ref = np.loadtxt(shared_data / "pkummd" / f"{REAL}.txt").astype(np.float32)
    assert np.array_equal(seq.reshape(1040, 150), ref)
    assert np.array_equal(parse_skeleton_numpy(data, REAL), seq)
    body2 = seq[:, 1].any(axis=(1, 2))
    assert body2.sum() == 728 and np.flatnonzero(body2)[0] == 312


def test_the_kernel_agrees_with_the_plain_version_on_unusual_text():
    seq = synthetic(6, 3, two=True)
    rows = [" ".join(f"{v:.6f}" for v in r) for r in seq.reshape(6, 150)]
    rows[1] = "  " + rows[1].replace(" ", "\t", 3) + "  "  # tabs, several spaces
    rows[2] = rows[2].replace("0.", "0.0000000000000000001", 1)  # > 15 digits: Python's float
    rows[3] = "1.5e-3 " + rows[3].split(" ", 1)[1]  # an exponent
    text = "\r\n".join(rows) + "\r\n\n"  # CRLF, blank lines at the end
    a = parse_skeleton_bytes(text.encode(), "x")
    assert np.array_equal(a, parse_skeleton_numpy(text.encode(), "x"))
    assert np.array_equal(a, exact(text))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda r: r[:3] + [" ".join(r[3].split()[:-1])] + r[4:],
            "line 4: expected 150 values, got 149",
        ),
        (lambda r: r[:2] + [""] + r[2:], "line 3: expected 150 values, got 0"),
        (lambda r: [r[0].replace("0.", "x.", 1)] + r[1:], "line 1: non-numeric value"),
        (
            lambda r: r[:1] + ["nan " + r[1].split(" ", 1)[1]] + r[2:],
            "line 2: x/y/z must be finite",
        ),
        (lambda r: [], "no frame in the file"),
    ],
)
def test_damaged_skeleton_files_name_the_line(edit, message):
    rows = [" ".join(f"{v:.6f}" for v in r) for r in synthetic(5, 4).reshape(5, 150)]
    data = "\n".join(edit(rows)).encode()
    for parse in (parse_skeleton_bytes, parse_skeleton_numpy):
        with pytest.raises(ParseError, match=message) as exc:
            parse(data, "v.txt")
        assert str(exc.value).startswith("v.txt: ")


def test_label_rows_and_their_faults():
    text = "8,10,60,1\n\n13, 300, 700, 2\n60,1,5,1\n7,9,9,1\n7,a,9,1\n1,2,3\n2,-1,4,1\n"
    rows, faults = parse_labels(text, "l.txt")
    assert [(r.index, r.line, r.action, r.start, r.end, r.confidence) for r in rows] == [
        (0, 1, 8, 10, 60, 1),
        (1, 3, 13, 300, 700, 2),
    ]
    assert [str(f) for f in faults] == [
        "l.txt: line 4: action id 60 outside 1..51",
        "l.txt: line 5: start frame 9 is not before end frame 9",
        "l.txt: line 6: expected an integer, got 'a'",
        "l.txt: line 7: expected 4 comma-separated values "
        "(action_id,start_frame,end_frame,confidence), got 3",
        "l.txt: line 8: negative start frame -1",
    ]


def test_split_files_lines_two_and_four():
    sf = parse_split_file("Training videos: \n0002-L, 0002-M,\r\nValidation: \n0003-L\n", "s.txt")
    assert sf.train == ("0002-L", "0002-M") and sf.test == ("0003-L",)
    with pytest.raises(ParseError, match="s.txt: line 4: missing: expected the test video IDs"):
        parse_split_file("Training videos: \n0002-L\n", "s.txt")
    with pytest.raises(ParseError, match="s.txt: line 2: no training video IDs"):
        parse_split_file("Training videos: \n\nValidation: \n0003-L\n", "s.txt")


# ------------------------------------------------------------------------------------------
# conversion
# ------------------------------------------------------------------------------------------


def test_trims_cut_exact_frames(corpus):
    seq = parse_skeleton_bytes((corpus / "skeletons" / f"{REAL}.txt").read_bytes(), REAL)
    _, mamp = run(corpus, "mamp.zarr")
    _, aim = run(corpus, "aimclr.zarr", trim="aimclr")
    assert mamp.attrs["trim"] == "mamp" and aim.attrs["trim"] == "aimclr"
    m, a = clip_of(mamp, f"{REAL}_000"), clip_of(aim, f"{REAL}_000")  # row 8,10,60
    assert np.array_equal(m, seq[10:60]) and np.array_equal(a, seq[9:60])
    assert len(a) == len(m) + 1 and np.array_equal(a[1:], m)  # one more frame, at the start
    assert np.array_equal(a[0], seq[9]) and np.array_equal(a[-1], m[-1])
    # the row that ends at the video's end
    assert np.array_equal(clip_of(mamp, f"{REAL}_002"), seq[1000:1040])
    assert np.array_equal(clip_of(aim, f"{REAL}_002"), seq[999:1040])


def test_all_zero_clips_are_dropped_and_long_ones_truncated(corpus):
    s, st = run(corpus)
    assert s.dropped_empty == 1 and st.attrs["dropped_empty"] == ["A01N02-R_000"]
    assert "A01N02-R_000" not in set(st.column("name"))
    seq = exact((corpus / "skeletons" / "A01N02-R.txt").read_text())
    long = clip_of(st, "A01N02-R_001")  # frames 100..450: the first 300 are kept
    assert np.array_equal(long, seq[100:400])
    assert s.truncated == 2 and st.attrs["truncated"] == 2  # and the real 300..700
    row = st.samples.set_index("name").loc["A01N02-R_001"]
    assert (row["start"], row["end"], row["frames"]) == (100, 450, 300)


def test_labels_columns_and_attributes(corpus):
    s, st = run(corpus)
    assert (s.converted, s.videos, s.failed) == (6, 3, [])
    assert len(st) == 6 and st.dataset == "pku2" and st.label_names == list(PKU_ACTIONS)
    assert st.attrs["center"] is False and st.attrs["max_frames"] == 300
    df = st.samples.set_index("name")
    assert list(df.index) == [
        "A01N01-M_000",
        "A01N01-M_001",
        "A01N02-R_001",
        f"{REAL}_000",
        f"{REAL}_001",
        f"{REAL}_002",
    ]
    r = df.loc[f"{REAL}_001"]
    assert (r["video"], r["view"], r["subject"], r["action"], r["label"]) == (REAL, "L", -1, 13, 12)
    assert (r["start"], r["end"], r["confidence"], r["frames"], r["actors"]) == (
        300,
        700,
        2,
        300,
        2,
    )
    assert df.loc[f"{REAL}_000", "actors"] == 1  # body 2 appears at frame 312
    assert df["label"].tolist() == [4, 5, 50, 7, 12, 40]
    assert df["frames"].sum() == int(st.offsets[-1])
    from s2v.verify import verify_store

    assert verify_store(corpus / "s.zarr") == []


def test_splits_follow_the_split_files(corpus):
    _, st = run(corpus)
    names = st.column("name")
    assert list(names[st.split("xsub", "train")]) == [
        "A01N02-R_001",
        f"{REAL}_000",
        f"{REAL}_001",
        f"{REAL}_002",
    ]
    assert list(names[st.split("xsub", "test")]) == ["A01N01-M_000", "A01N01-M_001"]
    assert list(names[st.split("xview", "train")]) == [
        f"{REAL}_000",
        f"{REAL}_001",
        f"{REAL}_002",
        "A01N01-M_000",
        "A01N01-M_001",
    ]
    assert list(names[st.split("xview", "test")]) == ["A01N02-R_001"]
    _, only = run(corpus, "x.zarr", benchmarks=("xview",))
    assert only.benchmarks == ["xview"]


def test_bad_inputs_are_reported_and_the_rest_converts(corpus):
    sk, lab, spl = corpus / "skeletons", corpus / "labels", corpus / "splits"
    rows = (sk / "A01N01-M.txt").read_text().splitlines()
    rows[4] = " ".join(rows[4].split()[:-1])  # a ragged row
    (sk / "A02N01-L.txt").write_text("\n".join(rows) + "\n")
    (lab / "A02N01-L.txt").write_text("1,0,10,1\n")
    (lab / f"{REAL}.txt").write_text("8,10,60,1\n9,1000,1100,1\n3,50,50,1\n3,60,40,1\n")
    (sk / "A03N01-M.txt").write_text(video_text(synthetic(10, 5)) + "\n")  # no label file
    (spl / "cross_subject_v2.txt").write_text(
        f"Training videos: \nA01N02-R, {REAL}, A99N99-L\nValidation videos: \nA01N01-M\n"
    )
    (spl / "cross_view_v2.txt").write_text(f"Training videos: \n{REAL}, A01N01-M\n")
    (sk / "notes.txt").write_text("not a video")
    s, st = run(corpus)
    assert [f["reason"] for f in s.failed] == [
        "skeletons/A02N01-L.txt: line 5: expected 150 values, got 149 (video A02N01-L skipped)",
        "labels/A03N01-M.txt: no such label file (video A03N01-M skipped)",
        f"labels/{REAL}.txt: line 2: frames 1000..1100 lie outside the video "
        f"(1040 frames in skeletons/{REAL}.txt)",
        f"labels/{REAL}.txt: line 3: start frame 50 is not before end frame 50",
        f"labels/{REAL}.txt: line 4: start frame 60 is not before end frame 40",
        "splits/cross_subject_v2.txt: line 2: 1 unknown video (no skeleton file): A99N99-L",
        "splits/cross_view_v2.txt: line 4: missing: expected the test video IDs "
        "(the file has 2 lines) (xview left out)",
    ]
    assert s.failed[0]["name"] == "skeletons/A02N01-L.txt"
    assert st.attrs["failed"] == s.failed and s.outside_dataset == 1
    assert s.converted == 4 and st.benchmarks == ["xsub"]  # the rest converts
    assert list(st.column("name")) == [
        "A01N01-M_000",
        "A01N01-M_001",
        "A01N02-R_001",
        f"{REAL}_000",
    ]


def test_aimclr_needs_a_start_frame_from_1(corpus):
    (corpus / "labels" / "A01N01-M.txt").write_text("5,0,30,2\n")
    s, _ = run(corpus, trim="aimclr")
    assert s.failed[0]["reason"] == (
        "labels/A01N01-M.txt: line 1: frames 0..30 lie outside the video "
        "(120 frames in skeletons/A01N01-M.txt) (--trim aimclr counts frames from 1)"
    )


def test_centring_is_off_by_default_and_follows_the_ntu_rule(corpus):
    seq = parse_skeleton_bytes((corpus / "skeletons" / f"{REAL}.txt").read_bytes(), REAL)
    _, raw = run(corpus)
    _, cen = run(corpus, "c.h5", center=True, fmt="h5")
    assert raw.attrs["center"] is False and cen.attrs["center"] is True
    assert np.array_equal(clip_of(raw, f"{REAL}_001"), seq[300:600])
    c = clip_of(cen, f"{REAL}_001")  # frames 300..599: body 2 from 312
    origin = seq[300, 0, 1]
    assert np.array_equal(c[0, 0, 1], np.zeros(3, np.float32))
    assert np.array_equal(c[:, 0], seq[300:600, 0] - origin)
    assert not c[:12, 1].any()  # absent rows stay zero
    assert np.array_equal(c[12:, 1], seq[312:600, 1] - origin)


def test_zarr_h5_and_worker_counts_give_the_same_clips(corpus):
    _, z = run(corpus)
    s = convert_pku(
        corpus / "skeletons",
        corpus / "labels",
        corpus / "splits",
        corpus / "s.h5",
        PkuOptions(dataset="pku2", fmt="h5"),
        workers=2,
        progress=False,
    )
    h = s2v.open(corpus / "s.h5")
    assert s.converted == len(z) == len(h)
    assert z.samples.equals(h.samples)
    assert np.array_equal(np.asarray(z.joints[...]), np.asarray(h.joints[...]))
    assert np.array_equal(np.asarray(z.motion_array[...]), np.asarray(h.motion_array[...]))
    assert z.attrs["checksums"] == h.attrs["checksums"]


def test_existing_output_needs_overwrite(corpus):
    run(corpus)
    again, _ = run(corpus)
    assert again.already_complete and again.converted == 6
    with pytest.raises(S2VError, match="exists and was made from other inputs or options"):
        run(corpus, trim="aimclr")
    (corpus / "t.zarr.partial").mkdir()
    (corpus / "t.zarr.partial.progress").write_text('{"fingerprint": "other"}\n')
    with pytest.raises(S2VError, match="t.zarr.partial is an unfinished conversion of other"):
        run(corpus, "t.zarr")
    assert (corpus / "t.zarr.partial").is_dir()
    s = convert_pku(
        corpus / "skeletons",
        corpus / "labels",
        corpus / "splits",
        corpus / "s.zarr",
        PkuOptions(dataset="pku2", trim="aimclr"),
        workers=1,
        overwrite=True,
        progress=False,
    )
    assert s.converted == 6 and s2v.open(corpus / "s.zarr").attrs["trim"] == "aimclr"


def test_missing_inputs_are_one_line_errors(corpus, tmp_path):
    with pytest.raises(S2VError, match="no pku1 skeleton files"):
        convert_pku(
            corpus / "skeletons",
            corpus / "labels",
            corpus / "splits",
            tmp_path / "o.zarr",
            PkuOptions(),
        )
    (corpus / "splits" / "cross_view_v2.txt").unlink()
    with pytest.raises(S2VError, match="splits: no xview split file"):
        run(corpus)


def test_cli_converts_and_summarises(corpus):
    r = CliRunner().invoke(
        main,
        [
            "pku2",
            str(corpus / "skeletons"),
            "--labels",
            str(corpus / "labels"),
            "--splits",
            str(corpus / "splits"),
            "-o",
            str(corpus / "cli.zarr"),
            "--workers",
            "1",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "converted      6 clips of 3 videos, 809 frames (trim mamp)" in r.output
    assert "dropped        1 all-zero clips; 2 clips truncated to 300 frames" in r.output
    assert "splits         xsub 4/2, xview 5/1" in r.output
    (corpus / "labels" / "A01N01-M.txt").write_text("5,0,300,2\n")
    args = ["pku2", str(corpus / "skeletons"), "--labels", str(corpus / "labels")]
    args += ["--splits", str(corpus / "splits"), "-o", str(corpus / "b.zarr"), "-q", "--strict"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 3 and "line 1: frames 0..300 lie outside the video" in r.output
    for command in ("pku1", "pku2"):
        r = CliRunner().invoke(main, [command, "--help"])
        assert r.exit_code == 0 and "--trim [mamp|aimclr]" in r.output
