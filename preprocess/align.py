"""Optional view alignment (data.md §4; 2s-AGCN / MS-G3D ``pre_normalization``).

From actor 1 at frame 0: rotate so that joint 0 -> joint 1 (spine) points to +z, then, measured
after that rotation, so that joint 4 -> joint 8 (left to right shoulder) points to +x. Rotations
apply to every non-empty frame of every non-empty actor; empty frames stay zero.
"""

from __future__ import annotations

import math

import numpy as np


def rotation_matrix(axis: np.ndarray, theta: float) -> np.ndarray:
    """Rotation by ``theta`` about ``axis`` (Euler-Rodrigues); identity for a tiny axis or angle."""
    axis = np.asarray(axis, dtype=np.float64)
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    axis = axis / math.sqrt(float(np.dot(axis, axis)))
    a = math.cos(theta / 2.0)
    b, c, d = -axis * math.sin(theta / 2.0)
    aa, bb, cc, dd = a * a, b * b, c * c, d * d
    bc, ad, ac, ab, bd, cd = b * c, a * d, a * c, a * b, b * d, c * d
    return np.array(
        [
            [aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac)],
            [2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab)],
            [2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc],
        ]
    )


def angle_between(v1: np.ndarray, v2: np.ndarray) -> float:
    n1, n2 = np.linalg.norm(v1), np.linalg.norm(v2)
    if n1 == 0 or n2 == 0:
        return 0.0
    return float(np.arccos(np.clip(np.dot(v1 / n1, v2 / n2), -1.0, 1.0)))


def _rotate_to(joints: np.ndarray, a: int, b: int, target: np.ndarray) -> np.ndarray:
    v = joints[0, 0, b].astype(np.float64) - joints[0, 0, a]
    rot = rotation_matrix(np.cross(v, target), angle_between(v, target))
    out = joints.astype(np.float64) @ rot.T
    keep = (joints != 0).any(axis=(2, 3))  # (F, M): frames where an actor is present
    return np.where(keep[:, :, None, None], out, 0.0)


def align_view(joints: np.ndarray) -> np.ndarray:
    """joints: float32 (F, 2, 25, 3), centred -> aligned copy, float32."""
    if not joints.any():
        return joints.copy()
    step1 = _rotate_to(joints, 0, 1, np.array([0.0, 0.0, 1.0]))
    step2 = _rotate_to(step1, 4, 8, np.array([1.0, 0.0, 0.0]))
    return step2.astype(np.float32)
