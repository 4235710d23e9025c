"""A contact sheet: a grid of a set's first images with boxes, key points and skeleton drawn."""

from __future__ import annotations

from pathlib import Path

from recap.coco import SKELETON as COCO_SKELETON

CELL = 160
COLUMNS = 4
MAX_IMAGES = 16
# Visible joints filled, occluded ones as rings; limbs coloured left / right / centre.
LEFT, RIGHT, CENTRE = (80, 170, 255), (255, 120, 60), (240, 240, 80)


def _limb_colour(a: int, b: int):
    from recap.coco import KEYPOINTS as COCO_KEYPOINTS

    names = COCO_KEYPOINTS[a - 1] + COCO_KEYPOINTS[b - 1]
    if "left" in names and "right" not in names:
        return LEFT
    if "right" in names and "left" not in names:
        return RIGHT
    return CENTRE


def contact_sheet(folder: Path, params: dict, records: list[dict], out: Path) -> Path:
    from PIL import Image, ImageDraw

    shown = sorted(records, key=lambda r: r["index"])[:MAX_IMAGES]
    cols = max(1, min(COLUMNS, len(shown)))
    rows = max(1, (len(shown) + cols - 1) // cols)
    sheet = Image.new("RGB", (cols * CELL, rows * CELL), (24, 24, 24))
    size = int(params["size"])
    s = CELL / size
    for n, rec in enumerate(shown):
        with Image.open(Path(folder) / rec["file"]) as im:
            cell = im.convert("RGB").resize((CELL, CELL), Image.NEAREST)
        d = ImageDraw.Draw(cell)
        for ann in rec["annotations"]:
            x, y, w, h = (v * s for v in ann["bbox"])
            d.rectangle([x, y, x + w, y + h], outline=(255, 255, 255))
            if "label" in ann:
                d.text((x + 2, y + 1), ann["label"], fill=(255, 255, 255))
            kps = ann.get("keypoints")
            if not kps:
                continue
            pts = [
                (kps[3 * i] * s, kps[3 * i + 1] * s, kps[3 * i + 2]) for i in range(len(kps) // 3)
            ]
            for a, b in COCO_SKELETON:
                pa, pb = pts[a - 1], pts[b - 1]
                if pa[2] and pb[2]:
                    d.line([pa[:2], pb[:2]], fill=_limb_colour(a, b), width=2)
            for px, py, v in pts:
                if v == 2:
                    d.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=(255, 255, 255))
                elif v == 1:
                    d.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], outline=(255, 60, 60))
        sheet.paste(cell, ((n % cols) * CELL, (n // cols) * CELL))
    sheet.save(out, format="PNG")
    return out
