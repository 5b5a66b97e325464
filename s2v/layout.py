"""Skeleton layouts: joint names and bones of the Kinect v2 / NTU RGB+D 25-joint skeleton.

Joint order and names from the NTU RGB+D paper (Shahroudy et al., CVPR 2016), 0-based.
"""

import numpy as np

NTU25_JOINTS: tuple[str, ...] = (
    "spine_base",
    "spine_mid",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "spine_shoulder",
    "left_hand_tip",
    "left_thumb",
    "right_hand_tip",
    "right_thumb",
)

NUM_JOINTS = 25
MAX_ACTORS = 2

# Parent of every joint in the kinematic tree (root: spine_base). Hand tips and thumbs hang
# from the hand, as in the Kinect SDK's joint hierarchy.
NTU25_PARENTS: tuple[int, ...] = (
    -1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11,
)  # fmt: skip

# Bones as (child, parent) pairs, 24 of them.
NTU25_BONES: tuple[tuple[int, int], ...] = tuple(
    (j, p) for j, p in enumerate(NTU25_PARENTS) if p >= 0
)


def bone_array() -> np.ndarray:
    """Bones as an int array of shape (24, 2): (child, parent)."""
    return np.asarray(NTU25_BONES, dtype=np.int64)
