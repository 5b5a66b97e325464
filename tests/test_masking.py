"""Masking: exact ratios, tubes, and the motion bias (statistics with fixed seeds)."""

import torch

from s2v.train.config import MaskConfig
from s2v.train.masking import (
    make_mask,
    motion_mask,
    random_mask,
    token_motion_from_clip,
    token_motion_from_prior,
    tube_mask,
)

T_TOK, V = 30, 25
L = T_TOK * V


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _check_keep_mask(keep, mask, n_keep):
    assert keep.shape == (mask.shape[0], n_keep)
    assert torch.all(keep[:, 1:] > keep[:, :-1])  # sorted, unique
    assert torch.equal(mask.sum(1), torch.full((mask.shape[0],), L - n_keep))
    assert not mask.gather(1, keep).any()  # every kept index is visible


def test_motion_tube_masks_exactly_92_percent():
    motion = torch.rand(64, T_TOK, V)
    keep, mask = tube_mask(motion, ratio=0.9, tube=5, beta=0.1, generator=_gen())
    _check_keep_mask(keep, mask, 60)  # 2 joints x 30 temporal tokens
    assert mask.sum().item() * 100 == 92 * mask.numel()  # exactly 92 %


def test_the_same_joints_stay_visible_through_a_tube():
    keep, mask = tube_mask(torch.rand(32, T_TOK, V), tube=5, generator=_gen(1))
    tubes = mask.view(32, 6, 5, V)
    assert torch.equal(tubes, tubes[:, :, :1].expand_as(tubes))
    assert torch.equal((~tubes[:, :, 0]).sum(-1), torch.full((32, 6), 2))
    # different tubes choose independently
    assert not torch.equal(tubes[:, 0, 0], tubes[:, 1, 0])


def test_high_motion_joints_are_masked_more_often():
    n = 20000
    motion = torch.full((n, T_TOK, V), 0.01)
    motion[:, :, 7] = 1.0  # joint 7 moves most in every tube
    keep_rate = {}
    for beta in (0.0, 0.1, 0.2):
        _, mask = tube_mask(motion, beta=beta, generator=_gen(2))
        visible = (~mask.view(n, 6, 5, V)[:, :, 0]).float().mean((0, 1))  # (V,)
        keep_rate[beta] = visible[7].item()
    # uniform: 2/25 = 0.08; the motion bias lowers the high-motion joint's chance of staying
    assert abs(keep_rate[0.0] - 0.08) < 0.005
    assert keep_rate[0.1] < keep_rate[0.0] - 0.01
    assert keep_rate[0.2] < keep_rate[0.1] - 0.01


def test_zero_padded_person_is_masked_uniformly():
    n = 20000
    _, mask = tube_mask(torch.zeros(n, T_TOK, V), beta=0.2, generator=_gen(3))
    counts = (~mask.view(n, 6, 5, V)[:, :, 0]).sum((0, 1)).double()  # visible picks per joint
    expected = n * 6 * 2 / V
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 51.2  # chi-square, 24 dof, p = 0.001


def test_tube_mode_ignores_motion():
    motion = torch.rand(16, T_TOK, V) * 100
    cfg = MaskConfig(mode="tube", beta=0.2)
    a = make_mask(cfg, motion, _gen(4))
    b = make_mask(cfg, torch.zeros_like(motion), _gen(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_random_mode_keeps_74_of_750_tokens():
    keep, mask = random_mask(256, L, 0.9, _gen(5))
    _check_keep_mask(keep, mask, 74)
    rate = (~mask).float().mean(0)  # per token: ~74/750
    assert abs(rate.mean().item() - 74 / 750) < 1e-6
    keep2, _ = make_mask(MaskConfig(mode="random"), torch.zeros(256, T_TOK, V), _gen(5))
    assert torch.equal(keep, keep2)


def test_mamp_motion_mode_keeps_74_and_masks_high_motion_tokens_more():
    n = 4000
    motion = torch.full((n, T_TOK, V), 0.1)
    motion[:, :, :5] = 1.0  # 150 high-motion tokens
    keep, mask = motion_mask(motion, ratio=0.9, tau=0.8, generator=_gen(6))
    _check_keep_mask(keep, mask, 74)
    visible = (~mask).float().view(n, T_TOK, V)
    assert visible[:, :, :5].mean() < 0.5 * visible[:, :, 5:].mean()
    # a zero-motion person: uniform per token
    _, m0 = motion_mask(torch.zeros(n, T_TOK, V), generator=_gen(7))
    rate = (~m0).float().mean(0)
    assert abs(rate.mean().item() - 74 / 750) < 1e-6
    assert (rate - 74 / 750).abs().max() < 0.02


def test_masks_are_reproducible_from_the_generator():
    motion = torch.rand(8, T_TOK, V)
    for mode in ("motion-tube", "tube", "random", "motion"):
        a = make_mask(MaskConfig(mode=mode), motion, _gen(8))
        b = make_mask(MaskConfig(mode=mode), motion, _gen(8))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), mode


def test_token_motion_from_prior_is_the_mean_over_each_token_s_frames():
    prior = torch.arange(2 * 6 * 3, dtype=torch.float32).view(2, 6, 3)  # (N, T=6, V=3)
    tok = token_motion_from_prior(prior, 3)
    assert tok.shape == (2, 2, 3)
    assert torch.allclose(tok[0, 1], prior[0, 3:6].mean(0))


def test_token_motion_from_clip_is_mean_abs_frame_difference():
    x = torch.zeros(1, 6, 2, 3)
    x[0, :, 0, 0] = torch.tensor([0.0, 1.0, 3.0, 6.0, 6.0, 6.0])  # joint 0 moves along x
    tok = token_motion_from_clip(x, 3)  # frames 0-2 and 3-5
    # token 0: |1-0|, |3-1|, |6-3| over x (and 0 on y, z): (1 + 2 + 3) / 3 / 3
    assert torch.allclose(tok[0, 0, 0], torch.tensor(6.0 / 9.0))
    # token 1: differences 0, 0 and the padded last frame
    assert tok[0, 1, 0] == 0 and torch.all(tok[0, :, 1] == 0)
