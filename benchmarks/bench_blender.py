"""Blender: memory and time against object count, copies vs instances; images/s of both scenes.

    python benchmarks/bench_blender.py [--quick] [--counts 10,100,1000,10000] [--runs 3]
                                       [--threads 2] [--device cpu|cuda]

1. N metallic spheres (10 to 10,000), the same positions, rotations, scales and material in
   four forms: ``copies`` (every object its own mesh: the naive form), ``linked`` (objects sharing
   one mesh, Alt-D), ``collection`` (empties instancing one collection) and ``geonodes`` (one
   object whose geometry-nodes modifier instances the sphere on N points). Each form and count
   runs in a fresh process: peak RSS (ru_maxrss) over the process's baseline after ``import bpy``,
   scene build time, and seconds per frame (a Cycles render, scene sync and BVH included) at
   64 x 64 with 2 samples. Ratios are against ``copies`` at the same count; the target is
   10,000 instanced objects in at most 2x the memory of 10.
2. Images/s of the ``shapes`` and ``pose`` scenes at 128 x 128, 4 samples, no denoising, on the
   CPU threads given (``--threads``, default 2), with where the time goes (scene build, Cycles
   sync incl. BVH, sampling, PNG writing, annotation). Target: >= 4 images/s for shapes.

Every number is the median of ``--runs`` processes. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import save  # noqa: E402

FORMS = ("copies", "linked", "collection", "geonodes")


# -- the worker (runs in its own process) --------------------------------------------------------
def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """CPU seconds of this process (all threads): on a shared machine, wall time is not ours."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _geonodes_tree(src):
    import bpy

    tree = bpy.data.node_groups.new("scatter", "GeometryNodeTree")
    tree.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    tree.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    n = tree.nodes
    gin, gout = n.new("NodeGroupInput"), n.new("NodeGroupOutput")
    info = n.new("GeometryNodeObjectInfo")
    info.inputs["Object"].default_value = src
    inst = n.new("GeometryNodeInstanceOnPoints")
    rot = n.new("GeometryNodeInputNamedAttribute")
    rot.data_type, rot.inputs["Name"].default_value = "FLOAT_VECTOR", "rot"
    scale = n.new("GeometryNodeInputNamedAttribute")
    scale.data_type, scale.inputs["Name"].default_value = "FLOAT", "scale"
    link = tree.links.new
    link(gin.outputs["Geometry"], inst.inputs["Points"])
    link(info.outputs["Geometry"], inst.inputs["Instance"])
    link(rot.outputs["Attribute"], inst.inputs["Rotation"])
    link(scale.outputs["Attribute"], inst.inputs["Scale"])
    link(inst.outputs["Instances"], gout.inputs["Geometry"])
    return tree


