"""Exports and imports: the PYSKL pickle, CTR-GCN/MAMP .npz round trips, the reference files."""

import pickle

import numpy as np
import pytest
from click.testing import CliRunner

import s2v
from s2v.errors import S2VError
from s2v.preprocess.cli import main
from s2v.preprocess.convert import ConvertOptions, convert
from s2v.preprocess.export import export_ctrgcn, export_pyskl
from s2v.preprocess.importers import guess_benchmark, guess_dataset, import_file
from s2v.verify import verify_store


@pytest.fixture(scope="module")
def converted(shared_data, tmp_path_factory):
    """dataset -> the store converted from the sixteen real NTU files."""
    root = tmp_path_factory.mktemp("conv")
    out = {}
    for dataset in ("ntu60", "ntu120"):
        convert(
            shared_data / "ntu",
            root / f"{dataset}.zarr",
            ConvertOptions(dataset=dataset),
            workers=1,
            progress=False,
        )
        out[dataset] = s2v.open(root / f"{dataset}.zarr")
    return out


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def clips_in_order(st, idx):
    return [st.clip(int(i)) for i in idx]


# ------------------------------------------------------------------------------------------
# PYSKL
# ------------------------------------------------------------------------------------------


def test_pyskl_pickle_layout(converted, tmp_path):
    st = converted["ntu60"]
    path = export_pyskl(st, tmp_path / "ntu60_3danno.pkl")
    assert not (tmp_path / "ntu60_3danno.pkl.partial").exists()
    with open(path, "rb") as f:
        data = pickle.load(f)
    assert set(data) == {"split", "annotations"}
    assert set(data["split"]) == {"xsub_train", "xsub_val", "xview_train", "xview_val"}
    names = st.column("name")
    assert data["split"]["xview_val"] == list(names[st.split("xview", "test")])
    assert data["split"]["xsub_train"] == list(names[st.split("xsub", "train")])
    anns = data["annotations"]
    assert [a["frame_dir"] for a in anns] == list(names)
    actors = st.column("actors")
    for i, a in enumerate(anns):
        kp = a["keypoint"]
        assert kp.dtype == np.float32 and kp.shape == (actors[i], st.frames(i), 25, 3)
        assert a["total_frames"] == st.frames(i) and a["label"] == st.labels[i]
        assert isinstance(a["label"], int)
        assert np.array_equal(kp, st.clip(i)[:, : actors[i]].transpose(1, 0, 2, 3))
    assert {a["keypoint"].shape[0] for a in anns} == {1, 2}


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_pyskl_round_trip_gives_the_same_clips(converted, tmp_path, fmt):
    st = converted["ntu120"]
    pkl = export_pyskl(st, tmp_path / "ntu120_3danno.pkl")
    out = tmp_path / f"back.{'zarr' if fmt == 'zarr' else 'h5'}"
    s = import_file(pkl, out, trust_pickle=True)
    back = s2v.open(out)
    assert (s.kind, s.dataset, s.samples) == ("pyskl", "ntu120", len(st))
    assert back.dataset == "ntu120" and back.label_names == st.label_names
    for i in range(len(st)):
        assert np.array_equal(back.clip(i), st.clip(i)), i
        assert np.array_equal(back.motion(i), st.motion(i)), i
    for col in ("name", "label", "actors", "frames", "setup", "camera", "subject", "action"):
        assert np.array_equal(back.column(col), st.column(col)), col
    for bench in st.benchmarks:
        for part in ("train", "test"):
            assert np.array_equal(back.split(bench, part), st.split(bench, part))
    assert verify_store(out) == []


def test_a_pickle_is_loaded_only_when_trusted(converted, tmp_path):
    pkl = export_pyskl(converted["ntu60"], tmp_path / "ntu60_3danno.pkl")
    with pytest.raises(S2VError, match="loading a pickle runs code stored in it; pass --trust"):
        import_file(pkl, tmp_path / "x.zarr")
    r = run("import", pkl, "-o", tmp_path / "x.zarr")
    assert r.exit_code == 1 and "--trust-pickle" in r.output
    assert not (tmp_path / "x.zarr").exists()
    r = run("import", pkl, "-o", tmp_path / "x.zarr", "--trust-pickle", "-q")
    assert r.exit_code == 0 and "imported       16 samples" in r.output


# ------------------------------------------------------------------------------------------
# CTR-GCN / MAMP .npz
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
def test_npz_round_trip_gives_the_same_clips_and_file(converted, tmp_path, dataset):
    st = converted[dataset]
    for bench in st.benchmarks:
        first = export_ctrgcn(st, bench, tmp_path / "a", pad=None)
        out = tmp_path / f"{dataset}_{bench}.zarr"
        s = import_file(first, out)
        back = s2v.open(out)
        assert back.benchmarks == [bench] and back.dataset == dataset
        order = np.concatenate([st.split(bench, "train"), st.split(bench, "test")])
        assert s.samples == len(order) == len(back)
        for k, i in enumerate(order):
            assert np.array_equal(back.clip(k), st.clip(int(i))), (bench, k)
        assert np.array_equal(back.labels, st.labels[order])
        if dataset == "ntu120":  # the duplication is undone and recorded
            assert np.array_equal(back.column("slots"), st.column("slots")[order])
        assert list(back.column("name")[:2]) == ["sample_000000", "sample_000001"]
        assert len(back.split(bench, "train")) == len(st.split(bench, "train"))
        assert verify_store(out) == []
        again = export_ctrgcn(back, bench, tmp_path / "b", pad=None)
        x, y = np.load(first), np.load(again)
        for k in x:
            assert np.array_equal(x[k], y[k]), (bench, k)


