"""Which tokens the student sees (docs/method.md §4).

Every mode returns ``keep: (N, K)`` the visible token indices, sorted ascending (K equal for all
rows), and ``mask: (N, L)`` bool, True where a token is masked (to be predicted). Tokens are
time-major, ``l = t * V + v``. Per-token motion ``m: (N, T', V)`` (``token_motion``) drives the
motion-aware modes; high motion means masked more often.

- ``motion-tube`` (default): time is cut into tubes of ``a`` tokens; per tube and joint,
  score = U(0, 1) + beta * m[k, v] / (max_v m[k, v] + 1e-6); the n_keep joints with the lowest
  score stay visible for the whole tube. n_keep = int(V * (1 - ratio)) = 2 of 25 (92 % masked).
- ``tube``: the same with beta = 0 (uniform joints per tube).
- ``random``: MAE, per-token uniform, n_keep = int(L * (1 - ratio)) = 74 of 750.
- ``motion``: MAMP, per token p = softmax(m / (max m * tau)); the masked set is drawn from p
  without replacement by Gumbel top-k, the rest (74 of 750) is visible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from s2v.train.config import MaskConfig


def token_motion_from_prior(motion: Tensor, segment: int) -> Tensor:
    """motion: (N, T, V) per-frame prior (the store's, gathered at the sampled frames)
    -> (N, T/s, V): mean over each token's s frames."""
    N, T, V = motion.shape
    return motion.float().view(N, T // segment, segment, V).mean(2)


def token_motion_from_clip(x: Tensor, segment: int) -> Tensor:
    """x: (N, T, V, C) -> (N, T/s, V): mean |x[f+1] - x[f]| over a token's frames and the C
    coordinates (0 at the clip's last frame, like the stored prior)."""
    d = (x[:, 1:] - x[:, :-1]).abs().float().mean(-1)  # (N, T-1, V)
    d = torch.cat([d, d.new_zeros(d.shape[0], 1, d.shape[2])], 1)  # (N, T, V)
    return token_motion_from_prior(d, segment)


def _keep_from_mask(mask: Tensor, n_keep: int) -> Tensor:
    """mask: (N, L) bool with exactly n_keep False per row -> their indices (N, n_keep), sorted."""
    # stable sort puts the visible (False = 0) tokens first, in index order; no host sync
    return torch.argsort(mask.to(torch.uint8), dim=1, stable=True)[:, :n_keep]


def _mask_from_keep(keep: Tensor, length: int) -> Tensor:
    mask = torch.ones(keep.shape[0], length, dtype=torch.bool, device=keep.device)
    return mask.scatter(1, keep, False)


def tube_mask(
    motion: Tensor,
    ratio: float = 0.9,
    tube: int = 5,
    beta: float = 0.10,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Motion-aware tube masking. motion: (N, T', V) token motion -> keep (N, K), mask (N, L).

    The same joints stay visible through each tube of ``tube`` temporal tokens; K = T' * n_keep.
    """
    N, Tp, V = motion.shape
    if Tp % tube:
        raise ValueError(f"{Tp} temporal tokens are not a multiple of the tube length {tube}")
    n_keep = int(V * (1 - ratio))
    k = Tp // tube
    m = motion.float().view(N, k, tube, V).mean(2)  # (N, k, V) tube motion
    m = m / (m.amax(-1, keepdim=True) + 1e-6)  # in [0, 1] per tube; a zero-padded person: all 0
    u = torch.rand(N, k, V, generator=generator, device=motion.device)
    score = u + beta * m
    # keep the lowest scores: high motion -> high score -> masked more often
    keep_j = score.topk(n_keep, dim=-1, largest=False).indices  # (N, k, n_keep)
    visible = torch.zeros(N, k, V, dtype=torch.bool, device=motion.device)
    visible.scatter_(2, keep_j, True)
    mask = ~visible[:, :, None, :].expand(N, k, tube, V).reshape(N, Tp * V)
    return _keep_from_mask(mask, Tp * n_keep), mask


def random_mask(
    n: int,
    length: int,
    ratio: float = 0.9,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """MAE per-token uniform masking -> keep (n, K), mask (n, length), K = int(length*(1-ratio))."""
    n_keep = int(length * (1 - ratio))
    noise = torch.rand(n, length, generator=generator, device=device)
    keep = noise.argsort(1)[:, :n_keep].sort(1).values  # ascend: small is keep
    return keep, _mask_from_keep(keep, length)


def motion_mask(
    motion: Tensor,
    ratio: float = 0.9,
    tau: float = 0.80,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """MAMP motion-aware masking. motion: (N, T', V) -> keep (N, K), mask (N, L)."""
    N = motion.shape[0]
    m = motion.float().reshape(N, -1)  # (N, L)
    L = m.shape[1]
    n_keep = int(L * (1 - ratio))
    logp = torch.log_softmax(m / (m.amax(-1, keepdim=True) * tau + 1e-10), dim=-1)
    u = torch.rand(N, L, generator=generator, device=motion.device)
    gumbel = -torch.log(-torch.log(u + 1e-10) + 1e-10)
    # Gumbel top-k: the largest log p + g are the masked draw; keep the smallest
    keep = (logp + gumbel).argsort(1)[:, :n_keep].sort(1).values
    return keep, _mask_from_keep(keep, L)


def make_mask(
    cfg: MaskConfig, motion: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Dispatch on ``cfg.mode``. motion: (N, T', V) token motion -> keep (N, K), mask (N, L)."""
    if cfg.mode == "motion-tube":
        return tube_mask(motion, cfg.ratio, cfg.tube, cfg.beta, generator)
    if cfg.mode == "tube":
        return tube_mask(motion, cfg.ratio, cfg.tube, 0.0, generator)
    if cfg.mode == "random":
        N, Tp, V = motion.shape
        return random_mask(N, Tp * V, cfg.ratio, generator, motion.device)
    if cfg.mode == "motion":
        return motion_mask(motion, cfg.ratio, cfg.tau, generator)
    raise ValueError(f"unknown masking mode '{cfg.mode}'")
