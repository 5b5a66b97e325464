"""Deterministic synthetic NTU RGB+D ``.skeleton`` files: the project's embedded default dataset.

Every file holds one clip of one action class, written in the exact NTU text format (data.md §1)
and named like a real sample (``SsssCcccPpppRrrrAaaa.skeleton``). A clip is made by forward
kinematics of a 25-joint Kinect v2 skeleton (:data:`s2v.layout.NTU25_PARENTS`) with per-performer
bone lengths, so bone lengths are constant over time up to the sensor noise. Classes differ only
in their motion over time: performers, rest poses, cameras and rooms are drawn the same way for
every class, and each clip gets nuisance variation (view angle, tilt, position, speed, amplitude,
phase, idle frames, sensor noise, hand jitter).

Class table (fixed, independent of the seed; ``class_names()`` lists it): labels 0-48 are
single-person actions (arm raises, waves, punches, kicks, squats, bows, jumps, ...), labels
49-59 and 105-119 are two-person interactions (as NTU's A050-A060 and A106-A120), labels 60-104
are further single-person actions and combinations of two actions (one after the other, or an
arm action during a leg or torso action).

Determinism: file ``index`` (``label * per_class + j``) depends only on the configuration's seed,
its label and ``j`` (and the frame range, noise, switches, and whether the corpus needs NTU-120 IDs,
i.e. more than 60 classes), never on other files, so files can be generated in any order or in
parallel (:func:`synth_file`) and come out byte-identical.

Speed: about 5 ms of one core per file of 80 frames (200 KB): half motion synthesis (numpy),
half text formatting (a numba kernel equivalent to ``%.7g``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from s2v.layout import NTU25_PARENTS, NUM_JOINTS
from s2v.preprocess.ntu_writer import SkeletonBody, format_packed, format_skeleton_file

__all__ = [
    "MUTUAL_LABELS",
    "BodyTrack",
    "SkeletonBody",
    "SynthClip",
    "SynthConfig",
    "class_names",
    "clip_ids",
    "format_skeleton_file",
    "generate_corpus",
    "synth_clip",
    "synth_file",
]

FPS = 30.0
MAX_FRAMES = 300

# NTU-60 / NTU-120 cross-subject training performers (data.md §3).
NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
)  # fmt: skip

# Two-person (mutual) action labels, 0-based: NTU's A050-A060 and A106-A120.
MUTUAL_LABELS: frozenset[int] = frozenset(range(49, 60)) | frozenset(range(105, 120))

_BODY_ID_BASE = 72057594037927936  # 2**56: Kinect body IDs look like 72057594037931101

# Pinhole projections fitted to the real files (depth 512x424, colour 1920x1080).
_DEPTH_F, _DEPTH_CX, _DEPTH_CY = 366.0, 256.3, 208.5
_COLOR_F, _COLOR_CX, _COLOR_CY, _COLOR_DX, _COLOR_DY = 1060.0, 960.0, 540.0, 0.052, 0.098

# Joints whose orientation Kinect reports as 0 0 0 0 (the leaves).
_LEAVES = (3, 15, 19, 21, 22, 23, 24)
_HAND_JOINTS = {-1: (7, 21, 22), 1: (11, 23, 24)}
_FEET = (14, 15, 18, 19)

# Bones by their child joint (the bone from the parent to this joint rotates with it).
_UPARM = {-1: 5, 1: 9}
_FORE = {-1: 6, 1: 10}
_THIGH = {-1: 13, 1: 17}
_SHIN = {-1: 14, 1: 18}
_SPINE_LO, _SPINE_HI, _NECK, _HEAD = 1, 20, 2, 3
_X, _Y, _Z = 0, 1, 2

# Rest-pose bone offsets (metres) of an average adult as Kinect v2 measures it (median bone
# lengths of the real sample files), child joint from parent joint, in the body
# frame: x to the subject's right as seen by a camera it faces (left joints at -x, as in the real
# files), y up, z away from the camera (the body faces -z).
_REST_OFFSETS = np.array(
    [
        [0.0, 0.0, 0.0],  # 0 spine base (root)
        [0.0, 0.26, 0.0],  # 1 spine mid
        [0.0, 0.065, 0.0],  # 2 neck (from spine shoulder)
        [0.0, 0.12, -0.015],  # 3 head
        [-0.14, -0.02, 0.0],  # 4 left shoulder (from spine shoulder)
        [0.0, -0.24, 0.0],  # 5 left elbow
        [0.0, -0.21, 0.0],  # 6 left wrist
        [0.0, -0.06, 0.0],  # 7 left hand
        [0.14, -0.02, 0.0],  # 8 right shoulder
        [0.0, -0.24, 0.0],  # 9 right elbow
        [0.0, -0.21, 0.0],  # 10 right wrist
        [0.0, -0.06, 0.0],  # 11 right hand
        [-0.06, -0.025, 0.0],  # 12 left hip
        [0.0, -0.33, 0.0],  # 13 left knee
        [0.0, -0.34, 0.0],  # 14 left ankle
        [0.0, -0.045, -0.09],  # 15 left foot
        [0.06, -0.025, 0.0],  # 16 right hip
        [0.0, -0.33, 0.0],  # 17 right knee
        [0.0, -0.34, 0.0],  # 18 right ankle
        [0.0, -0.045, -0.09],  # 19 right foot
        [0.0, 0.2, 0.0],  # 20 spine shoulder (from spine mid)
        [0.0, -0.05, 0.0],  # 21 left hand tip
        [0.02, -0.02, -0.02],  # 22 left thumb
        [0.0, -0.05, 0.0],  # 23 right hand tip
        [-0.02, -0.02, -0.02],  # 24 right thumb
    ]
)
# Segment of every bone, for the per-performer proportions.
_SEGMENT = np.array(
    [0, 1, 2, 2, 3, 4, 4, 5, 3, 4, 4, 5, 6, 7, 7, 7, 6, 7, 7, 7, 1, 5, 5, 5, 5], dtype=np.int64
)  # 0 root, 1 torso, 2 neck/head, 3 shoulders, 4 arms, 5 hands, 6 hips, 7 legs
_N_SEGMENTS = 8


def _topological_order() -> tuple[int, ...]:
    order: list[int] = []
    pending = list(range(NUM_JOINTS))
    while pending:
        for j in list(pending):
            p = NTU25_PARENTS[j]
            if p < 0 or p in order:
                order.append(j)
                pending.remove(j)
    return tuple(order)


_ORDER = _topological_order()


# --------------------------------------------------------------------------------------------
# configuration and names


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`generate_corpus` writes.

    Attributes:
        classes: number of action classes K, 1-120; class k is action number k+1 in file names.
        per_class: clips per class.
        seed: master seed; the same configuration always gives byte-identical files.
        min_frames, max_frames: range of clip lengths, 16 <= min_frames <= max_frames <= 300.
        two_person_fraction: share of the clips of single-person classes that have a second
            person (a bystander with small idle motion), spread evenly over every class.
            Interaction classes (labels 49-59 and 105-119, as NTU's A050-A060, A106-A120) always
            have their partner.
        faults: inject real-data faults (frames without bodies, a short spurious body, a
            furniture-like static body) into a deterministic ~15 % of the files.
        noise: sensor noise standard deviation in metres, added to x, y, z.
    """

    classes: int = 10
    per_class: int = 20
    seed: int = 0
    min_frames: int = 40
    max_frames: int = 120
    two_person_fraction: float = 0.2
    faults: bool = False
    noise: float = 0.004

    def __post_init__(self) -> None:
        if not 1 <= self.classes <= 120:
            raise ValueError(f"classes must be in 1..120, got {self.classes}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {self.per_class}")
        if not 16 <= self.min_frames <= self.max_frames <= MAX_FRAMES:
            raise ValueError(
                f"need 16 <= min_frames <= max_frames <= {MAX_FRAMES}, "
                f"got {self.min_frames}, {self.max_frames}"
            )
        if not 0.0 <= self.two_person_fraction <= 1.0:
            raise ValueError("two_person_fraction must be in [0, 1]")
        if not (self.noise >= 0.0 and math.isfinite(self.noise)):
            raise ValueError("noise must be a finite value >= 0")
        if self.per_class > _capacity(self.ntu120):
            raise ValueError(
                f"per_class={self.per_class} exceeds the {_capacity(self.ntu120)} distinct "
                "(setup, camera, performer, replication) names available per class"
            )

    @property
    def ntu120(self) -> bool:
        """True when the corpus needs NTU-120 IDs (more than 60 classes): setups up to 32 and
        performers up to 106; otherwise setups <= 17 and performers <= 40 (valid NTU-60)."""
        return self.classes > 60

    @property
    def num_files(self) -> int:
        return self.classes * self.per_class


