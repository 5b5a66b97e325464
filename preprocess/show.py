"""Pictures of a stored sample: the skeletons with their bones, as a GIF or a PNG frame strip.

Front view, as the camera saw it: Kinect camera space (NTU RGB+D, PKU-MMD) has y up, z away
from the camera and x growing to the sensor's left, so x is drawn horizontally increasing to
the left and y vertically (z is dropped): a person facing the camera has their right hand on
the picture's left, as in the RGB video (drawing x to the right gives the mirror image). Equal
aspect, axis limits fixed over the clip. Actor 1 is blue, actor 2 orange; with ``motion`` the joints are coloured
by the motion prior instead (a colormap with a colorbar). matplotlib is imported lazily (the
``viz`` extra): ``s2v-prep`` works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from s2v.errors import S2VError
from s2v.layout import NTU25_BONES
from s2v.store import Store

ACTOR_COLOURS = ("tab:blue", "tab:orange")
STRIP_FRAMES = 8  # panels of a PNG strip
FPS = 30  # NTU RGB+D and PKU-MMD are recorded at 30 frames per second
CMAP = "plasma"


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise S2VError(
            "drawing needs matplotlib, which is not installed: pip install 'skeleton2vec[viz]'"
        ) from None
    return matplotlib


def find_sample(store: Store, key: str | int) -> int:
    """A sample's index from its name or its index (as text or int)."""
    names = store.column("name")
    hits = np.flatnonzero(names == str(key))
    if len(hits):
        return int(hits[0])
    try:
        index = int(key)
    except (TypeError, ValueError):
        raise S2VError(f"{store.path}: no sample named '{key}'") from None
    if not 0 <= index < len(store):
        raise S2VError(f"{store.path}: sample {index} out of range 0..{len(store) - 1}")
    return index


def frame_picks(total: int, n: int | None) -> np.ndarray:
    """``n`` frame indices spread evenly over ``total`` frames (all of them if n is None)."""
    if n is None or n >= total:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max(n, 1)).round().astype(int))


def view_limits(clip: np.ndarray, margin: float = 0.08) -> tuple[tuple, tuple]:
    """(xlim, ylim) of the front view holding every present joint of the clip (T, 2, 25, 3)."""
    present = (clip != 0).any(axis=(2, 3))  # (T, 2)
    pts = clip[present][..., :2].reshape(-1, 2)
    if len(pts) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = margin * float(max(hi - lo)) + 1e-3
    return (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad)


class _Frame:
    """The artists of one axes: per actor a bone collection and a joint scatter."""

    def __init__(self, ax, limits, norm=None, cmap=None) -> None:
        from matplotlib.collections import LineCollection

        ax.set_xlim(limits[0][1], limits[0][0])  # x grows to the left (see the docstring)
        ax.set_ylim(*limits[1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        self.norm, self.cmap = norm, cmap
        self.bones, self.joints = [], []
        for m in range(2):
            colour = "0.55" if norm is not None else ACTOR_COLOURS[m]
            lc = LineCollection([], colors=colour, linewidths=2.0, zorder=1)
            ax.add_collection(lc)
            sc = ax.scatter([], [], s=12, c=colour, zorder=2, edgecolors="none")
            if norm is not None:
                sc.set_cmap(cmap)
                sc.set_norm(norm)
            self.bones.append(lc)
            self.joints.append(sc)

    def draw(self, frame: np.ndarray, motion: np.ndarray | None) -> list:
        """frame: (2, 25, 3); motion: (2, 25) or None."""
        for m in range(2):
            xy = frame[m, :, :2]
            if not frame[m].any():  # actor absent in this frame
                self.bones[m].set_segments([])
                self.joints[m].set_offsets(np.zeros((0, 2)))
                continue
            self.bones[m].set_segments([xy[[j, p]] for j, p in NTU25_BONES])
            self.joints[m].set_offsets(xy)
            if motion is not None:
                self.joints[m].set_array(motion[m])
        return self.bones + self.joints


def render(
    store: Store,
    key: str | int,
    output: str | Path,
    *,
    motion: bool = False,
    frames: int | None = None,
    dpi: int = 100,
) -> Path:
    """Draw sample ``key`` (name or index) of ``store`` into ``output``: ``.png`` a strip of
    ``frames`` (default 8) frames side by side, ``.gif`` an animation of ``frames`` frames
    (default all) lasting as long as the clip. Returns the path."""
    output = Path(output)
    kind = output.suffix.lower()
    if kind not in (".png", ".gif"):
        raise S2VError(f"{output}: the picture must be a .png (frame strip) or a .gif (animation)")
    _matplotlib()
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    index = find_sample(store, key)
    clip = store.clip(index)
    prior = store.motion(index) if motion else None
    name = str(store.column("name")[index])
    label = int(store.labels[index])
    names = store.label_names
    title = f"{name}: {names[label] if label < len(names) else f'label {label}'}"
    picks = frame_picks(len(clip), frames if frames is not None or kind == ".gif" else STRIP_FRAMES)
    limits = view_limits(clip)
    norm = None
    if prior is not None:
        top = float(np.percentile(prior[prior > 0], 99)) if (prior > 0).any() else 1.0
        norm = Normalize(0.0, max(top, 1e-6))
    output.parent.mkdir(parents=True, exist_ok=True)
    # panel size from the clip's extent: about 2.6 inches high, equal aspect
    aspect = (limits[0][1] - limits[0][0]) / (limits[1][1] - limits[1][0])
    panel_w = float(np.clip(2.6 * aspect, 0.9, 5.0))
    bar_w = 0.9 if norm else 0.0
    if kind == ".png":
        fig = Figure(figsize=(panel_w * len(picks) + bar_w, 3.3), dpi=dpi, layout="constrained")
        axes = fig.subplots(1, len(picks), squeeze=False)[0]
        for ax, t in zip(axes, picks, strict=True):
            _Frame(ax, limits, norm, CMAP).draw(clip[t], None if prior is None else prior[t])
            ax.set_title(f"frame {t}", fontsize=8)
        _colorbar(fig, axes, norm)
        fig.suptitle(title, fontsize=10)
        fig.savefig(output, dpi=dpi)
        return output
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig = Figure(figsize=(max(panel_w, 2.4) + 0.6 + bar_w, 3.6), dpi=dpi, layout="constrained")
    ax = fig.subplots()
    art = _Frame(ax, limits, norm, CMAP)
    _colorbar(fig, [ax], norm)
    fig.suptitle(title, fontsize=9)
    label_t = ax.set_title("", fontsize=8)

    def update(t):
        label_t.set_text(f"frame {t}")
        return art.draw(clip[t], None if prior is None else prior[t])

    fps = max(1.0, min(FPS, FPS * len(picks) / len(clip)))  # real duration
    anim = FuncAnimation(fig, update, frames=[int(t) for t in picks], blit=False)
    anim.save(output, writer=PillowWriter(fps=fps), dpi=dpi)
    return output


def _colorbar(fig, axes, norm) -> None:
    if norm is None:
        return
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=norm, cmap=CMAP)
    cb = fig.colorbar(sm, ax=list(axes), fraction=0.04, pad=0.02)
    cb.set_label("motion prior (m / frame)", fontsize=8)
