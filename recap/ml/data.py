"""Data for the core: image folders, CSV/JSON manifests and procedural synthetic sets.

Everything becomes one table (a pandas DataFrame) with a ``file`` column, a ``split`` column
(``train`` / ``valid`` / ``test``; ``test`` is held out from training and used for parity) and the
target: ``label`` (single-label), ``labels`` (multi-label, space-separated) or ``points``
(key points as "x1 y1 x2 y2 ...", pixels of the image as stored). Blender renders arrive as a
manifest, so they need nothing new here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle")
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
SPLITS = ("train", "valid", "test")


# -- reading ----------------------------------------------------------------------------------
def read_manifest(path: str | Path):
    """A CSV (header: file, split and label | labels | points) or JSON manifest as a DataFrame.

    JSON is a list of objects (or ``{"items": [...]}``) with ``file``, ``split`` and ``label``,
    ``labels`` (list or text) or ``points`` (``[[x, y], ...]`` or flat). Files are relative to
    the manifest's folder.
    """
    import pandas as pd

    from recap.errors import InvalidInput

    path = Path(path)
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["items"] if isinstance(data, dict) else data
        rows = []
        for item in items:
            row = {"file": item["file"], "split": item.get("split", "train")}
            if "label" in item:
                row["label"] = str(item["label"])
            if "labels" in item:
                labels = item["labels"]
                row["labels"] = labels if isinstance(labels, str) else " ".join(map(str, labels))
            if "points" in item:
                flat = np.asarray(item["points"], dtype=np.float64).reshape(-1)
                row["points"] = " ".join(f"{v:.4f}" for v in flat)
            rows.append(row)
        df = pd.DataFrame(rows)
    else:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "file" not in df.columns or not {"label", "labels", "points"} & set(df.columns):
        raise InvalidInput(f"{path}: a manifest needs a 'file' column and label, labels or points")
    if "split" not in df.columns:
        df["split"] = "train"
    bad = set(df["split"]) - set(SPLITS)
    if bad:
        raise InvalidInput(f"{path}: unknown split {sorted(bad)[0]!r} (use {', '.join(SPLITS)})")
    df["file"] = [str((path.parent / f).resolve()) for f in df["file"]]
    return df.reset_index(drop=True)


def read_image_folder(root: str | Path):
    """``root/<split>/<label>/*.png`` (or ``root/<label>/*.png``, all train) as a DataFrame."""
    import pandas as pd

    root = Path(root)
    rows = []
    split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
    for split_dir in split_dirs or [root]:
        split = split_dir.name if split_dirs else "train"
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for f in sorted(label_dir.iterdir()):
                if f.suffix.lower() in IMAGE_EXTS:
                    rows.append({"file": str(f.resolve()), "label": label_dir.name, "split": split})
    return pd.DataFrame(rows, columns=["file", "label", "split"])


def write_manifest_csv(df, path: Path) -> Path:
    """Write a DataFrame as a CSV manifest with file paths relative to the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [c for c in ("file", "split", "label", "labels", "points") if c in df.columns]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in df[cols].itertuples(index=False):
            rel = Path(row[0]).resolve().relative_to(path.parent.resolve()).as_posix()
            w.writerow([rel, *row[1:]])
    return path


def points_of(row_points: str) -> np.ndarray:
    """Key points text "x1 y1 x2 y2 ..." as an (n, 2) float32 array."""
    return np.asarray([float(v) for v in row_points.split()], dtype=np.float32).reshape(-1, 2)


# -- synthetic sets (made offline, deterministic from the seed) --------------------------------
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


# -- one entry point for the pipeline --------------------------------------------------------
def data_path(source: str, folder: Path) -> Path:
    """A data path as given, or relative to the experiment folder, the log root or here.

    (``recap exp run`` starts the run inside its output folder, so "here" alone would surprise.)
    A Blender dataset run (``data=run:<id>``) reaches here already turned into its manifest's
    path by the lab, before the run's process starts.
    """
    from recap import paths
    from recap.errors import NotFound

    path = Path(source).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        root = paths.find_root()
        candidates = [Path(folder) / path, *([root / path] if root else []), Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise NotFound(f"data {source!r} not found (tried {', '.join(map(str, candidates))})")


def load_table(params: dict, task, seed: int, workdir: Path, folder: Path):
    """The run's data table: the task's synthetic set, a manifest, or an image folder."""
    from recap.errors import InvalidInput

    source = str(params.get("data") or "synthetic")
    if source == "synthetic":
        table = task.synthetic(Path(workdir), params, seed)
    else:
        path = data_path(source, folder)
        reader = getattr(task, "read_table", None)  # a task with its own format (pose: COCO)
        if reader is not None:
            table = reader(path, params, seed, Path(workdir))
        else:
            table = read_image_folder(path) if path.is_dir() else read_manifest(path)
    missing = [c for c in ("file", "split", *task.columns) if c not in table.columns]
    if missing:
        raise InvalidInput(
            f"data {source!r}: task {task.name!r} needs column(s) {', '.join(missing)}"
        )
    if table.empty or (table["split"] == "train").sum() == 0:
        raise InvalidInput(f"data {source!r}: no training rows")
    return table
