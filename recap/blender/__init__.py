"""Blender synthetic data: seeded scenes rendered headless through ``bpy``, with COCO annotations.

- ``render``: Cycles settings (CPU, or CUDA/OptiX chosen automatically), PNGs without dates.
- ``scenes``: the ``shapes`` scene (classification) and the ``pose`` scene (procedural
  17-joint COCO humanoids: an armature with body parts parented to its bones), both built once
  and re-randomised per image.
- ``project``: key points projected to pixels, visibility by ray cast from the camera.
- ``dataset``: one dataset run (or one shard of it): images, ``coco.json``, ``manifest.csv``,
  ``dataset.json`` (the sha256 that proves a rerun byte-identical) and a contact sheet.
- ``merge``: shards joined into the set an unsharded render makes.

``bpy`` is imported only inside functions (``recap.cli`` must not load it).
"""

COCO_KEYPOINTS = (
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
# COCO's person skeleton, 1-based pairs of key points (as in person_keypoints_*.json).
COCO_SKELETON = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)


def require_bpy():
    """``bpy`` (Blender as a module), or MissingExtra naming the ``blender`` extra."""
    from recap.errors import require

    return require("bpy", "blender")
