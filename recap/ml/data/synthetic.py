"""Procedural synthetic sets, made offline and deterministic from the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recap.ml.data.manifest import write_manifest_csv

SHAPES = ("circle", "square", "triangle")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(0, 90, size=3)
    noise = rng.integers(-20, 21, size=(size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _draw_shape(draw, shape: str, cx: float, cy: float, r: float, color) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)


def _splits(n: int, n_test: int, valid_frac: float = 0.2) -> list[str]:
    n_train_valid = n - n_test
    n_valid = max(1, int(round(n_train_valid * valid_frac)))
    return ["train"] * (n_train_valid - n_valid) + ["valid"] * n_valid + ["test"] * n_test


def make_shapes(out: Path, n: int, size: int, seed: int, multi: bool = False, n_test: int = 16):
    """Shapes on noisy backgrounds: one per image (single-label) or 1-3 distinct (multi-label)."""
    import pandas as pd
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, split in enumerate(_splits(n, n_test)):
        img = Image.fromarray(_background(rng, size))
        draw = ImageDraw.Draw(img)
        if multi:
            k = int(rng.integers(1, len(SHAPES) + 1))
            chosen = sorted(rng.choice(len(SHAPES), size=k, replace=False).tolist())
            names = [SHAPES[j] for j in chosen]
            r = size / 8
        else:
            names = [SHAPES[int(rng.integers(len(SHAPES)))]]
            r = size * rng.uniform(0.15, 0.3)
        for name in names:
            cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
            color = tuple(int(c) for c in rng.integers(150, 256, size=3))
            _draw_shape(draw, name, cx, cy, r, color)
        f = img_dir / f"{i:05d}.png"
        img.save(f)
        row = {"file": str(f.resolve()), "split": split}
        if multi:
            row["labels"] = " ".join(names)
        else:
            row["label"] = names[0]
        rows.append(row)
    df = pd.DataFrame(rows)
    write_manifest_csv(df, out / "manifest.csv")
    return df


MARKER_COLORS = (
    (255, 60, 60),
    (60, 255, 60),
    (80, 140, 255),
    (255, 255, 60),
    (255, 60, 255),
    (60, 255, 255),
    (255, 160, 40),
    (255, 255, 255),
)


def make_markers(
    out: Path,
    n: int,
    size: int,
    seed: int,
    n_points: int = 1,
    moving: bool = True,
    n_test: int = 16,
):
    """Coloured round markers whose centres (the key points) cover the whole frame.

    ``moving=False`` keeps every marker on one spot in every image: the data set on which a
    model cannot beat "always predict the mean", so the key-point sanity flag must go up.
    """
    import pandas as pd
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    r = max(2.0, size / 12)
    fixed = rng.uniform(r, size - r, size=(n_points, 2))
    rows = []
    for i, split in enumerate(_splits(n, n_test)):
        img = Image.fromarray(_background(rng, size))
        draw = ImageDraw.Draw(img)
        pts = rng.uniform(r, size - r, size=(n_points, 2)) if moving else fixed
        for j, (x, y) in enumerate(pts):
            color = MARKER_COLORS[j % len(MARKER_COLORS)]
            draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        f = img_dir / f"{i:05d}.png"
        img.save(f)
        rows.append(
            {
                "file": str(f.resolve()),
                "split": split,
                "points": " ".join(f"{v:.4f}" for v in pts.reshape(-1)),
            }
        )
    df = pd.DataFrame(rows)
    write_manifest_csv(df, out / "manifest.csv")
    return df
