"""The projection check: small emissive markers rendered at joints, their centroids against the
annotated key points. ``python -m recap.blender.checks [SEED]`` prints the offsets as JSON.

A posed figure of the ``pose`` scene is placed and annotated as usual; then its body parts and
the ground are hidden, the world turned black, and a marker sphere put at each chosen joint in
turn. The brightness-weighted centroid of the render (pixel centres at i + 0.5) must match the
annotation's (x, y).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

JOINTS = ("nose", "left_wrist", "right_elbow", "left_knee", "right_ankle", "left_shoulder")


def centroid(png: Path) -> tuple[float, float]:
    from PIL import Image

    with Image.open(png) as im:
        a = np.asarray(im.convert("L"), dtype=np.float64)
    a = np.where(a > 2, a, 0.0)  # the black world's noise floor
    ys, xs = np.indices(a.shape)
    total = a.sum()
    if total == 0:
        return float("nan"), float("nan")
    return float(((xs + 0.5) * a).sum() / total), float(((ys + 0.5) * a).sum() / total)


def marker_offsets(seed: int = 0, size: int = 96, samples: int = 64) -> list[dict]:
    from recap.blender import render, require_bpy, scenes
    from recap.blender.dataset import rng_for
    from recap.coco import KEYPOINTS as COCO_KEYPOINTS

    bpy = require_bpy()
    import bmesh  # importable only once bpy is loaded

    scene, _ = render.setup_scene(size, samples, "cpu")
    world = scenes.PoseScene(scene, figures=1)
    state = world.randomize(rng_for(seed, 0))
    ann = world.annotate(state)[0]
    for ob in [*world.figures[0].parts, world.stage.ground]:
        ob.hide_render = True
    world.stage.background.inputs["Strength"].default_value = 0.0
    for light in (world.stage.sun, world.stage.lamp):
        light.data.energy = 0.0
    me = bpy.data.meshes.new("marker")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=8, radius=0.02)
    bm.to_mesh(me)
    bm.free()
    mat = bpy.data.materials.new("marker")
    if mat.node_tree is None:  # Blender < 5 makes materials without nodes
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (0, 0, 0, 1)
    bsdf.inputs["Emission Color"].default_value = (1, 1, 1, 1)
    bsdf.inputs["Emission Strength"].default_value = 20.0
    me.materials.append(mat)
    marker = bpy.data.objects.new("marker", me)
    scene.collection.objects.link(marker)
    _, placed = state["placed"][0]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in JOINTS:
            marker.location = tuple(float(v) for v in placed[name])
            png = Path(tmp) / f"{name}.png"
            render.render_png(scene, png)
            cx, cy = centroid(png)
            x, y = ann["points"][COCO_KEYPOINTS.index(name)]
            out.append(
                {
                    "joint": name,
                    "annotated": [x, y],
                    "rendered": [round(cx, 3), round(cy, 3)],
                    "offset_px": round(float(np.hypot(cx - x, cy - y)), 4),
                }
            )
    return out


if __name__ == "__main__":
    print(json.dumps(marker_offsets(int(sys.argv[1]) if len(sys.argv) > 1 else 0)))
