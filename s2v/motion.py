"""Motion priors: per-frame, per-joint displacement magnitude.

``motion[f, m, v] = || joints[f+1, m, v] - joints[f, m, v] ||_2`` for f < F-1 and 0 at the last
frame of a sample. Where actor m is absent (all its joints exactly zero) at frame f or f+1 the
motion is 0: an actor appearing or vanishing is not motion (it would otherwise be the largest
value of the clip and dominate motion-aware masking).
"""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def motion_prior(joints: np.ndarray) -> np.ndarray:
    """joints: (F, M, V, 3) float32 -> motion (F, M, V) float32."""
    F, M, V, _ = joints.shape
    out = np.empty((F, M, V), dtype=np.float32)
    motion_prior_into(joints, out)
    return out


@numba.njit(cache=True, nogil=True)
def motion_prior_into(joints: np.ndarray, out: np.ndarray) -> None:
    """:func:`motion_prior` written into ``out`` (F, M, V) float32, every value set."""
    F, M, V, _ = joints.shape
    for m in range(M):
        present_next = False  # actor m at frame f + 1
        for f in range(F - 1, -1, -1):
            present = False
            for v in range(V):
                if (
                    joints[f, m, v, 0] != 0.0
                    or joints[f, m, v, 1] != 0.0
                    or joints[f, m, v, 2] != 0.0
                ):
                    present = True
                    break
            if not (present and present_next):
                out[f, m, :] = 0
            else:
                for v in range(V):
                    acc = 0.0
                    for c in range(3):
                        d = np.float64(joints[f + 1, m, v, c]) - np.float64(joints[f, m, v, c])
                        acc += d * d
                    out[f, m, v] = np.sqrt(acc)
            present_next = present


def motion_prior_numpy(joints: np.ndarray) -> np.ndarray:
    """Plain numpy version of :func:`motion_prior` (the specification the kernel is tested against)."""
    j = joints.astype(np.float64)
    out = np.zeros(joints.shape[:3], dtype=np.float32)
    if len(j) < 2:
        return out
    present = (joints != 0).any(axis=(2, 3))  # (F, M)
    both = present[:-1] & present[1:]
    d = np.linalg.norm(j[1:] - j[:-1], axis=-1)  # (F-1, M, V)
    out[:-1] = np.where(both[:, :, None], d, 0.0).astype(np.float32)
    return out
