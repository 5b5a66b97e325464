"""Batch conversion: reference equality, determinism, resume, faults, formats."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from corpus import renamed_copies

import s2v
from s2v.errors import S2VError
from s2v.preprocess import convert as convert_mod
from s2v.preprocess.convert import ConvertOptions, convert
from s2v.preprocess.export import export_ctrgcn
from s2v.verify import verify_store

SMALL_BLOCKS = {"chunk_frames": 64, "shard_chunks": 2}  # a commit every ~128 frames


def arrays_of(path) -> dict:
    st = s2v.open(path)
    out = {
        "joints": np.asarray(st.joints[...]),
        "motion": np.asarray(st.motion_array[...]),
        "offsets": st.offsets,
    }
    for c in st.column_names():
        out[f"samples/{c}"] = st.column(c)
    for b in st.benchmarks:
        for p in ("train", "test"):
            out[f"{b}/{p}"] = st.split(b, p)
    return out


def assert_same_store(a, b) -> None:
    x, y = arrays_of(a), arrays_of(b)
    assert x.keys() == y.keys()
    for k in x:
        assert np.array_equal(x[k], y[k]), k
    ca = s2v.open(a).attrs["checksums"]
    assert ca == s2v.open(b).attrs["checksums"]


@pytest.mark.parametrize("dataset, files", [("ntu60", ("CS", "CV")), ("ntu120", ("CSub", "CSet"))])
@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_export_equals_the_reference_arrays_exactly(shared_data, tmp_path, dataset, files, fmt):
    out = tmp_path / f"{dataset}.{'zarr' if fmt == 'zarr' else 'h5'}"
    summary = convert(
        shared_data / "ntu",
        out,
        ConvertOptions(dataset=dataset, fmt=fmt),
        workers=1,
        progress=False,
    )
    assert summary.converted == 16 and not summary.failed
    st = s2v.open(out)
    for bench, ref_name in zip(st.benchmarks, files, strict=True):
        path = export_ctrgcn(st, bench, tmp_path / "x", pad=None, naming="ctrgcn")
        assert path.name == f"{dataset.upper()}_{ref_name}.npz"
        mine = np.load(path)
        ref = np.load(shared_data / "reference" / path.name)
        assert list(mine.keys()) == list(ref.keys())
        for k in ref:
            assert mine[k].dtype == ref[k].dtype and mine[k].shape == ref[k].shape, k
            assert np.array_equal(mine[k], ref[k]), (bench, k)


def test_export_pads_to_300_by_default(shared_data, tmp_path):
    convert(shared_data / "ntu", tmp_path / "s.zarr", ConvertOptions(), workers=1, progress=False)
    path = export_ctrgcn(s2v.open(tmp_path / "s.zarr"), "xsub", tmp_path)
    assert path.name == "NTU60_XSub.npz"
    x = np.load(path)["x_train"]
    assert x.shape == (14, 300, 150) and not x[:, 131:].any()


def test_store_records_slots_for_ntu120_duplication(shared_data, tmp_path):
    convert(
        shared_data / "ntu",
        tmp_path / "s.zarr",
        ConvertOptions(dataset="ntu120"),
        workers=1,
        progress=False,
    )
    s = s2v.open(tmp_path / "s.zarr").samples.set_index("name")
    assert s.loc["S001C001P001R001A001", "slots"] == 1  # one person
    assert s.loc["S001C001P001R001A024", "slots"] == 1  # furniture removed
    assert s.loc["S001C001P001R001A058", "slots"] == 2
    assert s.loc["S001C001P001R001A058", "actors"] == 2
    assert s.loc["S001C001P001R001A024", "bodies"] == 2


def test_one_and_two_workers_write_identical_stores(tmp_path):
    renamed_copies(tmp_path / "raw", 40)
    opts = ConvertOptions(**SMALL_BLOCKS)
    convert(tmp_path / "raw", tmp_path / "w1.zarr", opts, workers=1, progress=False)
    convert(tmp_path / "raw", tmp_path / "w2.zarr", opts, workers=2, progress=False)
    assert_same_store(tmp_path / "w1.zarr", tmp_path / "w2.zarr")


def test_zarr_and_hdf5_stores_read_back_the_same(tmp_path):
    renamed_copies(tmp_path / "raw", 20)
    convert(tmp_path / "raw", tmp_path / "s.zarr", ConvertOptions(), workers=1, progress=False)
    convert(
        tmp_path / "raw", tmp_path / "s.h5", ConvertOptions(fmt="h5"), workers=1, progress=False
    )
    z, h = s2v.open(tmp_path / "s.zarr"), s2v.open(tmp_path / "s.h5")
    assert z.fmt == "zarr" and h.fmt == "h5"
    assert_same_store(tmp_path / "s.zarr", tmp_path / "s.h5")
    for i in (0, 7, 19):
        assert np.array_equal(z.clip(i), h.clip(i))
        assert np.array_equal(z.motion(i), h.motion(i))
    assert z.samples.equals(h.samples)


def _interrupted_at_third_batch(tmp_path, monkeypatch, opts):
    """A reference store of 30 files, and a conversion of them stopped by Ctrl-C while the
    third batch (files 16-23) is converted; returns the interrupted output's path."""
    renamed_copies(tmp_path / "raw", 30)
    convert(tmp_path / "raw", tmp_path / "ref.zarr", opts, workers=1, progress=False)
    real = convert_mod.convert_batch
    calls = {"n": 0}

    def dies_at_third_batch(batch, o):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(batch, o)

    out = tmp_path / "out.zarr"
    with monkeypatch.context() as m:
        m.setattr(convert_mod, "convert_batch", dies_at_third_batch)
        with pytest.raises(S2VError, match="interrupted: rerun"):
            convert(tmp_path / "raw", out, opts, workers=1, progress=False)
    return out


