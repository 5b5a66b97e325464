"""Pictures of a sample: PNG strips, GIF animations, motion colouring, errors."""

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from s2v.errors import S2VError
from s2v.preprocess.cli import main
from s2v.preprocess.show import find_sample, frame_picks, render, view_limits

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


def test_png_strip_shows_evenly_spread_frames(make_store, tmp_path):
    st = make_store(n=4)
    path = render(st, st.column("name")[1], tmp_path / "a.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 3 * im.height  # 8 panels side by side
    narrow = render(st, 1, tmp_path / "b.png", frames=2)
    with Image.open(narrow) as im2, Image.open(path) as im:
        assert im2.width < im.width / 2


def test_gif_has_one_image_per_frame(make_store, tmp_path):
    st = make_store(n=3)
    path = render(st, 0, tmp_path / "a.gif", frames=4, motion=True)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4


def test_frame_picks_and_limits():
    assert frame_picks(100, 8).tolist() == [0, 14, 28, 42, 57, 71, 85, 99]
    assert frame_picks(5, 8).tolist() == [0, 1, 2, 3, 4]
    assert frame_picks(5, None).tolist() == [0, 1, 2, 3, 4]
    clip = np.zeros((3, 2, 25, 3), np.float32)
    clip[:, 0, :, 0] = np.linspace(-0.5, 0.5, 25)
    clip[:, 0, :, 1] = np.linspace(0.0, 2.0, 25)
    (x0, x1), (y0, y1) = view_limits(clip)
    assert x0 < -0.5 and x1 > 0.5 and y0 < 0 and y1 > 2.0  # absent actor 2 (zeros) ignored
    assert x0 == pytest.approx(-x1) and y0 == pytest.approx(2.0 - y1)  # the same margin


def test_the_front_view_draws_x_growing_to_the_left():
    """Kinect's x grows to the sensor's left: the picture is the camera's view, not a mirror."""
    from matplotlib.figure import Figure

    from s2v.preprocess.show import _Frame

    ax = Figure().subplots()
    _Frame(ax, ((-1.0, 1.0), (0.0, 2.0)))
    assert ax.get_xlim() == (1.0, -1.0) and ax.get_ylim() == (0.0, 2.0)


def test_samples_by_name_or_index(make_store, tmp_path):
    st = make_store(n=5)
    assert find_sample(st, st.column("name")[3]) == 3
    assert find_sample(st, "2") == 2 and find_sample(st, 4) == 4
    with pytest.raises(S2VError, match="no sample named 'nobody'"):
        find_sample(st, "nobody")
    with pytest.raises(S2VError, match="sample 5 out of range 0..4"):
        find_sample(st, 5)
    with pytest.raises(S2VError, match="must be a .png .* or a .gif"):
        render(st, 0, tmp_path / "a.jpg")


def test_a_missing_matplotlib_is_a_clear_error(make_store, tmp_path, monkeypatch):
    st = make_store(n=2)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(S2VError, match=r"needs matplotlib.*skeleton2vec\[viz\]"):
        render(st, 0, tmp_path / "a.png")


def test_cli_show(make_store, tmp_path):
    st = make_store(n=3)
    out = tmp_path / "x.png"
    r = CliRunner().invoke(main, ["show", str(st.path), "1", "-o", str(out), "--frames", "3"])
    assert r.exit_code == 0 and f"wrote {out}" in r.output and out.is_file()
    r = CliRunner().invoke(main, ["show", str(st.path), "zz", "-o", str(out)])
    assert r.exit_code == 1 and "no sample named 'zz'" in r.output
    r = CliRunner().invoke(main, ["show", "--help"])
    assert r.exit_code == 0 and "--motion" in r.output
