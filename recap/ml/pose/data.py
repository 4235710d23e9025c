"""Pose data: COCO key-point files -> one person crop per instance; procedural stick figures.

Top-down, as SimpleBaseline: each person box is grown by ``padding`` about its centre, widened or
heightened to the input's aspect ratio, rounded to whole pixels (``[x0, y0, w, h]``, the crop
box) and cut out (zeros outside the image), then resized bilinearly (PIL) to the input size.
The crop box maps joints back: ``x_src = x0 + x_in * w / input_w``. Crops are made once and
stored as PNGs of the input size, so training, parity and a port all start from the same pixels.

A procedural set (``make_stick_figures``) writes the same COCO layout: stick figures with the 17
COCO joints drawn with PIL on noisy backgrounds, known exactly, for tests that must not wait for
Blender.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recap.ml.pose.skeleton import COCO_KEYPOINTS, COCO_SKELETON_1BASED, Skeleton

SPLITS = ("train", "valid", "test")


@dataclass
class PoseSet:
    """Person crops of the input size with joints in input pixels, and how to map them back."""

    skeleton: Skeleton
    input_size: tuple[int, int]  # (w, h)
    files: list[str] = field(default_factory=list)
    split: np.ndarray = None  # (N,) str
    joints: np.ndarray = None  # (N, K, 3) x, y (input pixels), v
    boxes: np.ndarray = None  # (N, 4) person box in input pixels
    crop_boxes: np.ndarray = None  # (N, 4) crop box in source pixels
    sources: list[str] = field(default_factory=list)

    def subset(self, split: str) -> PoseSet:
        m = self.split == split
        return PoseSet(
            self.skeleton,
            self.input_size,
            [f for f, keep in zip(self.files, m, strict=True) if keep],
            self.split[m],
            self.joints[m],
            self.boxes[m],
            self.crop_boxes[m],
            [f for f, keep in zip(self.sources, m, strict=True) if keep],
        )

    def __len__(self) -> int:
        return len(self.files)


def crop_box(bbox, input_wh, padding: float = 1.25) -> list[int]:
    """The whole-pixel crop ``[x0, y0, w, h]`` around a person box, at the input's aspect."""
    x, y, w, h = (float(v) for v in bbox)
    aspect = input_wh[0] / input_wh[1]
    cx, cy = x + w / 2, y + h / 2
    w, h = max(w, 1.0) * padding, max(h, 1.0) * padding
    if w / h > aspect:
        h = w / aspect
    else:
        w = h * aspect
    cw, ch = max(1, int(round(w))), max(1, int(round(h)))
    return [int(math.floor(cx - cw / 2)), int(math.floor(cy - ch / 2)), cw, ch]


def crop_image(img, box, input_wh):
    """PIL image -> the crop box cut out (zeros outside) and resized bilinearly to the input."""
    from PIL import Image

    x0, y0, cw, ch = box
    crop = img.convert("RGB").crop((x0, y0, x0 + cw, y0 + ch))
    if crop.size != tuple(input_wh):
        crop = crop.resize(tuple(input_wh), Image.BILINEAR)
    return crop


def to_input(points, box, input_wh) -> np.ndarray:
    p = np.asarray(points, np.float32).copy()
    x0, y0, cw, ch = box
    p[..., 0] = (p[..., 0] - x0) * (input_wh[0] / cw)
    p[..., 1] = (p[..., 1] - y0) * (input_wh[1] / ch)
    return p


