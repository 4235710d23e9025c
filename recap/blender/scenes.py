"""The two scenes, built once per process and re-randomised for every image.

Reusing one scene is what makes small renders fast: building meshes, materials and the
armature happens once; per image only transforms, material values, lights and the camera change.
Every randomised property is set on every image, so an image depends only on its own generator
(a shard renders the same bytes as the unsharded set).
"""

from __future__ import annotations

import math

import numpy as np

from recap.blender import humanoid as hm
from recap.blender import project as pj
from recap.coco import KEYPOINTS as COCO_KEYPOINTS

SHAPE_CLASSES = ("cube", "sphere", "cylinder", "cone", "torus", "monkey")


# -- shared pieces ------------------------------------------------------------------------------
def _mesh_from_bmesh(name: str, fill, smooth: bool = False):
    import bmesh
    import bpy

    bm = bmesh.new()
    fill(bm)
    me = bpy.data.meshes.new(name)
    bm.to_mesh(me)
    bm.free()
    if smooth:
        me.shade_smooth()
    return me


def _torus(bm, major: float = 0.6, minor: float = 0.22, seg: int = 32, ring: int = 12) -> None:
    verts = []
    for i in range(seg):
        a = 2 * math.pi * i / seg
        for j in range(ring):
            b = 2 * math.pi * j / ring
            r = major + minor * math.cos(b)
            verts.append(bm.verts.new((r * math.cos(a), r * math.sin(a), minor * math.sin(b))))
    for i in range(seg):
        for j in range(ring):
            a, b = i * ring + j, i * ring + (j + 1) % ring
            c, d = ((i + 1) % seg) * ring + (j + 1) % ring, ((i + 1) % seg) * ring + j
            bm.faces.new((verts[a], verts[b], verts[c], verts[d]))


def _shape_mesh(kind: str):
    import bmesh
    from mathutils import Matrix

    ops = bmesh.ops
    fills = {
        "cube": lambda bm: ops.create_cube(bm, size=1.2),
        "sphere": lambda bm: ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=0.75),
        "cylinder": lambda bm: ops.create_cone(
            bm, cap_ends=True, segments=32, radius1=0.55, radius2=0.55, depth=1.3
        ),
        "cone": lambda bm: ops.create_cone(
            bm, cap_ends=True, segments=32, radius1=0.75, radius2=0.0, depth=1.4
        ),
        "torus": _torus,
        "monkey": lambda bm: ops.create_monkey(bm, matrix=Matrix.Scale(0.8, 4)),
    }
    return _mesh_from_bmesh(kind, fills[kind], smooth=kind in ("sphere", "torus", "monkey"))


def _principled(name: str):
    import bpy

    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5 makes materials without nodes
        mat.use_nodes = True
    return mat, mat.node_tree.nodes["Principled BSDF"]


def _set_look(bsdf, rng: np.random.Generator, kinds=("diffuse", "metal", "glass")) -> str:
    """Random colour and one of: diffuse, metal, glass. Every input is set every time."""
    import colorsys

    kind = kinds[int(rng.integers(len(kinds)))]
    h, s, v = rng.uniform(0, 1), rng.uniform(0.3, 1.0), rng.uniform(0.35, 1.0)
    bsdf.inputs["Base Color"].default_value = (*colorsys.hsv_to_rgb(h, s, v), 1.0)
    bsdf.inputs["Metallic"].default_value = 1.0 if kind == "metal" else 0.0
    bsdf.inputs["Roughness"].default_value = float(
        rng.uniform(0.05, 0.35) if kind != "diffuse" else rng.uniform(0.35, 0.9)
    )
    bsdf.inputs["Transmission Weight"].default_value = 1.0 if kind == "glass" else 0.0
    bsdf.inputs["IOR"].default_value = 1.45
    return kind


