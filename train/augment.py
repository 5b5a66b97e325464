"""Spatial augmentation: one random 3-D rotation per clip (docs/method.md §2), batched in torch.

Applied to the batch on the training device by default (``random_rotation``); the data loader can
also rotate single samples on the CPU (``SkeletonDataset(rotate=True)``) through the same
:func:`rotate`. A rotation is linear, so absent (all-zero) joints stay exactly zero.
"""

from __future__ import annotations

import torch

MAX_ANGLE = 0.3  # radians, the paper's theta


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices R = Rz @ Ry @ Rx from angles (B, 3) about x, y, z -> (B, 3, 3).

    The reference (MAMP ``tools._rot``) writes each axis matrix with the sine's sign flipped, i.e.
    a rotation by the opposite angle; with angles drawn symmetrically about 0 the distribution of
    R is the same.
    """
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def axis(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rx = axis([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = axis([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rz = axis([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ ry @ rx


def rotate(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate every joint of clip b by ``rot[b]``: x (B, ..., C=3), rot (B, 3, 3) -> like x.

    Joints are row vectors, so p' = R p is ``p @ R.T``.
    """
    b = x.shape[0]
    flat = x.reshape(b, -1, 3)
    return torch.bmm(flat, rot.to(flat.dtype).transpose(1, 2)).reshape(x.shape)


def random_rotation(
    x: torch.Tensor, generator: torch.Generator | None = None, max_angle: float = MAX_ANGLE
) -> torch.Tensor:
    """One random rotation per clip, angles ~ U(-max_angle, max_angle) about x, y, z.

    x: (B, M, T, V, C=3) on any device -> rotated copy, same shape, dtype and device. The angles
    are drawn on ``generator``'s device (CPU when None, from torch's global generator) and moved
    to x's device, so a CPU generator gives the same rotations on every device.
    """
    dev = generator.device if generator is not None else torch.device("cpu")
    angles = torch.rand(x.shape[0], 3, generator=generator, device=dev, dtype=torch.float32)
    angles = (2 * angles - 1) * max_angle
    return rotate(x, rotation_matrices(angles.to(x.device)))