def default_splits(n_images: int, n_test: int = 8, valid_frac: float = 0.15) -> list[str]:
    """Deterministic splits by image order: the last ``n_test`` test, before them ``valid``."""
    n_test = min(n_test, max(1, n_images // 10))
    rest = n_images - n_test
    n_valid = max(1, int(round(rest * valid_frac)))
    return ["train"] * (rest - n_valid) + ["valid"] * n_valid + ["test"] * n_test


def read_coco(
    ann_file: str | Path | dict,
    out_dir: str | Path,
    input_wh,
    padding: float = 1.25,
    image_root: str | Path | None = None,
    min_keypoints: int = 1,
    n_test: int = 8,
    splits: dict | None = None,
) -> PoseSet:
    """A COCO key-point file (or its dict) -> person crops written under ``out_dir``.

    Images are relative to ``image_root`` (default: the annotation file's folder, then its
    ``images/``). Splits: ``splits`` (file name -> split, e.g. from a manifest), else an image's
    ``split`` field, else :func:`default_splits` by image order.
    """
    from PIL import Image

    from recap.errors import InvalidInput

    if isinstance(ann_file, dict):
        coco, ann_file = ann_file, Path(image_root or ".") / "coco.json"
    else:
        ann_file = Path(ann_file)
        coco = json.loads(ann_file.read_text(encoding="utf-8"))
    cats = [c for c in coco.get("categories", []) if c.get("keypoints")]
    if not cats:
        raise InvalidInput(f"{ann_file}: no category with 'keypoints'")
    skeleton = Skeleton.from_coco_category(cats[0])
    cat_id = cats[0]["id"]
    k = skeleton.k
    root = Path(image_root) if image_root else ann_file.parent
    images = sorted(coco["images"], key=lambda im: im["id"])
    order = default_splits(len(images), n_test)
    split_of = {
        im["id"]: (splits or {}).get(im["file_name"], im.get("split", s))
        for im, s in zip(images, order, strict=True)
    }
    by_id = {im["id"]: im for im in images}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    input_wh = (int(input_wh[0]), int(input_wh[1]))
    files, split, joints, boxes, crops, sources = [], [], [], [], [], []
    anns = sorted(
        (a for a in coco["annotations"] if a.get("category_id", cat_id) == cat_id),
        key=lambda a: (a["image_id"], a["id"]),
    )
    jobs: dict[Path, list] = {}  # source image -> [(crop box, crop file)], in order
    for a in anns:
        kp = np.asarray(a["keypoints"], np.float32).reshape(k, 3)
        if (kp[:, 2] > 0).sum() < min_keypoints or a.get("iscrowd", 0):
            continue
        im = by_id[a["image_id"]]
        src = root / im["file_name"]
        if not src.exists() and (root / "images" / im["file_name"]).exists():
            src = root / "images" / im["file_name"]
        box = crop_box(a["bbox"], input_wh, padding)
        f = out_dir / f"{a['image_id']:06d}-{a['id']:06d}.png"
        jobs.setdefault(src, []).append((box, f))
        j = np.zeros((k, 3), np.float32)
        j[:, :2] = to_input(kp[:, :2], box, input_wh)
        inside = (j[:, 0] >= 0) & (j[:, 0] < input_wh[0]) & (j[:, 1] >= 0) & (j[:, 1] < input_wh[1])
        j[:, 2] = np.where(inside, kp[:, 2], 0)
        j[j[:, 2] <= 0, :2] = 0
        bx, by, bw, bh = (float(v) for v in a["bbox"])
        tl = to_input(np.array([[bx, by], [bx + bw, by + bh]]), box, input_wh)
        files.append(str(f))
        split.append(split_of[a["image_id"]])
        joints.append(j)
        boxes.append([tl[0, 0], tl[0, 1], tl[1, 0] - tl[0, 0], tl[1, 1] - tl[0, 1]])
        crops.append(box)
        sources.append(str(src))

    def cut(item) -> None:
        src, todo = item
        with Image.open(src) as img:
            rgb = img.convert("RGB")
        for box, f in todo:
            crop_image(rgb, box, input_wh).save(f, compress_level=1)

    # PIL decodes, resizes and encodes without the GIL: threads use every core
    _parallel(cut, list(jobs.items()))
    if not files:
        raise InvalidInput(f"{ann_file}: no person with labelled key points")
    return PoseSet(
        skeleton,
        input_wh,
        files,
        np.asarray(split),
        np.stack(joints),
        np.asarray(boxes, np.float32),
        np.asarray(crops, np.float32),
        sources,
    )


def coco_from_manifest(manifest, root: Path) -> dict:
    """A ``file, split, points`` manifest (COCO's 17 joints, all taken as visible) as a COCO
    dict; each person's box is the joints' extent grown by a tenth of its size."""
    from PIL import Image

    images, anns = [], []
    for i, row in enumerate(manifest.itertuples(index=False), 1):
        pts = np.asarray([float(v) for v in row.points.split()], np.float64).reshape(-1, 2)
        with Image.open(Path(root) / row.file) as img:
            w, h = img.size
        lo, hi = pts.min(0), pts.max(0)
        pad = 0.1 * (hi - lo).max()
        lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, [w, h])
        kp = np.concatenate([pts, np.full((len(pts), 1), 2.0)], axis=1)
        images.append({"id": i, "file_name": row.file, "width": w, "height": h})
        anns.append(
            {
                "id": i,
                "image_id": i,
                "category_id": 1,
                "bbox": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])],
                "iscrowd": 0,
                "keypoints": kp.reshape(-1).tolist(),
                "num_keypoints": len(pts),
            }
        )
    cat = {"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS)}
    cat["skeleton"] = [list(e) for e in COCO_SKELETON_1BASED]
    return {"images": images, "annotations": anns, "categories": [cat]}


# -- procedural stick figures ------------------------------------------------------------------
LEFT, RIGHT, MIDDLE = (255, 150, 40), (60, 170, 255), (235, 235, 235)


def _rot(v, a):
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """17 COCO joints (x, y) of a figure facing the camera (its left on the image's right), in
    torso lengths, y down."""
    lean = rng.normal(0, 0.3)
    up = _rot(np.array([0.0, -1.0]), lean)
    side = _rot(np.array([1.0, 0.0]), lean)
    hip_c = np.zeros(2)
    neck = hip_c + up
    arm, leg = rng.uniform(0.75, 1.25, 2)  # limb lengths vary per figure
    p = {}
    p["left_shoulder"], p["right_shoulder"] = neck + 0.25 * side, neck - 0.25 * side
    p["left_hip"], p["right_hip"] = hip_c + 0.17 * side, hip_c - 0.17 * side
    tilt = rng.normal(0, 0.25)
    nose = neck + 0.35 * _rot(up, tilt)
    p["nose"] = nose
    head_up, head_side = _rot(up, tilt), _rot(side, tilt)
    p["left_eye"] = nose + 0.07 * head_side + 0.06 * head_up
    p["right_eye"] = nose - 0.07 * head_side + 0.06 * head_up
    p["left_ear"] = nose + 0.14 * head_side + 0.02 * head_up
    p["right_ear"] = nose - 0.14 * head_side + 0.02 * head_up
    down = -up
    for name, sgn in (("left", 1.0), ("right", -1.0)):
        a1 = rng.uniform(-0.6, 3.0) * sgn
        a2 = a1 + rng.uniform(-0.5, 2.5) * sgn
        elbow = p[f"{name}_shoulder"] + 0.45 * arm * _rot(down, -a1)
        p[f"{name}_elbow"] = elbow
        p[f"{name}_wrist"] = elbow + 0.4 * arm * _rot(down, -a2)
        l1 = rng.uniform(-0.5, 1.4) * sgn
        l2 = l1 - rng.uniform(0.0, 2.0) * sgn
        knee = p[f"{name}_hip"] + 0.5 * leg * _rot(down, -l1)
        p[f"{name}_knee"] = knee
        p[f"{name}_ankle"] = knee + 0.5 * leg * _rot(down, -l2)
    return np.stack([p[n] for n in COCO_KEYPOINTS]).astype(np.float64)


def draw_figure(img, joints: np.ndarray, scale: float) -> None:
    """Limbs as lines (left side orange, right blue, middle white) and the head as a disc."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(img)
    width = max(2, int(round(scale * 0.09)))
    for a, b in COCO_SKELETON_1BASED:
        na, nb = COCO_KEYPOINTS[a - 1], COCO_KEYPOINTS[b - 1]
        if na.startswith("left") and nb.startswith("left"):
            color = LEFT
        elif na.startswith("right") and nb.startswith("right"):
            color = RIGHT
        else:
            color = MIDDLE
        draw.line([tuple(joints[a - 1]), tuple(joints[b - 1])], fill=color, width=width)
    r = scale * 0.16
    x, y = joints[0]
    draw.ellipse([x - r, y - r, x + r, y + r], outline=(250, 210, 170), width=max(1, width - 1))
    for j, (x, y) in enumerate(joints):
        name = COCO_KEYPOINTS[j]
        color = LEFT if name.startswith("left") else RIGHT if name.startswith("right") else MIDDLE
        draw.ellipse([x - width, y - width, x + width, y + width], fill=color)


def make_stick_figures(
    out: str | Path,
    n: int,
    canvas=(96, 96),
    seed: int = 0,
    fixed: bool = False,
) -> Path:
    """``n`` images with one stick figure each, and their COCO key-point file; returns its path.

    ``fixed=True`` draws the same pose at the same place in every image (only the background
    varies): a set on which no model can beat the mean pose, so the sanity flag must go up.
    """
    from PIL import Image

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cw, ch = canvas
    first = None
    images, anns = [], []
    for i in range(n):
        if fixed and first is not None:
            pts, scale = first
        else:
            pose = random_pose(rng)
            lo, hi = pose.min(0) - 0.2, pose.max(0) + 0.2
            span = hi - lo
            scale = rng.uniform(0.6, 0.9) * min(cw / span[0], ch / span[1])
            room = np.array([cw, ch]) - span * scale
            offset = rng.uniform(0, 1, 2) * room
            pts = (pose - lo) * scale + offset
            first = first or (pts, scale)
        base = rng.integers(0, 80, size=3)
        noise = rng.integers(-25, 26, size=(ch, cw, 3))
        img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
        draw_figure(img, pts, scale)
        name = f"{i:05d}.png"
        img.save(out / "images" / name)
        lo, hi = pts.min(0) - 0.2 * scale, pts.max(0) + 0.2 * scale
        lo, hi = np.maximum(lo, 0), np.minimum(hi, [cw, ch])
        bbox = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
        kp = np.concatenate([pts, np.full((len(pts), 1), 2.0)], axis=1)
        images.append({"id": i + 1, "file_name": f"images/{name}", "width": cw, "height": ch})
        anns.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [round(v, 3) for v in bbox],
                "area": round(bbox[2] * bbox[3], 3),
                "iscrowd": 0,
                "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
                "num_keypoints": len(pts),
            }
        )
    coco = {
        "info": {"description": "recap procedural stick figures", "seed": seed, "fixed": fixed},
        "images": images,
        "annotations": anns,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(COCO_KEYPOINTS),
                "skeleton": [list(e) for e in COCO_SKELETON_1BASED],
            }
        ],
    }
    path = out / "annotations.json"
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


def load_pixels(files) -> np.ndarray:
    """Crops as (N, 3, H, W) uint8 (they are stored at the input size), read in threads."""
    from PIL import Image

    files = list(files)
    if not files:
        return np.zeros((0, 3, 0, 0), np.uint8)
    with Image.open(files[0]) as first:
        w, h = first.size
    out = np.empty((len(files), 3, h, w), np.uint8)

    def read(i: int) -> None:
        with Image.open(files[i]) as img:
            a = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if a.shape != (h, w, 3):
            from recap.errors import InvalidInput

            raise InvalidInput(f"{files[i]}: {a.shape[1]}x{a.shape[0]}, expected {w}x{h}")
        out[i] = a.transpose(2, 0, 1)

    _parallel(read, range(len(files)))
    return out


def _parallel(fn, items) -> None:
    """``fn`` over ``items`` on a thread per core (in order on one core); errors propagate."""
    import os

    items = list(items)
    n = min(len(items), os.cpu_count() or 1, 32)
    if n <= 1:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:
        for _ in pool.map(fn, items):
            pass