def _pools(ntu120: bool) -> tuple[int, int]:
    return (106, 32) if ntu120 else (40, 17)


def _capacity(ntu120: bool) -> int:
    performers, setups = _pools(ntu120)
    return 3 * performers * 2 * setups


def _interleave(a: np.ndarray, b: np.ndarray) -> list[int]:
    out: list[int] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(int(a[i]))
        if i < len(b):
            out.append(int(b[i]))
    return out


def _class_rng(seed: int, label: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0x5C1A55, label, purpose])


def clip_ids(config: SynthConfig, label: int, j: int) -> tuple[int, int, int, int]:
    """(setup, camera, performer, replication) of clip ``j`` of class ``label``.

    Cameras cycle, performers cycle through a seeded per-class permutation that alternates
    cross-subject training and test performers, setups alternate even and odd, so every split
    gets both parts even in small corpora, and names within a class are unique: the camera and
    performer cycles have coprime lengths (3 and 40 or 106), replication and setup separate
    the further rounds.
    """
    n_perf, n_setup = _pools(config.ntu120)
    rng = _class_rng(config.seed, label, 1)
    train = np.array(NTU120_XSUB_TRAIN if config.ntu120 else NTU60_XSUB_TRAIN)
    train = train[train <= n_perf]
    test = np.setdiff1d(np.arange(1, n_perf + 1), train)
    performers = _interleave(rng.permutation(train), rng.permutation(test))
    setups_all = np.arange(1, n_setup + 1)
    setups = _interleave(rng.permutation(setups_all[1::2]), rng.permutation(setups_all[0::2]))
    cam_off = int(rng.integers(3))
    block = 3 * n_perf
    r, b = j % block, j // block
    camera = 1 + (r + cam_off) % 3
    performer = performers[r % n_perf]
    replication = 1 + ((r // 3) + b) % 2
    setup = setups[(r + b // 2) % n_setup]
    return setup, camera, performer, replication


def _beatty(j: int, rate: float, offset: float) -> int:
    """0/1: exactly ``rate`` of the ``j`` are picked, evenly spread (a Beatty sequence)."""
    return int(math.floor((j + 1) * rate + offset) - math.floor(j * rate + offset))


def _clip_flags(config: SynthConfig, label: int, j: int) -> tuple[bool, str | None, bool]:
    """(two_person, fault kind or None, crlf) of clip ``j`` of class ``label``."""
    off = _class_rng(config.seed, label, 2).random(3)
    two = label in MUTUAL_LABELS or bool(_beatty(j, config.two_person_fraction, off[0]))
    fault = None
    if config.faults and _beatty(j, 0.15, off[1]):
        count = int(math.floor((j + 1) * 0.15 + off[1]))
        fault = ("empty_frames", "spurious_body", "furniture")[(count + label) % 3]
    crlf = bool(_beatty(j, 0.25, off[2]))
    return two, fault, crlf


def _file_name(setup: int, camera: int, performer: int, replication: int, label: int) -> str:
    return f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{label + 1:03d}.skeleton"


# --------------------------------------------------------------------------------------------
# rotations and forward kinematics


def _euler(deg: np.ndarray) -> np.ndarray:
    """Rotation matrices Rz @ Ry @ Rx from angles (..., 3) in degrees (about x, y, z)."""
    r = np.radians(deg)
    cx, cy, cz = np.cos(r[..., 0]), np.cos(r[..., 1]), np.cos(r[..., 2])
    sx, sy, sz = np.sin(r[..., 0]), np.sin(r[..., 1]), np.sin(r[..., 2])
    m = np.empty(deg.shape[:-1] + (3, 3))
    m[..., 0, 0] = cz * cy
    m[..., 0, 1] = cz * sy * sx - sz * cx
    m[..., 0, 2] = cz * sy * cx + sz * sx
    m[..., 1, 0] = sz * cy
    m[..., 1, 1] = sz * sy * sx + cz * cx
    m[..., 1, 2] = sz * sy * cx - cz * sx
    m[..., 2, 0] = -sy
    m[..., 2, 1] = cy * sx
    m[..., 2, 2] = cy * cx
    return m


def _rot_y(deg: float) -> np.ndarray:
    return _euler(np.array([0.0, deg, 0.0]))


def _rot_x(deg: float) -> np.ndarray:
    return _euler(np.array([deg, 0.0, 0.0]))


def _forward_kinematics(offsets: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations (T, 25, 3, 3) and positions (T, 25, 3) from bone offsets (25, 3) and
    local bone rotations (T, 25, 3, 3): bone j (parent -> j) is ``G_j @ offset_j`` with
    ``G_j = G_parent @ R_j``, so bone lengths are exactly those of ``offsets``."""
    g = np.empty_like(rot)
    pos = np.zeros(rot.shape[:2] + (3,))
    for j in _ORDER:
        p = NTU25_PARENTS[j]
        if p < 0:
            g[:, j] = rot[:, j]
        else:
            g[:, j] = g[:, p] @ rot[:, j]
            pos[:, j] = pos[:, p] + g[:, j] @ offsets[j]
    return g, pos


def _quaternions(m: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of rotation matrices (..., 3, 3)."""
    d0, d1, d2 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    w = 0.5 * np.sqrt(np.maximum(0.0, 1.0 + d0 + d1 + d2))
    x = 0.5 * np.sqrt(np.maximum(0.0, 1.0 + d0 - d1 - d2))
    y = 0.5 * np.sqrt(np.maximum(0.0, 1.0 - d0 + d1 - d2))
    z = 0.5 * np.sqrt(np.maximum(0.0, 1.0 - d0 - d1 + d2))
    x = np.copysign(x, m[..., 2, 1] - m[..., 1, 2])
    y = np.copysign(y, m[..., 0, 2] - m[..., 2, 0])
    z = np.copysign(z, m[..., 1, 0] - m[..., 0, 1])
    return np.stack([w, x, y, z], axis=-1)


# --------------------------------------------------------------------------------------------
# motion: time shapes and action atoms


def _smooth(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def _env(u: np.ndarray, r: float = 0.2) -> np.ndarray:
    """Raise-and-hold envelope: 0 outside [0, 1], smooth ramps of width r, 1 in between."""
    return _smooth(np.clip(u / r, 0.0, 1.0)) * _smooth(np.clip((1.0 - u) / r, 0.0, 1.0))


def _inside(u: np.ndarray) -> np.ndarray:
    return (u >= 0.0) & (u <= 1.0)


def _pulse(u: np.ndarray, n: float) -> np.ndarray:
    """n smooth 0 -> 1 -> 0 pulses over [0, 1], 0 outside."""
    return np.where(_inside(u), np.sin(np.pi * n * np.clip(u, 0.0, 1.0)) ** 2, 0.0)


def _ramp(u: np.ndarray) -> np.ndarray:
    """0 before, a smooth step over [0, 1], 1 after (a lasting change: a turn, a walk)."""
    return _smooth(np.clip(u, 0.0, 1.0))


def _keys(u: np.ndarray, points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Piecewise-linear keyframes (u, value), held at the ends, 0 outside [0, 1]."""
    xs, ys = zip(*points, strict=True)
    return np.where(_inside(u), np.interp(u, xs, ys), 0.0)


class _Motion:
    """Per-frame joint angles (degrees) and root translation of one person's clip."""

    def __init__(self, t: int, amp: float, phase: float, style: np.ndarray) -> None:
        self.ang = np.zeros((t, NUM_JOINTS, 3))
        self.trans = np.zeros((t, 3))
        self.amp = amp
        self.phase = phase
        self.gain = amp * style  # (25, 3): the clip's amplitude times a per-joint style factor

    def rot(self, joint: int, axis: int, deg: np.ndarray) -> None:
        self.ang[:, joint, axis] += self.gain[joint, axis] * deg

    def move(self, axis: int, metres: np.ndarray) -> None:
        self.trans[:, axis] += self.amp * metres


def _sides(side: int) -> tuple[int, ...]:
    return (-1, 1) if side == 0 else (side,)


# Each atom adds one action's motion over the normalised action time u (0..1 over the action;
# outside that, it adds nothing or, for lasting changes, holds its end state).


def _raise_front(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u)
    for s in _sides(side):
        m.rot(_UPARM[s], _X, 90 * e)


def _raise_up(m: _Motion, u: np.ndarray, side: int = 0) -> None:
    e = _env(u)
    for s in _sides(side):
        m.rot(_UPARM[s], _X, 165 * e)
        m.rot(_UPARM[s], _Z, s * 10 * e)


def _raise_side(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u)
    for s in _sides(side):
        m.rot(_UPARM[s], _Z, s * 85 * e)


def _wave(m: _Motion, u: np.ndarray, side: int = 1, n: int = 3) -> None:
    e = _env(u, 0.15)
    o = np.sin(2 * np.pi * n * u + m.phase) * e
    for s in _sides(side):
        m.rot(_UPARM[s], _Z, s * 100 * e)
        m.rot(_FORE[s], _Z, s * (50 * e + 30 * o))


def _punch(m: _Motion, u: np.ndarray, side: int = 1, n: int = 2) -> None:
    e = _env(u, 0.15)
    p = _pulse(u, n) ** 2  # short, snappy extensions from a guard with the fist at the chin
    for s in _sides(side):
        m.rot(_UPARM[s], _X, 15 * e + 75 * p)
        m.rot(_FORE[s], _X, 125 * e * (1 - p))


def _box(m: _Motion, u: np.ndarray, n: int = 4) -> None:
    e = _env(u, 0.15)
    w = np.where(_inside(u), np.sin(2 * np.pi * n * u), 0.0)
    for s, p in ((-1, np.maximum(w, 0) ** 2), (1, np.maximum(-w, 0) ** 2)):
        m.rot(_UPARM[s], _X, 25 * e + 60 * p)
        m.rot(_FORE[s], _X, 100 * e * (1 - p))
        m.rot(_SPINE_LO, _Y, s * 12 * p)


def _kick(m: _Motion, u: np.ndarray, side: int = 1, n: int = 1) -> None:
    p = _pulse(u, n)
    m.rot(_THIGH[side], _X, 80 * p)
    m.rot(_SHIN[side], _X, -200 * p * (1 - p))
    for s in (-1, 1):
        m.rot(_UPARM[s], _Z, s * 15 * p)


def _kick_back(m: _Motion, u: np.ndarray, side: int = 1, n: int = 2) -> None:
    p = _pulse(u, n)
    m.rot(_THIGH[side], _X, -30 * p)
    m.rot(_SHIN[side], _X, -90 * p)
    m.rot(_SPINE_LO, _X, -10 * p)


def _leg_side(m: _Motion, u: np.ndarray, side: int = 1, n: int = 2) -> None:
    p = _pulse(u, n)
    m.rot(_THIGH[side], _Z, side * 40 * p)
    m.rot(_UPARM[-side], _Z, -side * 20 * p)


def _squat(m: _Motion, u: np.ndarray, n: int = 2) -> None:
    p = _pulse(u, n)
    for s in (-1, 1):
        m.rot(_THIGH[s], _X, 95 * p)
        m.rot(_SHIN[s], _X, -115 * p)
        m.rot(_UPARM[s], _X, 70 * p)
    m.rot(_SPINE_LO, _X, -25 * p)


def _sit(m: _Motion, u: np.ndarray) -> None:
    e = _env(u, 0.25)
    for s in (-1, 1):
        m.rot(_THIGH[s], _X, 85 * e)
        m.rot(_SHIN[s], _X, -88 * e)
        m.rot(_UPARM[s], _X, 25 * e)
        m.rot(_FORE[s], _X, 40 * e)


def _bow(m: _Motion, u: np.ndarray, n: int = 1) -> None:
    p = _pulse(u, n)
    m.rot(_SPINE_LO, _X, -60 * p)
    m.rot(_SPINE_HI, _X, -15 * p)
    m.rot(_NECK, _X, -10 * p)


def _lean_back(m: _Motion, u: np.ndarray, n: int = 1) -> None:
    p = _pulse(u, n)
    m.rot(_SPINE_LO, _X, 25 * p)
    m.rot(_SPINE_HI, _X, 10 * p)
    m.move(_Z, 0.12 * p)


def _pickup(m: _Motion, u: np.ndarray) -> None:
    h = _keys(u, ((0, 0), (0.35, 1), (0.65, 1), (1, 0)))
    m.rot(_SPINE_LO, _X, -70 * h)
    for s in (-1, 1):
        m.rot(_THIGH[s], _X, 50 * h)
        m.rot(_SHIN[s], _X, -60 * h)
        m.rot(_UPARM[s], _X, 60 * h)


def _jump(m: _Motion, u: np.ndarray, n: int = 2) -> None:
    w = np.where(_inside(u), np.sin(2 * np.pi * n * np.clip(u, 0, 1)), 0.0)
    crouch, air = np.maximum(w, 0.0), np.maximum(-w, 0.0)
    for s in (-1, 1):
        m.rot(_THIGH[s], _X, 55 * crouch)
        m.rot(_SHIN[s], _X, -85 * crouch)
        m.rot(_UPARM[s], _X, 120 * air - 25 * crouch)
    m.rot(_SPINE_LO, _X, -15 * crouch)
    m.move(_Y, 0.28 * air)


def _hop(m: _Motion, u: np.ndarray, side: int = 1, n: int = 3) -> None:
    e = _env(u, 0.15)
    m.rot(_SHIN[side], _X, -85 * e)
    m.rot(_THIGH[side], _X, 10 * e)
    for s in (-1, 1):
        m.rot(_UPARM[s], _Z, s * 20 * e)
    m.move(_Y, 0.12 * np.where((u > 0.15) & (u < 0.85), _pulse((u - 0.15) / 0.7, n), 0.0))


def _jumping_jack(m: _Motion, u: np.ndarray, n: int = 3) -> None:
    p = _pulse(u, n)
    for s in (-1, 1):
        m.rot(_UPARM[s], _Z, s * 150 * p)
        m.rot(_THIGH[s], _Z, s * 18 * p)
    m.move(_Y, 0.06 * _pulse(u, 2 * n))


def _march(m: _Motion, u: np.ndarray, n: int = 4) -> None:
    e = _env(u, 0.1)
    w = np.sin(2 * np.pi * n * u) * e
    for s, lift in ((-1, np.maximum(w, 0.0)), (1, np.maximum(-w, 0.0))):
        m.rot(_THIGH[s], _X, 70 * lift)
        m.rot(_SHIN[s], _X, -80 * lift)
        m.rot(_UPARM[s], _X, s * 25 * w)


def _walk(m: _Motion, u: np.ndarray, direction: int = 1, n: int = 2, dist: float = 0.9) -> None:
    e = _env(u, 0.1)
    w = np.sin(2 * np.pi * n * u) * e
    for s in (-1, 1):
        m.rot(_THIGH[s], _X, -s * 28 * w)
        m.rot(_SHIN[s], _X, -35 * np.maximum(s * w, 0.0))
        m.rot(_UPARM[s], _X, s * 18 * w)
    m.move(_Z, -direction * dist * _ramp(u))


def _step_side(m: _Motion, u: np.ndarray, direction: int = 1, n: int = 1) -> None:
    p = _pulse(u, n)
    m.move(_X, direction * 0.35 * p)
    m.rot(_THIGH[direction], _Z, direction * 15 * _pulse(u, 2 * n))
    m.rot(_THIGH[-direction], _Z, -direction * 8 * _pulse(u, 2 * n))


def _lunge(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    h = _keys(u, ((0, 0), (0.3, 1), (0.7, 1), (1, 0)))
    m.rot(_THIGH[side], _X, 75 * h)
    m.rot(_SHIN[side], _X, -75 * h)
    m.rot(_THIGH[-side], _X, -25 * h)
    m.rot(_SHIN[-side], _X, -40 * h)
    m.move(_Z, -0.35 * h)


def _turn(m: _Motion, u: np.ndarray, angle: float = 160.0) -> None:
    m.rot(0, _Y, angle * _ramp(u))
    p = _pulse(u, 3)
    m.rot(_THIGH[-1], _X, 20 * p)
    m.rot(_SHIN[-1], _X, -25 * p)


def _twist(m: _Motion, u: np.ndarray, n: int = 2) -> None:
    e = _env(u, 0.15)
    o = np.sin(2 * np.pi * n * u + m.phase) * e
    m.rot(_SPINE_LO, _Y, 30 * o)
    m.rot(_SPINE_HI, _Y, 15 * o)
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 20 * e)
        m.rot(_FORE[s], _X, 70 * e)


def _side_bend(m: _Motion, u: np.ndarray, n: int = 2) -> None:
    o = np.sin(2 * np.pi * n * u + m.phase) * _env(u, 0.15)
    m.rot(_SPINE_LO, _Z, 22 * o)
    m.rot(_SPINE_HI, _Z, 10 * o)


def _nod(m: _Motion, u: np.ndarray, n: int = 3) -> None:
    p = _pulse(u, n)
    m.rot(_NECK, _X, -15 * p)
    m.rot(_HEAD, _X, -35 * p)


def _head_tilt(m: _Motion, u: np.ndarray, n: int = 2) -> None:
    o = np.sin(2 * np.pi * n * u + m.phase) * _env(u, 0.15)
    m.rot(_NECK, _Z, 12 * o)
    m.rot(_HEAD, _Z, 25 * o)


def _clap(m: _Motion, u: np.ndarray, n: int = 4) -> None:
    e = _env(u, 0.15)
    b = e * (8 + 45 * (0.5 + 0.5 * np.cos(2 * np.pi * n * u)))
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 80 * e)
        m.rot(_UPARM[s], _Y, -s * b)
        m.rot(_FORE[s], _X, 25 * e)


def _rub_hands(m: _Motion, u: np.ndarray, n: int = 6) -> None:
    e = _env(u, 0.15)
    o = np.sin(2 * np.pi * n * u + m.phase) * e
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 45 * e)
        m.rot(_UPARM[s], _Y, s * 25 * e + 8 * o)
        m.rot(_FORE[s], _X, 70 * e)


def _cross_arms(m: _Motion, u: np.ndarray) -> None:
    e = _env(u, 0.25)
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 40 * e)
        m.rot(_UPARM[s], _Y, s * 40 * e)
        m.rot(_FORE[s], _X, 110 * e)


def _arm_circle(m: _Motion, u: np.ndarray, side: int = 1, n: int = 2) -> None:
    e = _env(u, 0.15)
    th = 2 * np.pi * n * u + m.phase
    for s in _sides(side):
        m.rot(_UPARM[s], _X, e * (80 + 50 * np.sin(th)))
        m.rot(_UPARM[s], _Z, s * e * (35 + 35 * np.cos(th)))


def _hand_to_head(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u, 0.25)
    m.rot(_UPARM[side], _X, 45 * e)
    m.rot(_UPARM[side], _Z, side * 55 * e)
    m.rot(_FORE[side], _X, 135 * e)
    m.rot(_HEAD, _X, -10 * e)


def _phone(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u, 0.25)
    m.rot(_UPARM[side], _X, 25 * e)
    m.rot(_UPARM[side], _Z, side * 35 * e)
    m.rot(_FORE[side], _X, 150 * e)
    m.rot(_HEAD, _Z, -side * 10 * e)


def _salute(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u, 0.2)
    m.rot(_UPARM[side], _Z, side * 80 * e)
    m.rot(_UPARM[side], _X, 15 * e)
    m.rot(_FORE[side], _X, 140 * e)


def _drink(m: _Motion, u: np.ndarray, side: int = 1, n: int = 2) -> None:
    e = _env(u, 0.15)
    p = _pulse(u, n)
    m.rot(_UPARM[side], _X, 20 * e + 20 * p)
    m.rot(_FORE[side], _X, 60 * e + 75 * p)
    m.rot(_HEAD, _X, 10 * p)


def _throw(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    m.rot(_UPARM[side], _X, _keys(u, ((0, 0), (0.35, 150), (0.5, 160), (0.62, 40), (1, 0))))
    m.rot(_FORE[side], _X, _keys(u, ((0, 0), (0.35, 100), (0.5, 110), (0.62, 5), (1, 0))))
    m.rot(_SPINE_LO, _X, _keys(u, ((0, 0), (0.45, 12), (0.62, -15), (1, 0))))
    m.rot(_SPINE_LO, _Y, side * _keys(u, ((0, 0), (0.45, -20), (0.62, 15), (1, 0))))


def _stretch_up(m: _Motion, u: np.ndarray) -> None:
    e = _env(u, 0.25)
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 170 * e)
    m.rot(_SPINE_LO, _X, 8 * e)
    m.move(_Y, 0.04 * e)


def _point(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u, 0.2)
    m.rot(_UPARM[side], _X, 85 * e)
    m.rot(_UPARM[side], _Y, -side * 10 * e)


def _reach_low(m: _Motion, u: np.ndarray, side: int = 1) -> None:
    e = _env(u, 0.25)
    m.rot(_UPARM[side], _X, 45 * e)
    m.rot(_FORE[side], _X, 20 * e)
    m.rot(_SPINE_LO, _X, -15 * e)
    m.move(_Z, -0.15 * e)


def _pat(m: _Motion, u: np.ndarray, side: int = 1, n: int = 3) -> None:
    e = _env(u, 0.2)
    m.rot(_UPARM[side], _X, 80 * e)
    m.rot(_FORE[side], _X, 20 * e + 30 * _pulse(u, n))
    m.move(_Z, -0.15 * e)


def _push(m: _Motion, u: np.ndarray, n: int = 1) -> None:
    p = _pulse(u, n)
    e = _env(u, 0.2)
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 40 * e + 45 * p)
        m.rot(_FORE[s], _X, 60 * e * (1 - p))
    m.move(_Z, -0.2 * p)


def _hug(m: _Motion, u: np.ndarray) -> None:
    e = _env(u, 0.3)
    for s in (-1, 1):
        m.rot(_UPARM[s], _X, 80 * e)
        m.rot(_UPARM[s], _Y, -s * 30 * e)
        m.rot(_FORE[s], _Y, s * 60 * e)
    m.move(_Z, -0.3 * e)


def _handshake(m: _Motion, u: np.ndarray, n: int = 3) -> None:
    e = _env(u, 0.25)
    m.rot(_UPARM[1], _X, 50 * e)
    m.rot(_FORE[1], _X, 40 * e + 12 * np.sin(2 * np.pi * n * u) * e)
    m.move(_Z, -0.1 * e)


_ATOMS: dict[str, tuple[Callable[..., None], str]] = {
    # name: (function, body part) -- parts decide which atoms may run at the same time
    "raise_front": (_raise_front, "arms"),
    "raise_up": (_raise_up, "arms"),
    "raise_side": (_raise_side, "arms"),
    "wave": (_wave, "arms"),
    "punch": (_punch, "arms"),
    "box": (_box, "arms"),
    "kick": (_kick, "legs"),
    "kick_back": (_kick_back, "legs"),
    "leg_side": (_leg_side, "legs"),
    "squat": (_squat, "whole"),
    "sit": (_sit, "whole"),
    "bow": (_bow, "torso"),
    "lean_back": (_lean_back, "torso"),
    "pickup": (_pickup, "whole"),
    "jump": (_jump, "whole"),
    "hop": (_hop, "legs"),
    "jumping_jack": (_jumping_jack, "whole"),
    "march": (_march, "legs"),
    "walk": (_walk, "legs"),
    "step_side": (_step_side, "legs"),
    "lunge": (_lunge, "legs"),
    "turn": (_turn, "whole"),
    "twist": (_twist, "torso"),
    "side_bend": (_side_bend, "torso"),
    "nod": (_nod, "head"),
    "head_tilt": (_head_tilt, "head"),
    "clap": (_clap, "arms"),
    "rub_hands": (_rub_hands, "arms"),
    "cross_arms": (_cross_arms, "arms"),
    "arm_circle": (_arm_circle, "arms"),
    "hand_to_head": (_hand_to_head, "arms"),
    "phone": (_phone, "arms"),
    "salute": (_salute, "arms"),
    "drink": (_drink, "arms"),
    "throw": (_throw, "arms"),
    "stretch_up": (_stretch_up, "whole"),
    "point": (_point, "arms"),
    "reach_low": (_reach_low, "arms"),
    "pat": (_pat, "arms"),
    "push": (_push, "whole"),
    "hug": (_hug, "whole"),
    "handshake": (_handshake, "arms"),
}


# --------------------------------------------------------------------------------------------
# the class table


class _Part(NamedTuple):
    atom: str
    params: tuple[tuple[str, float], ...]
    window: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class _ClassSpec:
    name: str
    actor: tuple[_Part, ...]
    partner: tuple[_Part, ...] | None = None  # None: single-person class
    distance: float = 1.1  # between the two persons of an interaction


def _a(atom: str, window: tuple[float, float] = (0.0, 1.0), **params: float) -> _Part:
    return _Part(atom, tuple(sorted(params.items())), window)


def _describe(part: _Part) -> str:
    """A readable name: ``wave right x3``, ``turn +160 deg``, ``walk backward x2``."""
    params = dict(part.params)
    words = [part.atom.replace("_", " ")]
    if "side" in params:
        words.append({-1: "left", 0: "both arms", 1: "right"}[int(params["side"])])
    if "direction" in params:
        word = {-1: "backward", 1: "forward"}[int(params["direction"])]
        words.append(("to the " + {-1: "left", 1: "right"}[int(params["direction"])])
                     if part.atom == "step_side" else word)  # fmt: skip
    if "angle" in params:
        words.append(f"{int(params['angle']):+d} deg")
    if int(params.get("n", 1)) > 1:
        words.append(f"x{int(params['n'])}")
    return " ".join(words)


_SINGLES: tuple[_Part, ...] = (
    # the first ten (the default corpus) come in groups that share their average pose and differ
    # in their time course: right arm up (wave, circle), right arm forward (punch, hold), knees
    # bent (squat, sit, jump), plus kick, bow and clap
    _a("wave", side=1, n=3),
    _a("punch", side=1, n=2),
    _a("raise_front", side=1),
    _a("arm_circle", side=1, n=2),
    _a("squat", n=2),
    _a("sit"),
    _a("kick", side=1, n=1),
    _a("bow", n=1),
    _a("jump", n=2),
    _a("clap", n=4),
    _a("nod", n=3),
    _a("wave", side=-1, n=3),
    _a("raise_up", side=0),
    _a("raise_front", side=-1),
    _a("raise_side", side=1),
    _a("raise_side", side=-1),
    _a("arm_circle", side=-1, n=2),
    _a("walk", direction=1, n=2),
    _a("walk", direction=-1, n=2),
    _a("step_side", direction=1, n=1),
    _a("step_side", direction=-1, n=1),
    _a("twist", n=2),
    _a("side_bend", n=2),
    _a("turn", angle=160),
    _a("turn", angle=-160),
    _a("hand_to_head", side=1),
    _a("hand_to_head", side=-1),
    _a("drink", side=1, n=2),
    _a("throw", side=1),
    _a("pickup"),
    _a("march", n=4),
    _a("hop", side=1, n=3),
    _a("jumping_jack", n=3),
    _a("salute", side=1),
    _a("stretch_up"),
    _a("box", n=4),
    _a("phone", side=1),
    _a("kick_back", side=1, n=2),
    _a("lunge", side=1),
    _a("head_tilt", n=2),
    _a("rub_hands", n=6),
    _a("cross_arms"),
    _a("kick", side=-1, n=1),
    _a("punch", side=-1, n=2),
    _a("arm_circle", side=0, n=2),
    _a("throw", side=-1),
    _a("leg_side", side=1, n=2),
    _a("leg_side", side=-1, n=2),
    _a("wave", side=0, n=2),
    # further single actions for NTU-120-sized tables
    _a("drink", side=-1, n=2),
    _a("phone", side=-1),
    _a("salute", side=-1),
    _a("hop", side=-1, n=3),
    _a("kick_back", side=-1, n=2),
    _a("lunge", side=-1),
    _a("jump", n=1),
    _a("bow", n=2),
    _a("nod", n=1),
    _a("squat", n=1),
    _a("punch", side=1, n=4),
    _a("clap", n=2),
)

_LATE = (0.3, 1.0)
_MUTUALS: tuple[_ClassSpec, ...] = (
    _ClassSpec("punch other person", (_a("punch", side=1, n=1),), (_a("lean_back", _LATE),)),
    _ClassSpec("kick other person", (_a("kick", side=1, n=1),), (_a("bow", _LATE),), 1.2),
    _ClassSpec(
        "push other person", (_a("push"),), (_a("walk", _LATE, direction=-1, n=1, dist=0.3),), 1.0
    ),
    _ClassSpec("pat on back", (_a("pat", side=1, n=3),), (), 0.8),
    _ClassSpec("point finger", (_a("point", side=1),), (), 1.6),
    _ClassSpec("hugging", (_a("hug"),), (_a("hug"),), 1.3),
    _ClassSpec(
        "giving object",
        (_a("raise_front", (0.0, 0.7), side=1),),
        (_a("raise_front", (0.35, 1.0), side=1),),
        1.1,
    ),
    _ClassSpec("touch pocket", (_a("reach_low", side=1),), (), 0.9),
    _ClassSpec("handshaking", (_a("handshake"),), (_a("handshake"),), 1.0),
    _ClassSpec(
        "walking towards",
        (_a("walk", direction=1, n=2, dist=0.5),),
        (_a("walk", direction=1, n=2, dist=0.5),),
        2.2,
    ),
    _ClassSpec(
        "walking apart",
        (_a("walk", direction=-1, n=2, dist=0.5),),
        (_a("walk", direction=-1, n=2, dist=0.5),),
        1.0,
    ),
)


def _build_class_table() -> tuple[_ClassSpec, ...]:
    """120 distinct classes, fixed for all seeds (a fixed generator picks the combinations)."""
    rng = np.random.default_rng(20240917)
    single = [_ClassSpec(_describe(p), (p,)) for p in _SINGLES]
    keys = {s.actor for s in single}
    base = list(_SINGLES[:49])
    while len(single) < 94:
        a, b = (base[i] for i in rng.choice(len(base), size=2, replace=False))
        pa, pb = _ATOMS[a.atom][1], _ATOMS[b.atom][1]
        simultaneous = pa != pb and "whole" not in (pa, pb) and rng.random() < 0.5
        if simultaneous:
            parts = (a, b)
            name = f"{_describe(a)} while {_describe(b)}"
        else:
            parts = (a._replace(window=(0.0, 0.5)), b._replace(window=(0.5, 1.0)))
            name = f"{_describe(a)} then {_describe(b)}"
        if parts in keys:
            continue
        keys.add(parts)
        single.append(_ClassSpec(name, parts))
    mutual = list(_MUTUALS)
    actions = [
        _a("wave", side=1, n=3),
        _a("throw", side=1),
        _a("punch", side=1, n=3),
        _a("kick", side=1, n=2),
        _a("raise_up", side=0),
        _a("clap", n=3),
        _a("point", side=-1),
        _a("push", n=2),
        _a("raise_front", side=0),
        _a("box", n=4),
    ]
    responses = [
        _a("lean_back", _LATE),
        _a("walk", _LATE, direction=-1, n=1, dist=0.4),
        _a("raise_front", _LATE, side=0),
        _a("nod", _LATE, n=2),
        _a("bow", _LATE),
        _a("wave", _LATE, side=-1, n=2),
        _a("hand_to_head", _LATE, side=1),
        _a("raise_up", _LATE, side=0),
        _a("cross_arms", _LATE),
    ]
    pairs = {(m.actor, m.partner) for m in mutual}
    while len(mutual) < 26:
        a = actions[int(rng.integers(len(actions)))]
        b = responses[int(rng.integers(len(responses)))]
        if ((a,), (b,)) in pairs:
            continue
        pairs.add(((a,), (b,)))
        dist = float(np.round(rng.uniform(1.1, 1.6), 2))
        mutual.append(_ClassSpec(f"{_describe(a)}, other: {_describe(b)}", (a,), (b,), dist))
    table: list[_ClassSpec] = []
    if len({c.name for c in single + mutual}) != 120:
        raise AssertionError("synthetic class names must be distinct")
    si, mi = iter(single), iter(mutual)
    for label in range(120):
        table.append(next(mi) if label in MUTUAL_LABELS else next(si))
    return tuple(table)


_CLASS_TABLE = _build_class_table()


def class_names(classes: int = 120) -> list[str]:
    """Human-readable names of the first ``classes`` synthetic action classes (label order)."""
    return [spec.name for spec in _CLASS_TABLE[:classes]]


# --------------------------------------------------------------------------------------------
# people, rooms and clips


def _performer_offsets(seed: int, performer: int) -> np.ndarray:
    """Bone offsets (25, 3) of a performer: overall scale within +-10 %, segment proportions
    within +-6 %; the same for every clip of this performer (under one seed)."""
    rng = np.random.default_rng([seed, 0xB0D1E5, performer])
    scale = float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1))
    seg = rng.uniform(0.94, 1.06, size=_N_SEGMENTS)
    width = rng.uniform(0.92, 1.08)  # shoulder/hip breadth
    off = _REST_OFFSETS * (scale * seg[_SEGMENT])[:, None]
    off[[4, 8, 12, 16], 0] *= width
    return off


def _setup_geometry(seed: int, setup: int) -> tuple[float, float, float]:
    """(camera height above the floor, subject distance, camera tilt in degrees) of a setup."""
    rng = np.random.default_rng([seed, 0x5E7, setup])
    return float(rng.uniform(0.5, 1.0)), float(rng.uniform(2.8, 3.6)), float(rng.uniform(-3, 6))


def _timing(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, float, float]:
    """(frames, action start, action length) in frames: speed 0.7-1.4x, idle before/after."""
    nominal = 0.75 * 0.5 * (lo + hi)
    length = nominal / rng.uniform(0.7, 1.4)
    before, after = rng.uniform(0.0, 0.2, size=2) * nominal
    total = length + before + after
    if total > hi:
        f = hi / total
        length, before, after = length * f, before * f, after * f
    elif total < lo:
        before, after = before + 0.5 * (lo - total), after + 0.5 * (lo - total)
    frames = int(np.clip(round(length + before + after), lo, hi))
    return frames, float(before), float(length)


def _action_time(rng: np.random.Generator, frames: int, start: float, length: float) -> np.ndarray:
    """Normalised action time per frame, with a smooth monotonic speed change inside."""
    u = (np.arange(frames) - start) / max(length, 2.0)
    warp = rng.uniform(-0.3, 0.3)
    inside = _inside(u)
    return np.where(inside, u + warp * np.sin(2 * np.pi * u) / (2 * np.pi), u)


def _apply_parts(m: _Motion, u: np.ndarray, parts: Iterable[_Part]) -> None:
    for part in parts:
        a, b = part.window
        fn = _ATOMS[part.atom][0]
        fn(m, (u - a) / (b - a), **{k: (int(v) if k in _INT_PARAMS else v) for k, v in part.params})


_INT_PARAMS = frozenset({"side", "n", "direction"})


def _idle(rng: np.random.Generator, m: _Motion, t: int, level: float) -> None:
    """Rest-pose variation and slow idle motion (sway, breathing, small arm and head moves)."""
    tt = np.arange(t) / FPS

    def slow(period_lo: float, period_hi: float) -> np.ndarray:
        period = rng.uniform(period_lo, period_hi)
        return np.sin(2 * np.pi * tt / period + rng.uniform(0, 2 * np.pi))

    for s in (-1, 1):
        m.ang[:, _UPARM[s], _Z] += s * rng.uniform(5, 12) + level * 3 * slow(2, 5)
        m.ang[:, _UPARM[s], _X] += rng.uniform(-5, 5) + level * 4 * slow(2, 5)
        m.ang[:, _FORE[s], _X] += rng.uniform(5, 15) + level * 4 * slow(2, 5)
        m.ang[:, _THIGH[s], _Z] += s * rng.uniform(1, 4)
    m.ang[:, _SPINE_LO, _X] += rng.uniform(-3, 3) + level * 1.5 * slow(3, 6)
    m.ang[:, _SPINE_HI, _X] += level * 1.0 * slow(3, 5)  # breathing
    m.ang[:, _HEAD, _X] += rng.uniform(-5, 5) + level * 3 * slow(2, 5)
    m.ang[:, _HEAD, _Z] += level * 3 * slow(2, 5)
    m.trans[:, _X] += level * 0.012 * slow(3, 6)
    m.trans[:, _Z] += level * 0.01 * slow(3, 6)


def _fidget(rng: np.random.Generator, m: _Motion, t: int) -> None:
    """One short unrelated movement at a random time: a weight shift, an arm adjustment (as if
    scratching or touching the face) or a head turn."""
    frames = rng.uniform(0.6, 1.5) * FPS
    v = _pulse((np.arange(t) - rng.uniform(-0.2, 1.0) * t) / frames, 1)
    s = int(rng.choice((-1, 1)))
    kind = int(rng.integers(3))
    if kind == 0:
        m.trans[:, _X] += s * rng.uniform(0.04, 0.08) * v
        m.ang[:, _SPINE_LO, _Z] -= s * 4 * v
    elif kind == 1:
        m.ang[:, _UPARM[s], _X] += rng.uniform(15, 35) * v
        m.ang[:, _FORE[s], _X] += rng.uniform(40, 90) * v
    else:
        m.ang[:, _NECK, _Y] += s * rng.uniform(15, 35) * v
        m.ang[:, _HEAD, _Z] += s * 8 * v


class _Person(NamedTuple):
    pos: np.ndarray  # (T, 25, 3) in the body frame, feet on the floor (y = 0)
    rot: np.ndarray  # (T, 25, 3, 3) global joint rotations in the body frame
    lean: np.ndarray  # (T, 2)


def _person(
    rng: np.random.Generator,
    offsets: np.ndarray,
    t: int,
    u: np.ndarray,
    parts: Iterable[_Part],
    amp: float,
    idle_level: float,
    fidget: float = 0.35,
) -> _Person:
    m = _Motion(t, amp, float(rng.uniform(0, 2 * np.pi)), rng.uniform(0.85, 1.15, (NUM_JOINTS, 3)))
    _idle(rng, m, t, idle_level)
    if rng.random() < fidget:
        _fidget(rng, m, t)
    _apply_parts(m, u, parts)
    g, pos = _forward_kinematics(offsets, _euler(m.ang))
    pos[..., 1] -= pos[:, _FEET, 1].min(axis=1)[:, None]  # lowest foot on the floor
    pos += m.trans[:, None, :]
    spine = pos[:, 20] - pos[:, 0]
    spine /= np.linalg.norm(spine, axis=1, keepdims=True)
    lean = np.clip(np.stack([2.5 * spine[:, 0], -2.5 * spine[:, 2]], axis=1), -1.0, 1.0)
    return _Person(pos, g, lean)


@dataclass
class BodyTrack:
    """One tracked body of a synthetic clip: the frames where it is present and what is written
    there. ``kind`` is ``actor``, ``partner`` (interaction), ``bystander``, ``spurious`` (a short
    false detection) or ``furniture`` (a static false detection)."""

    body_id: int
    kind: str
    frames: np.ndarray  # (n,) increasing frame indices
    joints: np.ndarray  # (n, 25, 12) NTU joint fields
    lean: np.ndarray  # (n, 2)
    hands: tuple[int, int, int, int] = (1, 1, 1, 1)

    @property
    def xyz(self) -> np.ndarray:
        return self.joints[..., :3]


@dataclass
class SynthClip:
    """A synthetic clip: its label, length, and bodies (in the order written in each frame)."""

    label: int
    num_frames: int
    tracks: list[BodyTrack] = field(default_factory=list)

    def bodies_per_frame(self) -> list[list[SkeletonBody]]:
        frames: list[list[SkeletonBody]] = [[] for _ in range(self.num_frames)]
        for tr in self.tracks:
            for k, f in enumerate(tr.frames.tolist()):
                lean = (float(tr.lean[k, 0]), float(tr.lean[k, 1]))
                frames[f].append(SkeletonBody(tr.body_id, tr.joints[k], lean, tr.hands))
        return frames

    def to_bytes(self, *, crlf: bool = False) -> bytes:
        """The clip as an NTU ``.skeleton`` file (what :func:`format_skeleton_file` writes)."""
        frames = np.concatenate([tr.frames for tr in self.tracks])
        order = np.argsort(frames, kind="stable")  # by frame, then in track order
        counts = np.bincount(frames, minlength=self.num_frames).astype(np.int64)
        ids = np.concatenate([np.full(len(tr.frames), tr.body_id, np.int64) for tr in self.tracks])
        ints = np.concatenate(
            [
                np.tile(np.array((0, *tr.hands, 0, 2), np.int64), (len(tr.frames), 1))
                for tr in self.tracks
            ]
        )
        lean = np.concatenate([tr.lean for tr in self.tracks])
        joints = np.concatenate([tr.joints for tr in self.tracks])
        return format_packed(counts, ids[order], ints[order], lean[order], joints[order], crlf)


def _project(xyz: np.ndarray) -> np.ndarray:
    """depthX depthY colorX colorY (..., 4) of camera-space points (..., 3)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return np.stack(
        [
            _DEPTH_CX + _DEPTH_F * x / z,
            _DEPTH_CY - _DEPTH_F * y / z,
            _COLOR_CX + _COLOR_F * (x + _COLOR_DX) / z,
            _COLOR_CY - _COLOR_F * (y - _COLOR_DY) / z,
        ],
        axis=-1,
    )


def _joint_fields(xyz: np.ndarray, rot: np.ndarray | None, state: np.ndarray | None) -> np.ndarray:
    """(n, 25, 12) NTU joint fields from camera-space positions and global joint rotations."""
    out = np.empty(xyz.shape[:2] + (12,))
    out[..., :3] = xyz
    out[..., 3:7] = _project(xyz)
    if rot is None:
        out[..., 7:11] = 0.0
    else:
        q = _quaternions(rot)
        q[:, _LEAVES] = 0.0
        out[..., 7:11] = q
    out[..., 11] = 2.0 if state is None else state
    return out


def _hand_jitter(rng: np.random.Generator, xyz: np.ndarray, state: np.ndarray) -> None:
    """Occasional short bursts of hand-joint jitter (marked as inferred, trackingState 1)."""
    t = xyz.shape[0]
    for _ in range(int(rng.integers(1, 4))):
        side = int(rng.choice((-1, 1)))
        start = int(rng.integers(0, t))
        stop = min(t, start + int(rng.integers(1, 4)))
        joints = list(_HAND_JOINTS[side])
        jump = rng.normal(0.0, 0.05, size=(stop - start, 1, 3))
        xyz[start:stop, joints] += jump + rng.normal(0.0, 0.01, size=(stop - start, 3, 3))
        state[start:stop, joints] = 1.0


def _new_body_id(rng: np.random.Generator, used: set[int]) -> int:
    while True:
        bid = _BODY_ID_BASE + int(rng.integers(1000, 30000))
        if bid not in used:
            used.add(bid)
            return bid


def synth_clip(
    rng: np.random.Generator,
    label: int,
    *,
    performer: int = 1,
    setup: int = 1,
    camera: int = 2,
    seed: int = 0,
    min_frames: int = 40,
    max_frames: int = 120,
    bystander: bool = False,
    fault: str | None = None,
    noise: float = 0.004,
) -> SynthClip:
    """One clip of class ``label`` (0-based), all randomness from ``rng`` except the performer's
    body (from ``seed`` and ``performer``) and the room (from ``seed`` and ``setup``).

    Interaction classes (:data:`MUTUAL_LABELS`) always have their partner; ``bystander`` adds
    a second person with idle motion to a single-person class. ``fault``: None,
    ``"empty_frames"``, ``"spurious_body"`` or ``"furniture"`` (see :class:`SynthConfig`).
    """
    if not 0 <= label < len(_CLASS_TABLE):
        raise ValueError(f"label must be in 0..{len(_CLASS_TABLE) - 1}, got {label}")
    if fault not in (None, "empty_frames", "spurious_body", "furniture"):
        raise ValueError(f"unknown fault {fault!r}")
    if not 16 <= min_frames <= max_frames <= MAX_FRAMES:
        raise ValueError(f"need 16 <= min_frames <= max_frames <= {MAX_FRAMES}")
    spec = _CLASS_TABLE[label]
    t, start, length = _timing(rng, min_frames, max_frames)
    u = _action_time(rng, t, start, length)
    amp = float(rng.uniform(0.7, 1.3))
    cam_h, dist, tilt = _setup_geometry(seed, setup)
    # view: the camera's angle plus a per-clip part, within +-45 degrees; tilt and room position
    yaw = float(np.clip({1: 0.0, 2: -25.0, 3: 25.0}[camera] + rng.uniform(-20, 20), -45, 45))
    tilt += float(rng.uniform(-2, 2))
    centre = np.array([rng.uniform(-0.4, 0.4), 0.0, dist + rng.uniform(-0.35, 0.45)])
    cam_h += float(rng.uniform(-0.05, 0.05))
    view = _rot_x(tilt) @ _rot_y(yaw)  # scene -> camera rotation

    offsets = _performer_offsets(seed, performer)
    people: list[tuple[str, _Person, np.ndarray, float]] = []  # kind, person, place, heading
    mutual = spec.partner is not None
    if mutual:
        d = spec.distance * float(rng.uniform(0.95, 1.05))
        actor = _person(rng, offsets, t, u, spec.actor, amp, 0.6)
        other = _performer_offsets(seed, 1000 + int(rng.integers(0, 106)))
        u2 = u + rng.uniform(-0.03, 0.03)
        partner = _person(rng, other, t, u2, spec.partner or (), amp * rng.uniform(0.85, 1.15), 0.8)
        people.append(("actor", actor, np.array([-d / 2, 0.0, 0.0]), -90.0))
        people.append(("partner", partner, np.array([d / 2, 0.0, 0.0]), 90.0))
    else:
        actor = _person(rng, offsets, t, u, spec.actor, amp, 0.6)
        people.append(("actor", actor, np.zeros(3), 0.0))
        if bystander:
            other = _performer_offsets(seed, 1000 + int(rng.integers(0, 106)))
            by = _person(rng, other, t, u, (), 1.0, 1.3, fidget=0.7)
            place = np.array(
                [rng.choice((-1, 1)) * rng.uniform(0.9, 1.4), 0.0, rng.uniform(-0.3, 0.6)]
            )
            people.append(("bystander", by, place, float(rng.uniform(-30, 30))))

    used: set[int] = set()
    tracks: list[BodyTrack] = []
    shift = centre - np.array([0.0, cam_h, 0.0])
    for kind, person, place, heading in people:
        to_scene = _rot_y(heading)
        world = person.pos @ to_scene.T + place
        xyz = (world @ _rot_y(yaw).T + shift) @ _rot_x(tilt).T
        rot = (view @ to_scene) @ person.rot
        xyz += rng.normal(0.0, noise, size=xyz.shape)
        state = np.full(xyz.shape[:2], 2.0)
        if rng.random() < 0.25:
            _hand_jitter(rng, xyz, state)
        frames = np.arange(t)
        if kind == "bystander" and rng.random() < 0.3:  # enters late or leaves early
            cut = int(rng.uniform(0.05, 0.2) * t)
            frames = frames[cut:] if rng.random() < 0.5 else frames[: t - cut]
        hands = (1, int(rng.integers(0, 4)), 1, int(rng.integers(0, 4)))
        tracks.append(
            BodyTrack(
                _new_body_id(rng, used),
                kind,
                frames,
                _joint_fields(xyz[frames], rot[frames], state[frames]),
                person.lean[frames],
                hands,
            )
        )
    if fault is not None:
        _inject_fault(rng, fault, tracks, t, used, noise, cam_h, centre, view)
    return SynthClip(label, t, tracks)


def _inject_fault(
    rng: np.random.Generator,
    fault: str,
    tracks: list[BodyTrack],
    t: int,
    used: set[int],
    noise: float,
    cam_h: float,
    centre: np.ndarray,
    view: np.ndarray,
) -> None:
    actor = tracks[0]
    if fault == "empty_frames":
        drop = np.zeros(t, dtype=bool)
        where = rng.choice(("start", "end", "middle", "start+end"))
        side = min(6, (t - 12) // 2)  # at least 12 frames keep their bodies
        if "start" in where:
            drop[: int(rng.integers(1, side + 1))] = True
        if "end" in where:
            drop[t - int(rng.integers(1, side + 1)) :] = True
        if where == "middle":
            gap = int(rng.integers(1, min(5, t - 12) + 1))
            at = int(rng.integers(t // 4, 3 * t // 4))
            drop[at : at + gap] = True
        for tr in tracks:
            keep = ~drop[tr.frames]
            tr.frames, tr.joints, tr.lean = tr.frames[keep], tr.joints[keep], tr.lean[keep]
    elif fault == "spurious_body":
        n = int(rng.integers(2, 11))
        start = int(rng.integers(0, t - n + 1))
        frames = np.arange(start, start + n)
        k = np.searchsorted(actor.frames, frames).clip(0, len(actor.frames) - 1)
        xyz = actor.xyz[k] * rng.uniform(0.85, 1.0)
        xyz += np.array([rng.uniform(-0.7, 0.7), rng.uniform(-0.1, 0.1), rng.uniform(-0.2, 0.6)])
        xyz += rng.normal(0.0, 0.03, size=xyz.shape)
        state = np.where(rng.random(xyz.shape[:2]) < 0.4, 1.0, 2.0)
        lean = rng.uniform(-1, 1, size=(n, 2))
        tracks.append(
            BodyTrack(
                _new_body_id(rng, used), "spurious", frames, _joint_fields(xyz, None, state), lean
            )
        )
    elif fault == "furniture":
        # a rigid, wide and flat object (a table, a sofa) standing in the room
        size = np.array([rng.uniform(0.9, 1.5), rng.uniform(0.2, 0.45), rng.uniform(0.3, 0.6)])
        local = rng.uniform(-0.5, 0.5, size=(NUM_JOINTS, 3)) * size
        local[:2, 0] = (-0.5 * size[0], 0.5 * size[0])  # its full width
        local[2:4, 1] = (-0.5 * size[1], 0.5 * size[1])
        side = rng.choice((-1, 1))
        place = np.array(
            [side * rng.uniform(1.0, 1.6), rng.uniform(0.3, 0.6), rng.uniform(-0.2, 0.8)]
        )
        scene = local @ _rot_y(rng.uniform(-15, 15)).T + place
        xyz0 = (scene + centre - np.array([0.0, cam_h, 0.0])) @ view.T
        first = int(rng.integers(0, max(1, t // 10)))
        last = t - int(rng.integers(0, max(1, t // 10)))
        frames = np.arange(first, last)
        drift = np.cumsum(rng.normal(0.0, 0.0008, size=(len(frames), 1, 3)), axis=0)
        xyz = xyz0 + drift + rng.normal(0.0, max(noise, 0.002) * 1.5, size=(len(frames), 25, 3))
        lean = np.tile(rng.uniform(-1, 1, size=(1, 2)), (len(frames), 1))
        body = BodyTrack(
            _new_body_id(rng, used),
            "furniture",
            frames,
            _joint_fields(xyz, None, None),
            lean,
            (0, 0, 0, 0),
        )
        tracks.insert(int(rng.integers(0, 2)), body)  # written before or after the person


# --------------------------------------------------------------------------------------------
# files and corpora


def synth_file(config: SynthConfig, index: int) -> tuple[str, bytes]:
    """(file name, file bytes) of file ``index`` (0 .. classes*per_class-1) of a corpus.

    File ``index`` is clip ``j = index % per_class`` of class ``index // per_class``; its content
    depends only on the seed, the label and j (and the configuration's switches), so any subset
    of files can be made in any order, in parallel, with the same bytes.
    """
    if not 0 <= index < config.num_files:
        raise IndexError(f"index {index} out of range for {config.num_files} files")
    label, j = divmod(index, config.per_class)
    setup, camera, performer, replication = clip_ids(config, label, j)
    two, fault, crlf = _clip_flags(config, label, j)
    rng = np.random.default_rng([config.seed, 0xC11B, label, j])
    clip = synth_clip(
        rng,
        label,
        performer=performer,
        setup=setup,
        camera=camera,
        seed=config.seed,
        min_frames=config.min_frames,
        max_frames=config.max_frames,
        bystander=two,
        fault=fault,
        noise=config.noise,
    )
    return _file_name(setup, camera, performer, replication, label), clip.to_bytes(crlf=crlf)


def generate_corpus(
    out_dir: str | Path, config: SynthConfig = SynthConfig(), *, progress: bool = False
) -> list[Path]:
    """Write ``classes * per_class`` synthetic ``.skeleton`` files into ``out_dir`` (created if
    needed) and return their paths sorted by name. Same configuration, same bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    indices: Iterable[int] = range(config.num_files)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, total=config.num_files, desc="synth", unit="file")
    paths = []
    for i in indices:
        name, data = synth_file(config, i)
        path = out / name
        path.write_bytes(data)
        paths.append(path)
    if len({p.name for p in paths}) != len(paths):  # guaranteed by clip_ids; checked anyway
        raise RuntimeError("synthetic file names collided")
    return sorted(paths, key=lambda p: p.name)