class _Stage:
    """Camera, world colour, a ground plane with its own colour, a sun and a point light."""

    def __init__(self, scene):
        import bpy

        self.scene = scene
        cam_data = bpy.data.cameras.new("camera")
        cam_data.lens, cam_data.sensor_width = 50.0, 36.0
        self.cam = bpy.data.objects.new("camera", cam_data)
        scene.collection.objects.link(self.cam)
        scene.camera = self.cam
        world = bpy.data.worlds.new("world")
        if world.node_tree is None:
            world.use_nodes = True
        scene.world = world
        self.background = world.node_tree.nodes["Background"]
        plane = _mesh_from_bmesh("ground", lambda bm: _plane(bm, 40.0))
        self.ground = bpy.data.objects.new("ground", plane)
        mat, self.ground_bsdf = _principled("ground")
        plane.materials.append(mat)
        scene.collection.objects.link(self.ground)
        self.sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
        self.lamp = bpy.data.objects.new("lamp", bpy.data.lights.new("lamp", "POINT"))
        for ob in (self.sun, self.lamp):
            scene.collection.objects.link(ob)

    def randomize(self, rng: np.random.Generator, target, distance: float, elev=(8.0, 55.0)):
        import colorsys

        from mathutils import Vector

        bg = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0, 0.8), rng.uniform(0.1, 0.9))
        self.background.inputs["Color"].default_value = (*bg, 1.0)
        self.background.inputs["Strength"].default_value = float(rng.uniform(0.3, 1.0))
        _set_look(self.ground_bsdf, rng, kinds=("diffuse",))
        self.ground.location.z = 0.0
        az = rng.uniform(0, 2 * math.pi)
        el = math.radians(rng.uniform(*elev))
        target = Vector(target)
        self.cam.location = target + distance * Vector(
            (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
        )
        self.cam.rotation_mode = "QUATERNION"
        self.cam.rotation_quaternion = (target - self.cam.location).to_track_quat("-Z", "Y")
        self.sun.rotation_mode = "XYZ"
        self.sun.rotation_euler = (
            math.radians(rng.uniform(0, 60)),
            0.0,
            rng.uniform(0, 2 * math.pi),
        )
        self.sun.data.energy = float(rng.uniform(1.5, 4.5))
        a = rng.uniform(0, 2 * math.pi)
        self.lamp.location = (4 * math.cos(a), 4 * math.sin(a), rng.uniform(2, 5))
        self.lamp.data.energy = float(rng.uniform(200, 900))


def _plane(bm, half: float) -> None:
    v = [bm.verts.new((x * half, y * half, 0.0)) for x, y in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    bm.faces.new(v)


# -- shapes --------------------------------------------------------------------------------------
class ShapesScene:
    """One object per image, from ``classes``, with a random look, pose, camera and light."""

    kind = "shapes"

    def __init__(self, scene, classes: tuple[str, ...] = SHAPE_CLASSES):
        import bpy

        self.scene, self.classes = scene, tuple(classes)
        self.stage = _Stage(scene)
        self.material, self.bsdf = _principled("shape")
        self.objects = []
        for name in self.classes:
            me = _shape_mesh(name)
            me.materials.append(self.material)
            ob = bpy.data.objects.new(name, me)
            scene.collection.objects.link(ob)
            self.objects.append(ob)

    def randomize(self, rng: np.random.Generator) -> dict:
        k = int(rng.integers(len(self.classes)))
        for i, ob in enumerate(self.objects):
            ob.hide_render = ob.hide_viewport = i != k
        ob = self.objects[k]
        ob.rotation_mode = "XYZ"
        ob.rotation_euler = tuple(float(a) for a in rng.uniform(0, 2 * math.pi, size=3))
        s = float(rng.uniform(0.75, 1.15))
        ob.scale = (s, s, s)
        ob.location = (float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.4, 0.4)), 0.95 * s)
        look = _set_look(self.bsdf, rng)
        self.stage.randomize(rng, ob.location, distance=float(rng.uniform(4.2, 6.0)))
        return {"class": k, "look": look}

    def annotate(self, state: dict) -> list[dict]:
        import bpy

        dg = bpy.context.evaluated_depsgraph_get()
        box = pj.mesh_bbox(self.scene, self.stage.cam, dg, [self.objects[state["class"]]])
        box = box or [0.0, 0.0, 0.0, 0.0]
        return [
            {
                "category_id": state["class"] + 1,
                "label": self.classes[state["class"]],
                "look": state["look"],
                "bbox": box,
                "area": round(box[2] * box[3], 2),
            }
        ]


