"""The synthetic NTU corpus generator: determinism, names, format, body model, classes, faults."""

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from s2v.layout import NTU25_BONES
from s2v.preprocess import ntu_writer
from s2v.preprocess.synth import (
    MUTUAL_LABELS,
    SkeletonBody,
    SynthConfig,
    class_names,
    clip_ids,
    format_skeleton_file,
    generate_corpus,
    synth_clip,
    synth_file,
)

NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})\.skeleton$")
XSUB60_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
HAND_JOINTS = {7, 11, 21, 22, 23, 24}  # may carry injected jitter
BODY_BONES = [(c, p) for c, p in NTU25_BONES if c not in HAND_JOINTS]
SMALL = SynthConfig(classes=10, per_class=12)


# --------------------------------------------------------------------------------------------
# an independent reader of the NTU text format


def read_ntu(data: bytes) -> list[list[tuple[int, np.ndarray]]]:
    """Walk the format strictly; return per frame a list of (bodyID, joints (25, 12))."""
    assert data.endswith(b"\n"), "file must end with a newline"
    crlf = b"\r\n" in data
    if crlf:
        assert data.count(b"\n") == data.count(b"\r\n"), "mixed line endings"
    else:
        assert b"\r" not in data
    lines = data.decode("ascii").split("\r\n" if crlf else "\n")
    assert lines[-1] == ""
    lines.pop()
    pos = 0

    def take() -> str:
        nonlocal pos
        assert pos < len(lines), "file ends early"
        pos += 1
        return lines[pos - 1]

    frames = []
    num_frames = int(take())
    assert 1 <= num_frames <= 300
    for _ in range(num_frames):
        count = int(take())
        assert count >= 0
        bodies = []
        for _ in range(count):
            info = take().split(" ")
            assert len(info) == 10, info
            body_id = int(info[0])
            assert len(info[0]) == 17 and 0 <= body_id < 2**64
            assert all(v.isdigit() for v in info[1:7] + [info[9]])
            assert all(math.isfinite(float(v)) and -1 <= float(v) <= 1 for v in info[7:9])
            assert take() == "25"
            block = lines[pos : pos + 25]
            assert len(block) == 25, "file ends early"
            pos += 25
            assert all(line.count(" ") == 11 and "  " not in line for line in block)
            assert all(line.rsplit(" ", 1)[1] in ("0", "1", "2") for line in block)
            joints = np.array(" ".join(block).split(" "), dtype=np.float64).reshape(25, 12)
            assert np.isfinite(joints).all()
            bodies.append((body_id, joints))
        ids = [b for b, _ in bodies]
        assert len(set(ids)) == len(ids), "a bodyID twice in one frame"
        frames.append(bodies)
    assert pos == len(lines), "trailing lines"
    return frames


def tracks_of(frames) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """bodyID -> (frame indices, xyz (n, 25, 3)) in order of first appearance."""
    out: dict[int, tuple[list, list]] = {}
    for f, bodies in enumerate(frames):
        for body_id, joints in bodies:
            out.setdefault(body_id, ([], []))
            out[body_id][0].append(f)
            out[body_id][1].append(joints[:, :3])
    return {k: (np.array(f), np.array(x)) for k, (f, x) in out.items()}


