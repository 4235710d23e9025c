"""COCO's person key points: the 17 joint names, the skeleton and the OKS sigmas, written once.

Shared by the Blender data sets (``recap.blender``) and the pose task (``recap.ml.pose``); plain
tuples, no imports, so either side can read them at no cost.
"""

KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# COCO's own limb list, 1-based pairs of key points, as in person_keypoints_*.json.
SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
# Per-joint OKS falloff from the COCO key-point evaluation (cocoeval.py's kpt_oks_sigmas).
SIGMAS = tuple(
    s / 10.0
    for s in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
              1.07, 1.07, 0.87, 0.87, 0.89, 0.89)
)  # fmt: skip