@pytest.mark.parametrize(
    "name, dataset", [("NTU60_CS", "ntu60"), ("NTU60_CV", "ntu60"), ("NTU120_CSub", "ntu120")]
)
def test_reference_npz_imports_to_the_conversions_clips(
    converted, shared_data, tmp_path, name, dataset
):
    out = tmp_path / f"{name}.h5"
    import_file(shared_data / "reference" / f"{name}.npz", out)
    back, st = s2v.open(out), converted[dataset]
    bench = guess_benchmark(out)
    order = np.concatenate([st.split(bench, "train"), st.split(bench, "test")])
    assert len(back) == len(order) == 16
    assert back.clip(0).shape[0] == st.frames(int(order[0]))  # padding removed
    for k, i in enumerate(order):
        assert np.array_equal(back.clip(k), st.clip(int(i))), k
    assert np.array_equal(back.labels, st.labels[order])
    assert np.array_equal(back.column("actors"), st.column("actors")[order])


def test_names_tell_dataset_and_benchmark(tmp_path):
    cases = {
        "NTU60_XSub.npz": ("ntu60", "xsub"),
        "NTU60_CS.npz": ("ntu60", "xsub"),
        "NTU60_CV.npz": ("ntu60", "xview"),
        "NTU60_XView.npz": ("ntu60", "xview"),
        "NTU120_CSub.npz": ("ntu120", "xsub"),
        "NTU120_CSet.npz": ("ntu120", "xset"),
        "NTU120_XSet.npz": ("ntu120", "xset"),
        "ntu120_3danno.pkl": ("ntu120", None),
        "pku_v1_xsub.npz": ("pku1", "xsub"),
        "PKUMMD2_xview.npz": ("pku2", "xview"),
        "mine.npz": (None, None),
    }
    for name, (dataset, bench) in cases.items():
        p = tmp_path / name
        assert (guess_dataset(p), guess_benchmark(p)) == (dataset, bench), name


def test_import_errors_are_one_line(converted, shared_data, tmp_path):
    ref = shared_data / "reference" / "NTU60_CS.npz"
    odd = tmp_path / "mine.npz"
    odd.write_bytes(ref.read_bytes())
    with pytest.raises(S2VError, match="mine.npz: cannot tell the dataset from the file name"):
        import_file(odd, tmp_path / "a.zarr")
    with pytest.raises(S2VError, match="cannot tell the benchmark from the file name"):
        import_file(odd, tmp_path / "a.zarr", dataset="ntu60")
    s = import_file(odd, tmp_path / "a.zarr", dataset="ntu60", benchmark="xsub")
    assert s.samples == 16
    assert import_file(odd, tmp_path / "a.zarr", dataset="ntu60", benchmark="xsub").already_complete
    with pytest.raises(S2VError, match="a.zarr exists"):
        import_file(odd, tmp_path / "a.zarr", dataset="ntu60", benchmark="xview")
    s = import_file(odd, tmp_path / "a.zarr", dataset="ntu60", benchmark="xview", overwrite=True)
    assert s2v.open(tmp_path / "a.zarr").benchmarks == ["xview"]
    (tmp_path / "x.csv").write_text("1")
    with pytest.raises(S2VError, match="expected a CTR-GCN/MAMP .npz or a PYSKL .pkl"):
        import_file(tmp_path / "x.csv", tmp_path / "b.zarr")
    with pytest.raises(S2VError, match="ntu60 has 60"):
        import_file(
            shared_data / "reference" / "NTU120_CSub.npz", tmp_path / "c.zarr", dataset="ntu60"
        )
    assert not (tmp_path / "c.zarr").exists() and not (tmp_path / "c.zarr.partial").exists()


def test_cli_export_pyskl_and_import(converted, tmp_path):
    store = converted["ntu60"].path
    r = run("export", store, "--format", "pyskl", "-o", tmp_path / "x.pkl", "-q")
    assert r.exit_code == 0 and "x.pkl (16 samples" in r.output
    r = run("export", store, "--format", "pyskl", "--benchmark", "xview", "-o", tmp_path, "-q")
    assert r.exit_code == 0 and "ntu60_3danno.pkl" in r.output
    with open(tmp_path / "ntu60_3danno.pkl", "rb") as f:
        assert set(pickle.load(f)["split"]) == {"xview_train", "xview_val"}
    r = run("export", store, "-o", tmp_path / "npz", "-q", "--naming", "ctrgcn")
    assert r.exit_code == 0 and "NTU60_CS.npz" in r.output and "NTU60_CV.npz" in r.output
    r = run("import", tmp_path / "npz" / "NTU60_CV.npz", "-o", tmp_path / "cv.h5", "-q")
    assert r.exit_code == 0, r.output
    assert "imported       16 samples" in r.output and "splits         xview 2/14" in r.output
    for command in ("import", "export"):
        r = run(command, "--help")
        assert r.exit_code == 0 and "Usage:" in r.output
