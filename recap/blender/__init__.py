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


def require_bpy():
    """``bpy`` (Blender as a module), or MissingExtra naming the ``blender`` extra."""
    from recap.errors import require

    return require("bpy", "blender")
