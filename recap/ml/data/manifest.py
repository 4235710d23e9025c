"""Data tables from files: CSV/JSON manifests and image folders, and the pipeline's one entry.

A table is a pandas DataFrame with a ``file`` column, a ``split`` column (``train`` / ``valid`` /
``test``; ``test`` is held out from training and used for parity) and the task's target columns:
``label`` (single-label), ``labels`` (multi-label, space-separated), ``points`` (key points as
"x1 y1 x2 y2 ...", pixels of the image as stored), or whatever a task's ``columns`` name.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
SPLITS = ("train", "valid", "test")


# -- reading ----------------------------------------------------------------------------------
def read_manifest(path: str | Path):
    """A CSV (header: file, split and label | labels | points) or JSON manifest as a DataFrame.

    JSON is a list of objects (or ``{"items": [...]}``) with ``file``, ``split`` and ``label``,
    ``labels`` (list or text) or ``points`` (``[[x, y], ...]`` or flat). Any other field is kept
    as a column (text and numbers as they are, lists and objects as JSON text) for the task that
    reads it (pose: ``visibility``, ...); which columns a run needs is the task's ``columns``.
    Files are relative to the manifest's folder.
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
            for key, value in item.items():
                if key not in row and key not in ("labels",):
                    row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
            rows.append(row)
        df = pd.DataFrame(rows)
    else:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "file" not in df.columns:
        raise InvalidInput(f"{path}: a manifest needs a 'file' column")
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
        hint = ""
        if source != "synthetic" and path.is_dir() and getattr(task, "read_table", None) is None:
            hint = " (a folder holds DIR/<label>/*.png, or DIR/train|valid|test/<label>/*.png)"
        raise InvalidInput(f"data {source!r}: no training rows{hint}")
    return table
