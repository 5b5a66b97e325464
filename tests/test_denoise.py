"""Denoising, actor merge and centring: the reference rules on constructed cases."""

import numpy as np
import pytest

from s2v.errors import ParseError
from s2v.preprocess.denoise import Denoised, body_motion, centre, denoise
from s2v.preprocess.ntu import Body


def person(n: int, seed: int, start: int = 0, move: float = 0.02) -> Body:
    """A tall, narrow body (passes the spread filter) that moves a little each frame."""
    rng = np.random.default_rng(seed)
    base = np.stack(
        [rng.uniform(-0.15, 0.15, 25), rng.uniform(-0.8, 0.8, 25), 3 + rng.uniform(-0.1, 0.1, 25)],
        1,
    )
    walk = np.cumsum(rng.normal(0, move, (n, 25, 3)), axis=0)
    return Body(seed, (base + walk).astype(np.float32), start)


def furniture(n: int, seed: int) -> Body:
    """Wide and flat: every frame is 'noisy' for the spread filter."""
    rng = np.random.default_rng(seed)
    base = np.stack([rng.uniform(-1, 1, 25), rng.uniform(-0.05, 0.05, 25), np.full(25, 3.5)], 1)
    return Body(seed, np.repeat(base[None], n, 0).astype(np.float32), 0)


def test_single_body_keeps_zero_rows_as_minus_origin():
    b = person(30, 1)
    b.joints[5] = 0  # an all-zero row stays in single-body samples
    d = denoise("x", [b], 30)
    assert d.slots == 1 and len(d.joints) == 30
    origin = b.joints[0, 1]
    np.testing.assert_array_equal(d.joints[5, 0], np.broadcast_to(-origin, (25, 3)))
    assert not d.joints[:, 1].any()


def test_centre_origin_is_joint_1_of_actor_1_at_first_nonzero_row():
    j = np.zeros((4, 150), np.float32)
    j[1:, :75] = np.arange(75, dtype=np.float32) + 1  # actor 1 from row 1
    j[2:, 75:] = 5  # actor 2 from row 2
    origin = j[1, 3:6].copy()
    out = centre(j.copy(), "x")
    assert np.all(out[0] == 0)  # a row absent for both actors is re-zeroed
    np.testing.assert_array_equal(out[1, 3:6], 0)
    assert np.all(out[1, 75:] == 0)  # actor 2 absent in row 1: re-zeroed
    np.testing.assert_array_equal(out[2, 75:], 5 - np.tile(origin, 25))


def test_short_bodies_are_dropped():
    d = denoise("x", [person(40, 1), person(11, 2, start=3)], 40)
    assert d.slots == 1 and d.kept_bodies == 1


def test_all_bodies_short_is_reported_unusable():
    with pytest.raises(ParseError, match="11 frames or fewer"):
        denoise("S001C001P001R001A001", [person(10, 1), person(11, 2)], 11)


def test_furniture_is_removed_by_the_spread_filter():
    d = denoise("x", [furniture(40, 5), person(40, 1)], 40)
    assert d.slots == 1
    assert not d.joints[:, 1].any()


def test_two_overlapping_people_fill_both_slots_by_motion():
    calm, busy = person(30, 1, move=0.001), person(30, 2, move=0.05)
    d = denoise("x", [calm, busy], 30)
    assert d.slots == 2 and d.kept_bodies == 2
    assert body_motion(busy.joints) > body_motion(calm.joints)
    # actor 1 is the busier body, centred on its own joint 1 at frame 0
    np.testing.assert_allclose(d.joints[:, 0] + busy.joints[0, 1], busy.joints, atol=1e-6)


def test_identity_switch_lands_in_actor_1_and_keeps_two_slots():
    # two bodyIDs one after the other, touching by one frame: no overlap -> same slot
    a, b = person(20, 1), person(20, 2, start=19)
    d = denoise("x", [a, b], 39)
    assert d.slots == 2  # the width decides NTU-120's duplication, not the content
    assert not d.joints[:, 1].any()
    assert len(d.joints) == 39


def test_rows_empty_for_both_actors_are_removed():
    a, b = person(20, 1, start=0), person(20, 2, start=25)
    d = denoise("x", [a, b], 45)
    assert len(d.joints) == 40  # frames 20-24 were empty


def test_preset_none_keeps_the_two_largest_motions_without_filters():
    bodies = [furniture(40, 5), person(40, 1, move=0.001), person(40, 2, move=0.05)]
    d = denoise("x", bodies, 40, preset="none")
    assert isinstance(d, Denoised) and d.slots == 2
    ranked = sorted(bodies, key=lambda b: body_motion(b.joints), reverse=True)
    origin = ranked[0].joints[0, 1]
    np.testing.assert_allclose(d.joints[:, 0], ranked[0].joints - origin, atol=1e-6)


def test_single_body_kernel_equals_the_numpy_path_bit_for_bit():
    """The one-pass kernel for single-bodyID files against _one_actor + centre (the numpy
    statement of the reference), with late starts, leading zero frames and zero origins."""
    from s2v.preprocess.denoise import _one_actor

    rng = np.random.default_rng(3)
    for case in range(60):
        n = int(rng.integers(4, 40))
        joints = rng.normal(0, 1, (n, 25, 3)).astype(np.float32)
        if case % 3 == 0:
            joints[:2] = 0  # origin row later than the body's start
        if case % 4 == 0:
            joints[:, 1, int(rng.integers(0, 3))] = 0  # an origin coordinate of 0: +0.0 after
        start = int(rng.integers(0, 3))
        num_frames = start + n + int(rng.integers(0, 3))
        body = Body(1, joints, start)
        want = np.zeros((num_frames, 2, 25, 3), np.float32)
        want[:, 0] = centre(_one_actor(body, num_frames), "x").reshape(num_frames, 25, 3)
        got = denoise("x", [body], num_frames)
        assert got.joints.tobytes() == want.tobytes()
        assert (got.slots, got.bodies, got.kept_bodies) == (1, 1, 1)
    with pytest.raises(ParseError, match="no non-zero joint"):
        denoise("x", [Body(1, np.zeros((5, 25, 3), np.float32), 0)], 5)