def worker_objects(
    form: str, count: int, size: int, samples: int, frames: int, threads: int, device: str
):
    import numpy as np

    from recap.blender import render, require_bpy

    bpy = require_bpy()
    import bmesh

    scene, chosen = render.setup_scene(size, samples, device, threads=threads)
    base_mb = _rss_mb()
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    side = max(1.0, count ** (1 / 3)) * 1.2
    pos = rng.uniform(-side, side, size=(count, 3))
    rot = rng.uniform(0, 6.283, size=(count, 3))
    scl = rng.uniform(0.3, 0.6, size=count)
    me = bpy.data.meshes.new("sphere")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=1.0)
    bm.to_mesh(me)
    bm.free()
    mat = bpy.data.materials.new("metal")
    if mat.node_tree is None:
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Metallic"].default_value = 1.0
    bsdf.inputs["Roughness"].default_value = 0.2
    me.materials.append(mat)
    coll = scene.collection
    if form in ("copies", "linked"):
        for i in range(count):
            ob = bpy.data.objects.new(f"o{i}", me.copy() if form == "copies" else me)
            ob.location, ob.rotation_euler = pos[i], rot[i]
            ob.scale = (scl[i],) * 3
            coll.objects.link(ob)
    elif form == "collection":
        src = bpy.data.collections.new("src")
        src.objects.link(bpy.data.objects.new("src", me))
        scene.collection.children.link(src)
        bpy.context.view_layer.layer_collection.children["src"].exclude = True
        for i in range(count):
            em = bpy.data.objects.new(f"e{i}", None)
            em.instance_type, em.instance_collection = "COLLECTION", src
            em.location, em.rotation_euler = pos[i], rot[i]
            em.scale = (scl[i],) * 3
            coll.objects.link(em)
    else:
        src = bpy.data.objects.new("src", me)
        coll.objects.link(src)
        src.hide_render = True
        pts = bpy.data.meshes.new("points")
        pts.vertices.add(count)
        pts.vertices.foreach_set("co", pos.astype(np.float32).ravel())
        a = pts.attributes.new("rot", "FLOAT_VECTOR", "POINT")
        a.data.foreach_set("vector", rot.astype(np.float32).ravel())
        b = pts.attributes.new("scale", "FLOAT", "POINT")
        b.data.foreach_set("value", scl.astype(np.float32))
        holder = bpy.data.objects.new("scatter", pts)
        mod = holder.modifiers.new("scatter", "NODES")
        mod.node_group = _geonodes_tree(src)
        coll.objects.link(holder)
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    coll.objects.link(cam)
    scene.camera = cam
    cam.location = (side * 2.2, -side * 2.2, side * 1.6)
    from mathutils import Vector

    cam.rotation_mode = "QUATERNION"
    cam.rotation_quaternion = (Vector((0, 0, 0)) - cam.location).to_track_quat("-Z", "Y")
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    coll.objects.link(sun)
    bpy.context.view_layer.update()
    build_s = time.perf_counter() - t0
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in range(frames):
            t = time.perf_counter()
            render.render_png(scene, Path(tmp) / f"{f}.png")
            times.append(time.perf_counter() - t)
    dg = bpy.context.evaluated_depsgraph_get()
    instances = sum(1 for _ in dg.object_instances)
    return {
        "form": form,
        "count": count,
        "cycles_device": chosen,
        "instances_seen": instances,
        "build_s": build_s,
        "frame_s": statistics.median(times),
        "peak_mb": _rss_mb(),
        "added_mb": _rss_mb() - base_mb,
    }


def worker_scene(kind: str, n: int, size: int, samples: int, threads: int, device: str):
    from recap.blender import render
    from recap.blender.dataset import render_indices, resolve

    orig = render.setup_scene

    def setup(size_, samples_, device="cpu", threads_=0):
        return orig(size_, samples_, device, threads=threads)

    render.setup_scene = setup
    p = resolve({"preset": "tiny", "n_images": n, "size": size, "samples": samples}, kind)
    with tempfile.TemporaryDirectory() as tmp:
        c0, t0 = _cpu_s(), time.perf_counter()
        res = render_indices(p, 0, list(range(n)), Path(tmp), device)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    t = res["timing"]
    return {
        "scene": kind,
        "images": n,
        "cycles_device": res["device"],
        "wall_s": wall,
        "cpu_s": cpu,
        "images_per_s": n / wall,
        "images_per_s_after_build": n / (wall - t["build_s"]),
        # what `threads` idle cores would give if nothing else ran (perfect scaling assumed)
        "images_per_s_idle_estimate": n / (cpu / threads),
        **{k: v for k, v in t.items()},
    }