# -- pose ----------------------------------------------------------------------------------------
class Figure:
    """An armature whose bones carry the body parts; posed by setting each bone's matrix."""

    def __init__(self, scene, name: str, meshes: dict):
        import bpy

        self.scene = scene
        data = bpy.data.armatures.new(name)
        self.arm = bpy.data.objects.new(name, data)
        scene.collection.objects.link(self.arm)
        bpy.context.view_layer.objects.active = self.arm
        bpy.ops.object.mode_set(mode="EDIT")
        # Unit rest bones along +y: a bone's pose matrix is then its world placement, with the
        # per-figure length and thickness as its scale (no chain, so no inherited shear).
        for bone, *_ in hm.BONES:
            eb = data.edit_bones.new(bone)
            eb.head, eb.tail, eb.roll = (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 0.0
        bpy.ops.object.mode_set(mode="OBJECT")
        self.materials = {}
        for part in ("skin", "top", "bottom"):
            mat, bsdf = _principled(f"{name}-{part}")
            self.materials[part] = (mat, bsdf)
        self.parts = []
        for bone, _head, _tail, part in hm.BONES:
            if part is None:
                continue
            # Parts share two meshes (linked duplicates, the cheap form); the colour is the
            # object's own material slot.
            me = meshes["sphere" if part == "head" else "cylinder"]
            region = (
                "skin"
                if part == "head" or bone.startswith("forearm") or bone == "neck"
                else ("bottom" if bone.startswith(("thigh", "shin", "pelvis")) else "top")
            )
            ob = bpy.data.objects.new(f"{name}-{bone}", me)
            ob.parent, ob.parent_type, ob.parent_bone = self.arm, "BONE", bone
            scene.collection.objects.link(ob)
            ob.material_slots[0].link = "OBJECT"
            ob.material_slots[0].material = self.materials[region][0]
            self.parts.append(ob)
        for pb in self.arm.pose.bones:
            pb.rotation_mode = "QUATERNION"

    def pose(self, world: dict[str, np.ndarray], body: hm.Body, side: np.ndarray) -> None:
        from mathutils import Matrix

        up = np.array([0.0, 0.0, 1.0])
        for bone, head, tail, part in hm.BONES:
            a = world[head]
            if tail is None:  # the head sphere: a bone of length r, scaled uniformly
                y, length, sx, sz = up, body.head_r, body.head_r, body.head_r
                a = a + up * body.head_r
            else:
                d = world[tail] - a
                length = float(np.linalg.norm(d))
                y = d / max(length, 1e-9)
                sx = sz = body.limb_r
                if part == "torso":
                    sx, sz = body.torso_w, body.torso_d
            ref = side if part == "torso" else (up if abs(y @ up) < 0.9 else side)
            x = ref - (ref @ y) * y
            x /= np.linalg.norm(x)
            z = np.cross(x, y)
            m = np.eye(4)
            m[:3, 0], m[:3, 1], m[:3, 2] = x * sx, y * length, z * sz
            m[:3, 3] = a if tail is not None else world[head]
            self.arm.pose.bones[bone].matrix_basis = Matrix(m.tolist())


def _part_meshes() -> dict:
    import bmesh

    def cylinder(bm):
        # radius 1, from y = -1 (the bone's head) to y = 0 (its tail, where bone children sit)
        from mathutils import Matrix

        m = Matrix.Translation((0, -0.5, 0)) @ Matrix.Rotation(math.radians(90), 4, "X")
        bmesh.ops.create_cone(
            bm, cap_ends=True, segments=12, radius1=1.0, radius2=1.0, depth=1.0, matrix=m
        )

    def sphere(bm):
        from mathutils import Matrix

        bmesh.ops.create_uvsphere(
            bm, u_segments=16, v_segments=8, radius=1.0, matrix=Matrix.Translation((0, -1, 0))
        )

    meshes = {
        "cylinder": _mesh_from_bmesh("part-cylinder", cylinder, smooth=True),
        "sphere": _mesh_from_bmesh("part-sphere", sphere, smooth=True),
    }
    for me in meshes.values():
        me.materials.append(None)  # one slot, filled per object
    return meshes


class PoseScene:
    """``figures`` procedural humanoids per image, standing side by side, seen from anywhere."""

    kind = "pose"

    def __init__(self, scene, figures: int = 1):
        self.scene = scene
        self.stage = _Stage(scene)
        meshes = _part_meshes()
        self.figures = [Figure(scene, f"figure{i}", meshes) for i in range(figures)]

    def randomize(self, rng: np.random.Generator) -> dict:
        n = len(self.figures)
        placed = []
        spacing = 0.9
        for i, fig in enumerate(self.figures):
            body = hm.sample_body(rng)
            pose = hm.sample_pose(rng)
            local = hm.joints(body, pose)
            yaw = rng.uniform(0, 2 * math.pi)
            c, s = math.cos(yaw), math.sin(yaw)
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            offset = np.array(
                [(i - (n - 1) / 2) * spacing + rng.uniform(-0.15, 0.15), rng.uniform(-0.3, 0.3), 0]
            )
            world = {k: rot @ v + offset for k, v in local.items()}
            fig.pose(world, body, rot @ np.array([1.0, 0.0, 0.0]))
            for region in ("skin", "top", "bottom"):
                _set_look(fig.materials[region][1], rng, kinds=("diffuse",))
            placed.append((body, world))
        height = max(b.height for b, _ in placed)
        extent = max(height, n * spacing)
        self.stage.randomize(
            rng,
            (0.0, 0.0, height * 0.5),
            distance=float(extent * rng.uniform(1.6, 2.1)),
            elev=(0.0, 35.0),
        )
        return {"placed": placed}

    def annotate(self, state: dict) -> list[dict]:
        import bpy

        bpy.context.view_layer.update()
        dg = bpy.context.evaluated_depsgraph_get()
        cam, scene = self.stage.cam, self.scene
        out = []
        for fig, (body, world) in zip(self.figures, state["placed"], strict=True):
            kps, pts = [], []
            for name in COCO_KEYPOINTS:
                x, y, depth = pj.to_pixels(scene, cam, world[name])
                v = pj.visibility(scene, dg, cam, world[name], x, y, depth, hm.slack(body, name))
                pts.append((round(x, 3), round(y, 3)))
                kps += [round(x, 3), round(y, 3), v] if v else [0, 0, 0]
            box = pj.mesh_bbox(scene, cam, dg, fig.parts) or [0.0, 0.0, 0.0, 0.0]
            out.append(
                {
                    "category_id": 1,
                    "bbox": box,
                    "area": round(box[2] * box[3], 2),
                    "keypoints": kps,
                    "num_keypoints": sum(1 for v in kps[2::3] if v > 0),
                    "points": pts,
                }
            )
        return out


def build(kind: str, scene, figures: int = 1, classes: int = len(SHAPE_CLASSES)):
    if kind == "shapes":
        return ShapesScene(scene, SHAPE_CLASSES[: max(2, min(classes, len(SHAPE_CLASSES)))])
    if kind == "pose":
        return PoseScene(scene, max(1, figures))
    from recap.errors import InvalidInput

    raise InvalidInput(f"unknown Blender scene {kind!r} (shapes, pose)")