def noisy_share(xyz: np.ndarray) -> float:
    """Share of frames the reference's spread filter calls noisy (x spread > 0.8 y spread)."""
    spread = np.ptp(xyz, axis=1)
    return float(np.mean(spread[:, 0] > 0.8 * spread[:, 1]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    return generate_corpus(tmp_path_factory.mktemp("clean"), SMALL)


@pytest.fixture(scope="module")
def parsed(corpus) -> dict[str, list]:
    return {p.name: read_ntu(p.read_bytes()) for p in corpus}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> dict[str, list]:
    paths = generate_corpus(
        tmp_path_factory.mktemp("faulty"), SynthConfig(classes=10, per_class=12, faults=True)
    )
    return {p.name: read_ntu(p.read_bytes()) for p in paths}


# --------------------------------------------------------------------------------------------
# determinism and names


def test_same_seed_same_bytes_any_order(tmp_path):
    cfg = SynthConfig(classes=3, per_class=4, seed=5)
    a = generate_corpus(tmp_path / "a", cfg)
    b = generate_corpus(tmp_path / "b", cfg)
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    # each file depends only on (seed, index): any order, any subset gives the same bytes
    by_name = {p.name: p.read_bytes() for p in a}
    for i in reversed(range(cfg.num_files)):
        name, data = synth_file(cfg, i)
        assert by_name[name] == data
    # a file does not depend on how many classes the corpus has
    for i in (0, 7, 30, 119):
        assert synth_file(SMALL, i) == synth_file(SynthConfig(classes=20, per_class=12), i)


def test_different_seed_different_data(tmp_path):
    a = generate_corpus(tmp_path / "a", SynthConfig(classes=2, per_class=3, seed=0))
    b = generate_corpus(tmp_path / "b", SynthConfig(classes=2, per_class=3, seed=1))
    contents_a = {p.read_bytes() for p in a}
    assert not contents_a & {p.read_bytes() for p in b}


def test_names(corpus):
    names = [p.name for p in corpus]
    assert len(names) == SMALL.num_files == len(set(names))
    assert names == sorted(names)
    actions = []
    for name in names:
        m = NAME_RE.match(name)
        assert m, name
        s, c, p, r, a = (int(g) for g in m.groups())
        assert 1 <= s <= 17 and 1 <= c <= 3 and 1 <= p <= 40 and 1 <= r <= 2  # valid NTU-60
        actions.append(a)
    assert np.bincount(actions).tolist() == [0] + [12] * 10


@pytest.mark.parametrize("classes", [10, 120])
def test_ids_unique_balanced_and_in_range(classes):
    cfg = SynthConfig(classes=classes, per_class=24)
    max_setup, max_perf = (32, 106) if classes > 60 else (17, 40)
    for label in (0, classes - 1):
        ids = [clip_ids(cfg, label, j) for j in range(cfg.per_class)]
        assert len(set(ids)) == len(ids)
        setups, cams, perfs, reps = (np.array(v) for v in zip(*ids, strict=True))
        assert setups.max() <= max_setup and perfs.max() <= max_perf and reps.max() <= 2
        assert np.bincount(cams, minlength=4)[1:].tolist() == [8, 8, 8]
        assert len(set(perfs.tolist())) == 24  # no performer twice among 24 clips
    # uniqueness holds up to the advertised capacity (NTU-60 pools: 3 * 40 * 2 * 17)
    if classes == 10:
        cap = SynthConfig(classes=1, per_class=4080)
        assert len({clip_ids(cap, 0, j) for j in range(4080)}) == 4080
        with pytest.raises(ValueError):
            SynthConfig(classes=1, per_class=4081)


def test_splits_have_both_parts_in_every_class(corpus):
    per_class: dict[int, list] = {}
    for p in corpus:
        s, c, perf, _, a = (int(g) for g in NAME_RE.match(p.name).groups())
        per_class.setdefault(a, []).append((s, c, perf))
    for rows in per_class.values():
        xsub = {perf in XSUB60_TRAIN for _, _, perf in rows}
        xview = {c in (2, 3) for _, c, _ in rows}
        xset = {s % 2 == 0 for s, _, _ in rows}
        assert xsub == xview == xset == {True, False}


def test_config_validation():
    for bad in (
        {"classes": 0},
        {"classes": 121},
        {"per_class": 0},
        {"max_frames": 301},
        {"min_frames": 80, "max_frames": 60},
        {"two_person_fraction": 1.5},
        {"noise": -0.1},
        {"seed": -1},
    ):
        with pytest.raises(ValueError):
            SynthConfig(**bad)


# --------------------------------------------------------------------------------------------
# format


def test_every_file_is_valid(corpus, parsed):
    for p in corpus:
        frames = parsed[p.name]
        assert SMALL.min_frames <= len(frames) <= SMALL.max_frames
        for bodies in frames:
            for _, joints in bodies:
                x, y, z = joints[:, 0], joints[:, 1], joints[:, 2]
                assert (np.abs(x) < 4).all() and (np.abs(y) < 3).all()
                assert ((z > 1.0) & (z < 6.0)).all()
                assert ((joints[:, 3] > -300) & (joints[:, 3] < 800)).all()  # depth pixels
                assert ((joints[:, 5] > -1000) & (joints[:, 5] < 3000)).all()  # colour pixels
                assert (np.abs(joints[:, 7:11]) <= 1.0).all()  # quaternions
    size = np.mean([p.stat().st_size for p in corpus])
    assert 100e3 < size < 300e3


def test_number_printing_matches_percent_g():
    rng = np.random.default_rng(0)
    special = [0.0, -0.0, 1e-5, 0.99999995, 9999999.5, 99999.995, 1e22, 1e-300, 5e-324, 0.5]
    ties = (rng.integers(10**6, 10**7, 2000) * 10 + 5) * 2.0 ** rng.integers(-12, 4, 2000)
    values = np.concatenate(
        [special, ties, rng.normal(size=20000) * 10.0 ** rng.integers(-9, 9, 20000)]
    )
    values = np.resize(values, (len(values) // 275 + 1) * 275).reshape(-1, 25, 11)
    frames = [
        [SkeletonBody(72057594037931101, np.c_[v, np.full(25, 2.0)], (0.25, -0.0))] for v in values
    ]
    frames.insert(3, [])  # a frame without bodies
    for crlf in (False, True):
        data = format_skeleton_file(frames, crlf=crlf)
        assert data == ntu_writer._format_reference(frames, crlf=crlf).encode()
    lines = data.split(b"\r\n")
    assert lines[:3] == [str(len(frames)).encode(), b"1", b"72057594037931101 0 1 1 1 1 0 0.25 0 2"]
    assert b"\r\n0 0 1e-05 0.9999999 1e+07 99999.99 1e+22 1e-300 4.940656e-324 0.5 " in data
    with pytest.raises(ValueError):
        format_skeleton_file([[SkeletonBody(1, np.full((25, 12), np.nan))]])
    with pytest.raises(ValueError):
        format_skeleton_file([[SkeletonBody(1, np.zeros((24, 12)))]])


def test_real_looking_lines(corpus):
    text = corpus[0].read_bytes().decode()
    line = text.splitlines()[4]  # first joint line
    x, y, z = line.split(" ")[:3]
    assert all(len(v.lstrip("-").replace(".", "").lstrip("0")) <= 7 for v in (x, y, z))
    info = text.splitlines()[2].split(" ")
    assert info[0].startswith("720575940")


def test_line_endings(corpus):
    crlf = [b"\r\n" in p.read_bytes() for p in corpus]
    assert 0.1 < np.mean(crlf) < 0.4  # about a quarter, like the real data's mix


# --------------------------------------------------------------------------------------------
# body model and classes


def test_bone_lengths_constant_within_clip_and_per_performer(corpus, parsed):
    lengths: dict[int, list[np.ndarray]] = {}
    for p in corpus:
        tracks = tracks_of(parsed[p.name])
        _, xyz = next(iter(tracks.values()))  # the actor
        bones = np.stack(
            [np.linalg.norm(xyz[:, c] - xyz[:, q], axis=-1) for c, q in BODY_BONES], axis=1
        )
        # sensor noise 4 mm per coordinate: a bone's length wobbles by about 6 mm
        assert bones.std(axis=0).max() < 0.015, p.name
        perf = int(NAME_RE.match(p.name).group(3))
        lengths.setdefault(perf, []).append(np.median(bones, axis=0))
    # the same performer has the same bones in every clip, different performers differ
    same = [np.abs(v[0] - v[1]).max() for v in lengths.values() if len(v) > 1]
    assert same and max(same) < 0.01
    medians = np.array([v[0] for v in lengths.values()])
    diffs = np.array([np.abs(a - b).max() for a, b in itertools.combinations(medians, 2)])
    assert np.mean(diffs > 0.01) > 0.9 and np.median(diffs) > 0.02


def test_forward_kinematics_keeps_bones_exact():
    clip = synth_clip(np.random.default_rng(3), 17, noise=0.0)  # walk forward
    xyz = clip.tracks[0].xyz
    bones = np.stack([np.linalg.norm(xyz[:, c] - xyz[:, q], axis=-1) for c, q in BODY_BONES], 1)
    assert np.ptp(bones, axis=0).max() < 1e-9
    assert np.ptp(xyz[:, 0, 2]) > 0.3  # while the body moves through the room


def test_classes_differ_only_in_motion():
    """Same random stream, different labels: same first frame (rest pose, view, performer),
    clearly different motion; every one of the 120 classes differs from every other."""
    trajectories = []
    for label in range(120):
        clip = synth_clip(np.random.default_rng(11), label, noise=0.0)
        xyz = [tr.xyz for tr in clip.tracks]
        if label not in MUTUAL_LABELS:
            assert len(xyz) == 1
            xyz = xyz * 2
        trajectories.append(np.concatenate(xyz, axis=1))
    traj = np.array(trajectories)  # all clips have the same length under one stream
    single = [k for k in range(120) if k not in MUTUAL_LABELS]
    assert np.abs(traj[single, 0] - traj[0, 0]).max() < 1e-12
    for k in range(119):  # peak distance, at some joint and frame, to every later class
        peak = np.sqrt(((traj[k + 1 :] - traj[k]) ** 2).sum(-1)).max(axis=(1, 2))
        assert peak.min() > 0.03, (k, k + 1 + int(peak.argmin()))
    names = class_names()
    assert len(names) == 120 == len(set(names))
    assert class_names(10) == names[:10]


def test_mean_class_trajectories_differ(corpus, parsed):
    """View-invariant summary of each clip's actor motion; classes are told apart by a nearest
    class mean (leave one out) far above chance (0.1) and their means differ."""
    feats, labels = [], []
    for p in corpus:
        _, xyz = next(iter(tracks_of(parsed[p.name]).values()))
        rel = xyz - xyz[:1, :1]
        hip = xyz[0, 16] - xyz[0, 12]
        right = np.array([hip[0], 0.0, hip[2]]) / np.hypot(hip[0], hip[2])
        axes = np.stack([right, [0.0, 1.0, 0.0], np.cross(right, [0.0, 1.0, 0.0])], axis=1)
        body = (rel @ axes)[:, [0, 3, 5, 7, 9, 11, 13, 15, 17, 19]]
        feats.append(np.concatenate([body.mean(0), body.std(0), body.min(0), body.max(0)], None))
        labels.append(int(p.name[17:20]) - 1)
    x, y = np.array(feats), np.array(labels)
    hits = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        means = np.array([x[keep & (y == k)].mean(0) for k in range(10)])
        hits += np.argmin(np.linalg.norm(means - x[i], axis=1)) == y[i]
    assert hits / len(x) > 0.6
    means = np.array([x[y == k].mean(0) for k in range(10)])
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(10, 1)]
    assert gaps.min() > 0.05


def test_two_person_clips(corpus, parsed):
    two = 0
    for p in corpus:
        tracks = tracks_of(parsed[p.name])
        assert 1 <= len(tracks) <= 2
        for frames, xyz in tracks.values():
            assert len(frames) >= 0.75 * len(parsed[p.name])  # a real person, most of the clip
            assert noisy_share(xyz) < 0.5  # survives the reference's spread filter
        two += len(tracks) == 2
    assert 0.1 < two / len(corpus) < 0.35  # two_person_fraction = 0.2


def test_interactions_have_two_people():
    cfg = SynthConfig(classes=60, per_class=1, two_person_fraction=0.0)
    for label in (0, 49, 57, 59):
        name, data = synth_file(cfg, label)
        tracks = tracks_of(read_ntu(data))
        assert len(tracks) == (2 if label in MUTUAL_LABELS else 1), name
    cfg120 = SynthConfig(classes=120, per_class=1)
    name, data = synth_file(cfg120, 110)
    assert int(NAME_RE.match(name).group(5)) == 111 and len(tracks_of(read_ntu(data))) == 2


# --------------------------------------------------------------------------------------------
# faults


def fault_kinds(frames) -> set[str]:
    kinds = set()
    if any(len(b) == 0 for b in frames):
        kinds.add("empty_frames")
    for _, xyz in tracks_of(frames).values():
        if len(xyz) <= 10:
            kinds.add("spurious_body")
        elif noisy_share(xyz) > 0.9 and np.ptp(xyz, axis=0).max() < 0.1:
            kinds.add("furniture")  # wide, flat and static
    return kinds


def test_faults_present_when_requested(faulty):
    per_file = {name: fault_kinds(frames) for name, frames in faulty.items()}
    assert set().union(*per_file.values()) == {"empty_frames", "spurious_body", "furniture"}
    share = np.mean([bool(k) for k in per_file.values()])
    assert 0.08 <= share <= 0.25
    for name, kinds in per_file.items():
        if "furniture" in kinds:  # the person is there as well
            people = [x for _, x in tracks_of(faulty[name]).values() if noisy_share(x) < 0.5]
            assert people and len(people[0]) > 0.8 * len(faulty[name])


def test_no_faults_by_default(parsed):
    for name, frames in parsed.items():
        assert not fault_kinds(frames), name
        assert all(len(b) >= 1 for b in frames)


def test_progress_bar(tmp_path, capsys):
    paths = generate_corpus(tmp_path, SynthConfig(classes=1, per_class=2), progress=True)
    assert len(paths) == 2
    assert "synth" in capsys.readouterr().err
