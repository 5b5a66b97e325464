"""The EMA teacher and the regression targets (docs/method.md §5, data2vec 2.0 recipe).

The teacher is a frozen copy of the student *encoder*, updated after every optimiser step
with two fused foreach ops (as dinov2); it encodes the unmasked sequence, and the average of
its instance-normalised block outputs, layer-normalised, is what the decoder regresses at the
masked tokens. ``motion_targets`` is MAMP's alternative target.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def make_teacher(encoder: nn.Module) -> nn.Module:
    """Deep copy of the student encoder: no gradients, eval mode."""
    teacher = copy.deepcopy(encoder)
    teacher.requires_grad_(False)
    return teacher.eval()


def ema_decay(step: int, total_steps: int, start: float = 0.9999, end: float = 1.0) -> float:
    """d(step) = end - (end - start) * (1 - step / total), linear over the run, clamped at end."""
    if total_steps <= 0 or step >= total_steps:
        return end
    return end - (end - start) * (1.0 - step / total_steps)


def _ema_pairs(teacher: nn.Module, student: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """Matching (teacher, student) tensors: all parameters and floating-point buffers."""
    t_params = list(teacher.parameters()) + [b for b in teacher.buffers() if b.is_floating_point()]
    s_params = list(student.parameters()) + [b for b in student.buffers() if b.is_floating_point()]
    if len(t_params) != len(s_params):
        raise ValueError("teacher and student have different structures")
    return t_params, s_params


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """p_t = d * p_t + (1 - d) * p_s for every parameter and float buffer (fp32, fused)."""
    t, s = _ema_pairs(teacher, student)
    torch._foreach_mul_(t, decay)
    torch._foreach_add_(t, s, alpha=1.0 - decay)


@torch.no_grad()
def feature_targets(layers: list[Tensor], top_k: int = 0, eps: float = 1e-5) -> Tensor:
    """Teacher block outputs [(N, L, D)] * depth -> targets (N, L, D) float32.

    Each layer is instance-normalised per sample and channel over the L tokens (no affine),
    the last ``top_k`` (0: all) are averaged, and the average is layer-normalised over D.
    """
    if top_k:
        layers = layers[-top_k:]
    # accumulate in place, one fused instance_norm kernel per layer: the peak stays at two
    # (N, L, D) fp32 tensors whatever the depth (stacking the layers first costs depth x)
    y = torch.zeros(layers[0].shape, dtype=torch.float32, device=layers[0].device)
    for h in layers:
        y += F.instance_norm(h.float().transpose(1, 2), eps=eps).transpose(1, 2)
    y /= len(layers)
    return F.layer_norm(y, y.shape[-1:])


@torch.no_grad()
def motion_targets(x: Tensor, segment: int) -> Tensor:
    """MAMP target. x: (N, T, V, C) -> (N, L, s*C): per-token frame differences x[f+1] - x[f]
    (0 after the last frame), normalised per token: (v - mean) / sqrt(var + 1e-6)."""
    N, T, V, C = x.shape
    d = torch.zeros_like(x, dtype=torch.float32)
    d[:, :-1] = (x[:, 1:] - x[:, :-1]).float()
    d = d.view(N, T // segment, segment, V, C).permute(0, 1, 3, 2, 4)  # (N, T', V, s, C)
    d = d.reshape(N, (T // segment) * V, segment * C)
    # unbiased variance, as MAMP / the reference (torch's default)
    var, mean = torch.var_mean(d, dim=-1, keepdim=True)
    return (d - mean) / torch.sqrt(var + 1e-6)


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the masked tokens and all channels.

    pred, target: (N, L, D); mask: (N, L) bool, True = masked (predicted).
    """
    err = (pred.float() - target).pow(2).mean(-1)  # (N, L)
    w = mask.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)
