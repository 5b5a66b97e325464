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
    out = np.zeros((F, M, V), dtype=np.float32)
    present = np.zeros((F, M), dtype=np.bool_)
    for f in range(F):
        for m in range(M):
            for v in range(V):
                for c in range(3):
                    if joints[f, m, v, c] != 0.0:
                        present[f, m] = True
    for f in range(F - 1):
        for m in range(M):
            if not (present[f, m] and present[f + 1, m]):
                continue
            for v in range(V):
                acc = 0.0
                for c in range(3):
                    d = np.float64(joints[f + 1, m, v, c]) - np.float64(joints[f, m, v, c])
                    acc += d * d
                out[f, m, v] = np.sqrt(acc)
    return out


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
