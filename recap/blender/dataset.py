"""A Blender dataset run: render a seeded set (or one shard of it), write its annotations.

Outputs, in the run folder:

- ``images/NNNNN.png``: one PNG per index, no metadata (byte-identical for the same seed);
- ``coco.json``: COCO instances (``shapes``) or person key points (``pose``);
- ``manifest.csv``: ``file, split, label`` (shapes) or ``file, split, points`` (pose, the first
  figure's 17 joints in pixels): what ``recap.ml.data.read_manifest`` reads, so the training
  families take ``data=run:<id>`` with no conversion;
- ``dataset.json``: params, per-image records, versions, timings and ``sha256`` (over every
  image, ``coco.json`` and ``manifest.csv``: the number ``recap rerun`` compares);
- ``contact.png``: a grid of images with boxes, key points and skeleton drawn.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

from recap.coco import KEYPOINTS as COCO_KEYPOINTS
from recap.coco import SKELETON as COCO_SKELETON

MAX_PER_IMAGE = 1000  # annotation ids are index * MAX_PER_IMAGE + k + 1: the same in any shard
# Params that change the images and annotations (``shard``, ``workers`` and ``device`` only
# change how they are made); shards must agree on these to be merged.
SET_PARAMS = ("scene", "n_images", "size", "samples", "figures", "classes")


def parse_shard(text: str) -> tuple[int, int]:
    """``"k/n"`` (0 <= k < n) as (k, n); empty means the whole set (0, 1)."""
    from recap.errors import InvalidInput

    text = (text or "").strip()
    if not text:
        return 0, 1
    k, sep, n = text.partition("/")
    try:
        k_, n_ = int(k), int(n)
    except ValueError:
        k_, n_ = -1, 0
    if not sep or n_ < 1 or not 0 <= k_ < n_:
        raise InvalidInput(f"shard {text!r}: expected k/n with 0 <= k < n, e.g. 3/16")
    return k_, n_


def shard_indices(n_images: int, shard: str) -> list[int]:
    """The indices one shard renders: every n-th from k (disjoint, and together all of them)."""
    k, n = parse_shard(shard)
    return list(range(k, n_images, n))


def split_of(index: int) -> str:
    """A split that depends on the index alone (so shards agree): 3 of 5 train, 1 valid, 1 test."""
    return {3: "valid", 4: "test"}.get(index % 5, "train")


def image_name(index: int) -> str:
    return f"images/{index:05d}.png"


def rng_for(seed: int, index: int) -> np.random.Generator:
    """One generator per image for all its randomness. ``[seed, index]`` (a SeedSequence
    entropy list) rather than ``seed + index``, so seed 1 is not seed 0 shifted by one image."""
    return np.random.default_rng([int(seed), int(index)])


def set_params(params: dict) -> dict:
    return {k: params[k] for k in SET_PARAMS if k in params}


# -- rendering -----------------------------------------------------------------------------------
def render_indices(
    params: dict, seed: int, indices: list[int], out_dir: Path, device: str = "cpu", progress=None
) -> dict:
    """Render ``indices`` of the set into ``out_dir``; returns {"records", "device", "timing"}."""
    from recap.blender import render, require_bpy, scenes

    require_bpy()
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scene, chosen = render.setup_scene(int(params["size"]), int(params["samples"]), device)
    world = scenes.build(
        params["scene"],
        scene,
        figures=int(params.get("figures", 1)),
        classes=int(params.get("classes", len(scenes.SHAPE_CLASSES))),
    )
    timing = {"build_s": time.perf_counter() - t0, "randomize_s": 0.0, "render_s": 0.0}
    timing.update({"annotate_s": 0.0, "sync_s": 0.0, "sample_s": 0.0, "write_s": 0.0})
    records = []
    for n_done, index in enumerate(indices, 1):
        rng = rng_for(seed, index)
        t = time.perf_counter()
        state = world.randomize(rng)
        scene.cycles.seed = int(rng.integers(2**31 - 1))
        t1 = time.perf_counter()
        name = image_name(index)
        data, stats = render.render_png(scene, out_dir / name)
        t2 = time.perf_counter()
        anns = world.annotate(state)
        t3 = time.perf_counter()
        timing["randomize_s"] += t1 - t
        timing["render_s"] += t2 - t1
        timing["annotate_s"] += t3 - t2
        timing["sync_s"] += stats.get("sync_s", 0.0)
        timing["sample_s"] += stats.get("sample_s", 0.0)
        timing["write_s"] += stats.get("write_s", 0.0)
        records.append(
            {
                "index": index,
                "file": name,
                "split": split_of(index),
                "sha256": hashlib.sha256(data).hexdigest(),
                "annotations": anns,
            }
        )
        if progress:
            progress(n_done, len(indices))
    return {"records": records, "device": chosen, "timing": timing}


# -- annotations ---------------------------------------------------------------------------------
def categories(params: dict) -> list[dict]:
    from recap.blender.scenes import SHAPE_CLASSES

    if params["scene"] == "pose":
        return [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(COCO_KEYPOINTS),
                "skeleton": [list(p) for p in COCO_SKELETON],
            }
        ]
    n = max(2, min(int(params.get("classes", len(SHAPE_CLASSES))), len(SHAPE_CLASSES)))
    return [
        {"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(SHAPE_CLASSES[:n])
    ]


def coco_json(params: dict, seed: int, records: list[dict]) -> str:
    """The COCO file of these records (in index order), with nothing time-dependent in it."""
    size = int(params["size"])
    images, anns = [], []
    for rec in sorted(records, key=lambda r: r["index"]):
        image_id = rec["index"] + 1
        images.append({"id": image_id, "file_name": rec["file"], "width": size, "height": size})
        for k, a in enumerate(rec["annotations"]):
            ann = {
                "id": rec["index"] * MAX_PER_IMAGE + k + 1,
                "image_id": image_id,
                "category_id": a["category_id"],
                "bbox": a["bbox"],
                "area": a["area"],
                "iscrowd": 0,
            }
            if "keypoints" in a:
                ann["keypoints"] = a["keypoints"]
                ann["num_keypoints"] = a["num_keypoints"]
            anns.append(ann)
    doc = {
        "info": {
            "description": f"recap blender-{params['scene']} synthetic set",
            "params": set_params(params),
            "seed": seed,
        },
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": categories(params),
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def manifest_csv(params: dict, records: list[dict]) -> str:
    """``file, split, label`` or ``file, split, points`` (what recap.ml.data reads)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    pose = params["scene"] == "pose"
    w.writerow(["file", "split", "points" if pose else "label"])
    for rec in sorted(records, key=lambda r: r["index"]):
        first = rec["annotations"][0]
        if pose:
            target = " ".join(f"{v:.4f}" for xy in first["points"] for v in xy)
        else:
            target = first["label"]
        w.writerow([rec["file"], rec["split"], target])
    return buf.getvalue()