def test_interrupted_conversion_resumes_to_the_same_store(tmp_path, monkeypatch):
    opts = ConvertOptions(**SMALL_BLOCKS)
    out = _interrupted_at_third_batch(tmp_path, monkeypatch, opts)
    assert not out.exists() and (tmp_path / "out.zarr.partial").exists()
    s = convert(tmp_path / "raw", out, opts, workers=1, progress=False)
    assert 0 < s.resumed_from < 17
    assert not (tmp_path / "out.zarr.partial").exists()
    assert_same_store(tmp_path / "ref.zarr", out)


SLOW_CONVERT = """
import sys, time
from s2v.preprocess import convert as c
real = c.convert_batch
def slow(batch, o):
    time.sleep(0.05 * len(batch))
    return real(batch, o)
c.convert_batch = slow
c.convert(sys.argv[1], sys.argv[2], c.ConvertOptions(fmt=sys.argv[3], chunk_frames=64, shard_chunks=2),
          workers=2, progress=False)
"""


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_killed_conversion_resumes(tmp_path, fmt):
    renamed_copies(tmp_path / "raw", 120)
    ext = "zarr" if fmt == "zarr" else "h5"
    opts = ConvertOptions(fmt=fmt, **SMALL_BLOCKS)
    convert(tmp_path / "raw", tmp_path / f"ref.{ext}", opts, workers=1, progress=False)
    out = tmp_path / f"out.{ext}"
    log = tmp_path / f"out.{ext}.partial.progress"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CONVERT, str(tmp_path / "raw"), str(out), fmt],
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    s = convert(tmp_path / "raw", out, opts, workers=2, progress=False)
    assert s.resumed_from > 0
    assert_same_store(tmp_path / f"ref.{ext}", out)
    assert verify_store(out) == []


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path):
    files = renamed_copies(tmp_path / "raw", 6)
    text = files[1].read_bytes()
    files[1].write_bytes(text[: len(text) // 2])  # truncated download
    files[3].write_bytes(text.replace(b"\n", b"\nnan 1 2\n", 1))  # garbage line
    (tmp_path / "raw" / "notes.skeleton").write_text("1\n")
    s = convert(tmp_path / "raw", tmp_path / "s.zarr", ConvertOptions(), workers=2, progress=False)
    assert s.converted == 4 and len(s.failed) == 3
    reasons = {f["name"]: f["reason"] for f in s.failed}
    assert "file ends early" in reasons[files[1].stem]
    assert reasons[files[1].stem].startswith(f"{files[1].stem}: line ")
    assert "notes: not an NTU sample name" in reasons["notes"]
    st = s2v.open(tmp_path / "s.zarr")
    assert len(st) == 4 and len(st.attrs["failed"]) == 3


def test_missing_list_formats_and_keep_missing(tmp_path):
    files = renamed_copies(tmp_path / "raw", 8)
    official = tmp_path / "official.txt"
    official.write_text(
        "2 samples are missing.\nIgnore them.\n\n" + files[0].stem + "\n" + files[5].stem + "\n"
    )
    plain = tmp_path / "plain.txt"
    plain.write_text(files[2].name + "\n")
    s = convert(
        tmp_path / "raw",
        tmp_path / "a.zarr",
        ConvertOptions(missing_list=str(official)),
        workers=1,
        progress=False,
    )
    assert (s.converted, s.skipped_missing) == (6, 2)
    assert files[0].stem not in set(s2v.open(tmp_path / "a.zarr").column("name"))
    s = convert(
        tmp_path / "raw",
        tmp_path / "b.zarr",
        ConvertOptions(missing_list=str(plain)),
        workers=1,
        progress=False,
    )
    assert (s.converted, s.skipped_missing) == (7, 1)
    s = convert(
        tmp_path / "raw",
        tmp_path / "c.zarr",
        ConvertOptions(missing_list=str(official), keep_missing=True),
        workers=1,
        progress=False,
    )
    assert (s.converted, s.skipped_missing) == (8, 0)


def test_builtin_missing_list_skips_official_names(tmp_path):
    files = renamed_copies(tmp_path / "raw", 3)
    shutil.copyfile(
        files[0], tmp_path / "raw" / "S001C002P005R002A008.skeleton"
    )  # officially missing
    s = convert(tmp_path / "raw", tmp_path / "s.zarr", ConvertOptions(), workers=1, progress=False)
    assert (s.converted, s.skipped_missing) == (3, 1)


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    renamed_copies(tmp_path / "raw", 5)
    out = tmp_path / "s.zarr"
    convert(tmp_path / "raw", out, ConvertOptions(), workers=1, progress=False)
    again = convert(tmp_path / "raw", out, ConvertOptions(), workers=1, progress=False)
    assert again.already_complete and again.converted == 5
    with pytest.raises(S2VError, match="exists and was made from other inputs or options"):
        convert(tmp_path / "raw", out, ConvertOptions(align_view=True), workers=1, progress=False)
    assert s2v.open(out).attrs["align_view"] is False
    convert(
        tmp_path / "raw",
        out,
        ConvertOptions(align_view=True),
        workers=1,
        progress=False,
        overwrite=True,
    )
    assert s2v.open(out).attrs["align_view"] is True


def test_benchmark_selection_writes_only_those_splits(tmp_path):
    renamed_copies(tmp_path / "raw", 60)
    convert(
        tmp_path / "raw",
        tmp_path / "s.zarr",
        ConvertOptions(benchmarks=("xview",)),
        workers=1,
        progress=False,
    )
    st = s2v.open(tmp_path / "s.zarr")
    assert st.benchmarks == ["xview"]
    cams = st.column("camera")
    assert set(cams[st.split("xview", "train")]) == {2, 3}
    assert set(cams[st.split("xview", "test")]) == {1}
    with pytest.raises(S2VError, match="no split 'xsub/train'"):
        st.split("xsub")


def test_align_view_puts_spine_on_z_and_shoulders_on_x(shared_data, tmp_path):
    convert(
        shared_data / "ntu",
        tmp_path / "s.zarr",
        ConvertOptions(align_view=True),
        workers=1,
        progress=False,
    )
    st = s2v.open(tmp_path / "s.zarr")
    for i in range(len(st)):
        f0 = st.clip(i)[0, 0].astype(np.float64)
        shoulders = f0[8] - f0[4]
        assert shoulders[1] == pytest.approx(0, abs=1e-5) and shoulders[2] == pytest.approx(
            0, abs=1e-5
        )
        assert shoulders[0] > 0
        spine = f0[1] - f0[0]
        assert abs(spine[2]) / np.linalg.norm(spine) > 0.9  # approximately on z (data.md §4)
    assert json.loads(json.dumps(st.attrs["options"]))["align_view"] is True


def test_verify_finds_a_corrupted_sample(tmp_path):
    renamed_copies(tmp_path / "raw", 10)
    out = tmp_path / "s.h5"
    convert(tmp_path / "raw", out, ConvertOptions(fmt="h5"), workers=1, progress=False)
    assert verify_store(out) == []
    import h5py

    with h5py.File(out, "r+") as f:
        f["joints"][150, 0, 3, 1] += 1.0
    faults = verify_store(out)
    assert len(faults) == 1 and "joints: 1 samples fail their crc32" in faults[0]


def test_batch_path_gives_the_per_file_results(tmp_path, shared_data):
    """convert_batch (one kernel call for many files, the workers' path) against
    convert_file, file by file: real files, a synthetic corpus with its faults (0-body frames,
    spurious and static bodies), damaged and unreadable files, in batches that mix them."""
    from s2v.preprocess.convert import convert_batch, convert_file
    from s2v.preprocess.synth import SynthConfig, generate_corpus

    files = generate_corpus(tmp_path / "synth", SynthConfig(classes=4, per_class=6, faults=True))
    files += sorted((shared_data / "ntu").glob("*.skeleton"))
    text = files[0].read_bytes()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for k, data in enumerate(
        [
            text[: len(text) // 2],  # truncated
            text.replace(b" ", b"  ", 40),  # double spaces: the careful kernel's path
            text.replace(b"\n", b"\r\n"),  # CRLF
            text.replace(b"\n25\n", b"\n24\n", 1),  # wrong joint count
            b"",
        ]
    ):
        p = damaged / f"S001C001P001R001A{k + 1:03d}.skeleton"
        p.write_bytes(data)
        files.append(p)
    two = (shared_data / "ntu" / "S001C001P001R001A024.skeleton").read_bytes().split(b"\n")
    p = damaged / "S001C001P001R001A010.skeleton"  # two bodyIDs in 8 frames: unusable
    cut, n = 1, 0
    while n < 8:
        cut += 1 + int(two[cut]) * 27
        n += 1
    p.write_bytes(b"\n".join([b"8"] + two[1:cut]) + b"\n")
    files.append(p)
    files.append(damaged / "S001C001P001R001A099.skeleton")  # does not exist
    (damaged / "S001C001P001R001A098.skeleton").mkdir()  # a directory
    files.append(damaged / "S001C001P001R001A098.skeleton")
    files.append(damaged / "notes.skeleton")
    (damaged / "notes.skeleton").write_text("1\n")
    tasks = list(enumerate(str(p) for p in files))
    for preset in ("ctrgcn", "none"):  # several bodyIDs: denoised in the kernel; with numpy
        kinds, errors = set(), []
        opts = ConvertOptions(preset=preset)
        for k in range(0, len(tasks), 7):
            batch = tasks[k : k + 7]
            for (i, p), got in zip(batch, convert_batch(batch, opts), strict=True):
                want = convert_file(i, p, opts)
                assert (got.index, got.name, got.nbytes, got.error) == (
                    want.index, want.name, want.nbytes, want.error,
                ), p  # fmt: skip
                if want.error is None:
                    assert got.row == want.row, p
                    assert np.array_equal(got.joints, want.joints), p
                    assert got.motion.dtype == want.motion.dtype
                    assert np.array_equal(got.motion, want.motion), p
                    kinds.add(want.row["bodies"] > 1)
                else:
                    errors.append(want.error)
        assert kinds == {False, True}  # files with one bodyID and with several
        assert any("11 frames or fewer" in e for e in errors) == (preset == "ctrgcn")


def test_batches_written_whole_or_file_by_file_hold_each_files_sample(tmp_path):
    """The writer takes a batch whose samples all came from the batch kernel in one copy, and
    the others file by file: batches of both kinds (double-spaced files go through the
    careful parser, damaged ones fail) give each file its own sample and row."""
    from s2v.preprocess.convert import convert_file

    files = renamed_copies(tmp_path / "raw", 40)
    for k in (3, 20):  # two batches with a file the batch kernel leaves to convert_file
        files[k].write_bytes(files[k].read_bytes().replace(b" ", b"  ", 30))
    files[9].write_bytes(files[9].read_bytes()[:5000])  # fails, its batch stays whole
    opts = ConvertOptions(**SMALL_BLOCKS)
    s = convert(tmp_path / "raw", tmp_path / "out.zarr", opts, workers=2, progress=False)
    assert s.converted == 39 and [f["name"] for f in s.failed] == [files[9].stem]
    st = s2v.open(tmp_path / "out.zarr")
    names = st.samples["name"].tolist()
    for p in files:
        want = convert_file(0, str(p), opts)
        if want.error is None:
            i = names.index(p.stem)
            assert np.array_equal(st.clip(i), want.joints), p.name
            assert np.array_equal(st.motion(i), want.motion.astype(np.float32)), p.name


def test_resume_reads_progress_logs_with_rows_as_dicts(tmp_path, monkeypatch):
    """Progress logs of earlier versions hold each row as a dict (now a list in COLUMNS
    order): a conversion interrupted by one resumes to the same store."""
    opts = ConvertOptions(**SMALL_BLOCKS)
    out = _interrupted_at_third_batch(tmp_path, monkeypatch, opts)
    log = tmp_path / "out.zarr.partial.progress"
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines[1:]]
    assert records and all(isinstance(r, list) for rec in records for r in rec["rows"])
    for rec in records:
        rec["rows"] = [dict(zip(convert_mod.COLUMNS, r, strict=True)) for r in rec["rows"]]
    log.write_text("\n".join([lines[0]] + [json.dumps(rec) for rec in records]) + "\n")
    s = convert(tmp_path / "raw", out, opts, workers=1, progress=False)
    assert s.resumed_from > 0
    assert_same_store(tmp_path / "ref.zarr", out)
