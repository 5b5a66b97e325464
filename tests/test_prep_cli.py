"""s2v-prep command line: help, exit codes, messages."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from corpus import renamed_copies

from s2v.preprocess.cli import main

COMMANDS = ["ntu60", "ntu120", "synth", "info", "verify", "export"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    r = run(command, "--help")
    assert r.exit_code == 0 and "Usage:" in r.output and "--help" in r.output


def test_top_level_help_lists_the_commands():
    r = run("--help")
    assert r.exit_code == 0
    for c in COMMANDS:
        assert c in r.output


def test_convert_info_verify_export(tmp_path):
    renamed_copies(tmp_path / "raw", 20)
    out = tmp_path / "s.zarr"
    r = run("ntu60", tmp_path / "raw", "-o", out, "--workers", 2, "-q")
    assert r.exit_code == 0, r.output
    assert "converted      20 samples" in r.output and "failed         0" in r.output
    r = run("ntu60", tmp_path / "raw", "-o", out, "-q")
    assert r.exit_code == 0 and "already complete" in r.output
    r = run("info", out, "--json")
    info = json.loads(r.output)
    assert info["samples"] == 20 and set(info["splits"]) == {"xsub", "xview"}
    assert sum(info["labels"].values()) == 20
    r = run("info", out)
    assert r.exit_code == 0 and "splits   xsub" in r.output
    r = run("verify", out, "-q")
    assert r.exit_code == 0 and r.output.strip().endswith("OK")
    r = run("export", out, "--benchmark", "xview", "-o", tmp_path / "npz", "-q")
    assert r.exit_code == 0 and "NTU60_XView.npz" in r.output
    x = np.load(tmp_path / "npz" / "NTU60_XView.npz")
    assert x["x_train"].shape[1:] == (300, 150)


def test_other_options_need_overwrite(tmp_path):
    renamed_copies(tmp_path / "raw", 4)
    out = tmp_path / "s.zarr"
    assert run("ntu60", tmp_path / "raw", "-o", out, "-q").exit_code == 0
    r = run("ntu60", tmp_path / "raw", "-o", out, "-q", "--preset", "none")
    assert r.exit_code == 1
    assert "exists and was made from other inputs or options" in r.output
    r = run("ntu60", tmp_path / "raw", "-o", out, "-q", "--preset", "none", "--overwrite")
    assert r.exit_code == 0


def test_strict_exits_3_when_a_file_failed(tmp_path):
    files = renamed_copies(tmp_path / "raw", 4)
    files[0].write_bytes(b"5\n1\n")
    r = run("ntu60", tmp_path / "raw", "-o", tmp_path / "s.zarr", "-q", "--strict")
    assert r.exit_code == 3
    assert (
        "failed         1" in r.output and f"{files[0].stem}: line 3: file ends early" in r.output
    )


def test_bad_inputs_give_one_line_errors(tmp_path):
    r = run("ntu60", tmp_path / "nowhere", "-o", tmp_path / "s.zarr", "-q")
    assert r.exit_code == 1 and "nowhere: not a directory" in r.output
    (tmp_path / "empty").mkdir()
    r = run("ntu60", tmp_path / "empty", "-q")
    assert r.exit_code == 1 and "no .skeleton files found" in r.output
    r = run("info", tmp_path / "missing.zarr")
    assert r.exit_code == 1 and "missing.zarr: no such store" in r.output
    r = run("verify", tmp_path / "missing.zarr")
    assert r.exit_code == 1
    r = run("ntu60", tmp_path / "empty", "--format", "h5", "-o", tmp_path / "x.zarr")
    assert r.exit_code == 1 and "needs a .h5 suffix" in r.output


def test_verify_exit_status_on_damage(tmp_path):
    renamed_copies(tmp_path / "raw", 6)
    out = tmp_path / "s.zarr"
    run("ntu60", tmp_path / "raw", "-o", out, "-q")
    import zarr

    g = zarr.open_group(str(out), mode="r+")
    g["samples/label"][0] = 59
    r = run("verify", out, "-q")
    assert r.exit_code == 1 and "samples/label: checksum mismatch" in r.output