def test_body_motion_kernel_equals_numpys_var_bit_for_bit():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 600))
        scale, shift = rng.uniform(0.001, 5), rng.normal(size=3) * 3
        joints = (rng.normal(size=(n, 25, 3)) * scale + shift).astype(np.float32)
        want = np.sum(np.var(joints.reshape(-1, 3), axis=0))
        got = body_motion(joints)
        assert got.dtype == np.float32 and got == want


def _numpy_ctrgcn(name: str, bodies: list[Body], num_frames: int) -> Denoised:
    """The numpy statement of the reference (select, drop missing rows, centre)."""
    from s2v.preprocess.denoise import _finish, _select_ctrgcn

    return _finish(name, *_select_ctrgcn(name, bodies, num_frames), len(bodies))


def _random_bodies(rng: np.random.Generator) -> tuple[list[Body], int]:
    """Several bodies of every kind the filters tell apart: short ones, furniture, bodies
    partly noisy for the spread filter and right at its threshold, equal motions (ties),
    zero frames, rows that sum to exactly 0, touching and overlapping intervals."""
    bodies = []
    end = 0
    copy_of = None
    for k in range(int(rng.integers(2, 7))):
        n = int(rng.choice([int(rng.integers(1, 12)), int(rng.integers(12, 50))]))
        start = int(rng.integers(0, 40))
        kind = int(rng.integers(0, 7))
        if kind == 0:  # a person: tall and narrow
            j = person(n, int(rng.integers(1 << 30)), move=float(rng.uniform(0.001, 0.05))).joints
        elif kind == 1:  # furniture: wide and flat
            j = furniture(n, int(rng.integers(1 << 30))).joints
        elif kind == 2:  # some frames noisy, some not
            j = person(n, int(rng.integers(1 << 30))).joints
            noisy = rng.random(n) < rng.uniform(0.2, 0.9)
            j[noisy, :, 0] *= 8
        elif kind == 3:  # x-spread == 0.8 * y-spread in float32 arithmetic, or one ulp off
            y = np.float32(1.25)
            x = np.float32(0.8) * y
            x = np.nextafter(x, np.float32(9)) if rng.random() < 0.5 else x
            j = np.zeros((n, 25, 3), np.float32)
            j[:, 0, 0], j[:, 1, 0] = 0, x
            j[:, 0, 1], j[:, 1, 1] = 0, y
            j[:, :, 2] = 3
            j += rng.integers(-3, 3, (n, 1, 3)).astype(np.float32) / 4
        elif kind == 4 and copy_of is not None:  # the same motion as another body: a tie
            j = copy_of.copy()
            n = len(j)
        elif kind == 5:  # rows that sum to exactly 0, and all-zero frames
            j = rng.integers(-4, 5, (n, 25, 3)).astype(np.float32) / 8
            j[:, 12:24] = -j[:, :12]
            j[:, 24] = 0
            j[rng.random(n) < 0.3] = 0
        else:
            j = person(n, int(rng.integers(1 << 30))).joints
            j[rng.random(n) < 0.2] = 0
        copy_of = j
        bodies.append(Body(k + 1, np.ascontiguousarray(j, np.float32), start))
        end = max(end, start + n)
    return bodies, end + int(rng.integers(0, 3))


def test_ctrgcn_kernel_equals_the_numpy_path_bit_for_bit():
    """Several bodies: the kernel that runs against the numpy functions (the reference's
    steps on the reference's arrays), on 3,000 random sets, outcomes and errors included."""
    rng = np.random.default_rng(5)
    outcomes = {"one slot": 0, "two slots": 0, "error": 0}
    for _ in range(3000):
        bodies, num_frames = _random_bodies(rng)
        try:
            want = _numpy_ctrgcn("x", bodies, num_frames)
        except ParseError as exc:
            with pytest.raises(ParseError) as got_exc:
                denoise("x", bodies, num_frames)
            assert str(got_exc.value) == str(exc)
            outcomes["error"] += 1
            continue
        got = denoise("x", bodies, num_frames)
        assert got.joints.dtype == np.float32 and got.joints.shape == want.joints.shape
        assert got.joints.tobytes() == want.joints.tobytes()
        assert (got.slots, got.bodies, got.kept_bodies) == (
            want.slots,
            want.bodies,
            want.kept_bodies,
        )
        outcomes["one slot" if got.slots == 1 else "two slots"] += 1
    assert min(outcomes.values()) > 100, outcomes  # every outcome well covered


def test_row_sums_follow_numpys_pairwise_order():
    from s2v.preprocess.denoise import _row_sum

    rng = np.random.default_rng(8)
    for n in (1, 7, 8, 9, 75, 127, 128, 129, 150, 239, 240):
        for _ in range(200):
            row = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(np.float32)
            assert np.float32(_row_sum(row, 0, n)).tobytes() == row.sum().tobytes()