def set_sha256(out_dir: Path, records: list[dict]) -> str:
    """sha256 over every image (name and bytes, index order), coco.json and manifest.csv."""
    h = hashlib.sha256()
    for rec in sorted(records, key=lambda r: r["index"]):
        data = (Path(out_dir) / rec["file"]).read_bytes()
        h.update(rec["file"].encode() + b"\0" + hashlib.sha256(data).digest())
    for name in ("coco.json", "manifest.csv"):
        h.update(
            name.encode() + b"\0" + hashlib.sha256((Path(out_dir) / name).read_bytes()).digest()
        )
    return h.hexdigest()


def write_set(out_dir: Path, params: dict, seed: int, records: list[dict], extra: dict) -> dict:
    """coco.json, manifest.csv, contact.png and dataset.json for these records; returns the
    dataset.json document."""
    from recap.blender.contact import contact_sheet

    out_dir = Path(out_dir)
    (out_dir / "coco.json").write_text(coco_json(params, seed, records), encoding="utf-8")
    (out_dir / "manifest.csv").write_text(manifest_csv(params, records), encoding="utf-8")
    contact_sheet(out_dir, params, records, out_dir / "contact.png")
    doc = {
        "params": set_params(params),
        "seed": seed,
        "n_rendered": len(records),
        "sha256": set_sha256(out_dir, records),
        **extra,
        "records": sorted(records, key=lambda r: r["index"]),
    }
    (out_dir / "dataset.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


# -- the experiment entry point ------------------------------------------------------------------
PRESETS = {
    "tiny": {"n_images": 8, "size": 64, "samples": 4},
    "small": {"n_images": 200, "size": 128, "samples": 8},
    "full": {"n_images": 20000, "size": 256, "samples": 32},
}


def resolve(params: dict, scene: str) -> dict:
    """Params with 0-valued numbers taken from the preset, and the scene named."""
    from recap.errors import InvalidInput

    p = dict(params)
    preset = p.get("preset", "tiny")
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r} ({', '.join(PRESETS)})")
    for key, value in PRESETS[preset].items():
        if not p.get(key):
            p[key] = value
    p["scene"] = scene
    return p


def run_dataset(ctx, scene: str) -> dict:
    """Render a dataset run (the whole set, one shard, or several worker processes)."""
    from recap.blender import require_bpy
    from recap.blender.workers import render_parallel

    bpy = require_bpy()

    p = resolve(ctx.params, scene)
    indices = shard_indices(int(p["n_images"]), p.get("shard", ""))
    out = Path(ctx.out_dir)
    t0 = time.perf_counter()
    step = max(1, len(indices) // 20)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            ctx.log_metric("rendered", done, step=done)
            ctx.note(f"rendered {done}/{total}")

    workers = int(p.get("workers", 1) or 1)
    if workers > 1:
        result = render_parallel(p, ctx.seed, indices, out, ctx.device, workers, progress)
    else:
        result = render_indices(p, ctx.seed, indices, out, ctx.device, progress)
    wall = time.perf_counter() - t0
    extra = {
        "shard": p.get("shard") or "",
        "bpy": bpy.app.version_string,
        "cycles_device": result["device"],
    }
    doc = write_set(out, p, ctx.seed, result["records"], extra)
    timing = {k: round(v, 3) for k, v in result["timing"].items()}
    (out / "timing.json").write_text(json.dumps({**timing, "wall_s": wall}, indent=1) + "\n")
    for name, kind in (("coco.json", "coco"), ("manifest.csv", "manifest")):
        ctx.save_artifact(name, kind=kind)
    ctx.save_artifact("dataset.json", kind="dataset", metadata={"sha256": doc["sha256"]})
    ctx.save_artifact("contact.png", kind="contact-sheet")
    ctx.save_artifact("timing.json", kind="timing")
    vis = [
        v for r in result["records"] for a in r["annotations"] for v in a.get("keypoints", [])[2::3]
    ]
    summary = {
        "dataset_sha256": doc["sha256"],
        "images": len(indices),
        "images_per_s": round(len(indices) / wall, 3) if wall else None,
        "bpy": bpy.app.version_string,
        "cycles_device": result["device"],
    }
    if vis:
        summary["visible_fraction"] = round(sum(v == 2 for v in vis) / len(vis), 4)
        summary["occluded_fraction"] = round(sum(v == 1 for v in vis) / len(vis), 4)
    for k, v in summary.items():
        ctx.set_summary(k, v)
    ctx.note(
        f"{len(indices)} images in {wall:.1f}s on {result['device']}; sha256 {doc['sha256'][:16]}"
    )
    return summary