# -- the driver ---------------------------------------------------------------------------------
def _spawn(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _median_of(rows: list[dict]) -> dict:
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float):
            out[key] = statistics.median(r[key] for r in rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="counts 10,100,1000; 1 run; 8 images")
    ap.add_argument("--counts", default="10,100,1000,10000")
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (0: all)")
    ap.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: OptiX or CUDA Cycles"
    )
    ap.add_argument("--skip-objects", action="store_true")
    ap.add_argument("--skip-scenes", action="store_true")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "objects":
            form, count, size, samples, frames, threads, device = rest
            res = worker_objects(
                form, int(count), int(size), int(samples), int(frames), int(threads), device
            )
        else:
            scene, n, size, samples, threads, device = rest
            res = worker_scene(scene, int(n), int(size), int(samples), int(threads), device)
        print(json.dumps(res))
        return
    if args.quick:
        args.counts, args.runs, args.images = "10,100,1000", 1, 8
    counts = [int(c) for c in args.counts.split(",")]
    forms = args.forms.split(",")
    results: dict = {"objects": [], "scenes": [], "threads": args.threads}

    if not args.skip_objects:
        print(f"objects: median of {args.runs} processes; 64x64, 2 samples, 2 frames each")
        print(
            f"{'form':<11}{'count':>7}{'build s':>9}{'s/frame':>9}{'peak MB':>9}{'added MB':>10}"
            f"{'mem vs copies':>15}{'time vs copies':>16}"
        )
        naive: dict[int, dict] = {}
        for count in counts:
            for form in forms:
                rows = [
                    _spawn(
                        [
                            "objects",
                            form,
                            str(count),
                            "64",
                            "2",
                            "2",
                            str(args.threads),
                            args.device,
                        ]
                    )
                    for _ in range(args.runs)
                ]
                r = _median_of(rows)
                if form == "copies":
                    naive[count] = r
                base = naive.get(count)
                r["mem_ratio_vs_copies"] = r["added_mb"] / base["added_mb"] if base else None
                r["time_ratio_vs_copies"] = r["frame_s"] / base["frame_s"] if base else None
                results["objects"].append(r)
                mr = "-" if r["mem_ratio_vs_copies"] is None else f"{r['mem_ratio_vs_copies']:.2f}"
                tr = (
                    "-" if r["time_ratio_vs_copies"] is None else f"{r['time_ratio_vs_copies']:.2f}"
                )
                print(
                    f"{form:<11}{count:>7}{r['build_s']:>9.3f}{r['frame_s']:>9.3f}"
                    f"{r['peak_mb']:>9.0f}{r['added_mb']:>10.1f}{mr:>15}{tr:>16}",
                    flush=True,
                )
        growth = {}
        for form in forms:
            by = {r["count"]: r for r in results["objects"] if r["form"] == form}
            lo, hi = min(by), max(by)
            growth[form] = {
                "from": lo,
                "to": hi,
                "peak_mb_ratio": by[hi]["peak_mb"] / by[lo]["peak_mb"],
                "frame_s_ratio": by[hi]["frame_s"] / by[lo]["frame_s"],
            }
            print(
                f"{form}: {hi} objects use {growth[form]['peak_mb_ratio']:.2f}x the peak memory "
                f"of {lo}, {growth[form]['frame_s_ratio']:.2f}x the time per frame"
            )
        results["growth"] = growth

    if not args.skip_scenes:
        print(
            f"\nscenes: {args.images} images at 128x128, 4 samples, no denoising, "
            f"{args.threads} threads; median of {args.runs} processes"
        )
        print(
            f"{'scene':<8}{'img/s':>7}{'img/s*':>8}{'idle':>6}{'build':>7}{'sync':>7}"
            f"{'sample':>8}{'write':>7}{'annot':>7}{'rand':>7}  (*: after the one-off build; "
            "idle: images per CPU-second x threads; phases in seconds)"
        )
        for kind in ("shapes", "pose"):
            rows = [
                _spawn(
                    ["scene", kind, str(args.images), "128", "4", str(args.threads), args.device]
                )
                for _ in range(args.runs)
            ]
            r = _median_of(rows)
            results["scenes"].append(r)
            print(
                f"{kind:<8}{r['images_per_s']:>7.2f}{r['images_per_s_after_build']:>8.2f}"
                f"{r['images_per_s_idle_estimate']:>6.1f}{r['build_s']:>7.2f}{r['sync_s']:>7.2f}{r['sample_s']:>8.2f}"
                f"{r['write_s']:>7.2f}{r['annotate_s']:>7.2f}{r['randomize_s']:>7.2f}",
                flush=True,
            )
    save([results], "blender")
    print(json.dumps({"bench": "blender", **results}))


if __name__ == "__main__":
    main()
