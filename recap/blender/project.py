"""World points to pixels, and whether the camera sees them (a ray cast through the scene).

Pixel coordinates follow COCO: x to the right, y down, the image's top-left corner at (0, 0) and
a pixel's centre at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

# COCO visibility flags
OUTSIDE, OCCLUDED, VISIBLE = 0, 1, 2


def to_pixels(scene, cam, point) -> tuple[float, float, float]:
    """(x, y, depth along the view axis) of a world point in the rendered image."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    u, v, depth = world_to_camera_view(scene, cam, Vector(point))
    w, h = scene.render.resolution_x, scene.render.resolution_y
    return u * w, (1.0 - v) * h, depth


def visibility(scene, depsgraph, cam, point, x: float, y: float, depth: float, slack: float):
    """OUTSIDE when the projection leaves the frame or is behind the camera; OCCLUDED when a
    ray from the camera hits geometry more than ``slack`` before the point (``slack``: how deep
    the joint sits inside its own body part); else VISIBLE."""
    from mathutils import Vector

    w, h = scene.render.resolution_x, scene.render.resolution_y
    if depth <= 0 or not (0 <= x < w and 0 <= y < h):
        return OUTSIDE
    origin = cam.matrix_world.translation
    to_point = Vector(point) - origin
    dist = to_point.length
    hit, location, *_ = scene.ray_cast(depsgraph, origin, to_point.normalized(), distance=dist)
    if hit and (location - origin).length < dist - slack:
        return OCCLUDED
    return VISIBLE


def bbox_of(points) -> list[float]:
    """COCO ``[x, y, w, h]`` of (x, y) pixel points, clipped to nothing (the caller clips)."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def clip_bbox(box, w: int, h: int) -> list[float]:
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(w), box[0] + box[2]), min(float(h), box[1] + box[3])
    return [round(x0, 2), round(y0, 2), round(max(0.0, x1 - x0), 2), round(max(0.0, y1 - y0), 2)]


def mesh_bbox(scene, cam, depsgraph, objects) -> list[float] | None:
    """The pixel bounding box of the evaluated meshes' vertices (None when nothing projects)."""
    pts = []
    for ob in objects:
        ev = ob.evaluated_get(depsgraph)
        mw = ev.matrix_world
        for vert in ev.data.vertices:
            x, y, d = to_pixels(scene, cam, mw @ vert.co)
            if d > 0:
                pts.append((x, y))
    if not pts:
        return None
    w, h = scene.render.resolution_x, scene.render.resolution_y
    return clip_bbox(bbox_of(pts), w, h)
