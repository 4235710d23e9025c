"""``recap.toml``: the log's settings (the allowed categories, active projects, the template)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from recap.errors import InvalidInput

DEFAULTS = {
    "title": "Research log",
    "author": "",
    "categories": ["recap", "tutorial", "experiment", "notes"],
    "projects": ["Style Transfer", "fastai to Unity", "Blender", "Pose Estimation"],
    "entry_title": "Weekly Recap",
    "template": "",  # a path relative to the root; empty means the built-in template
    # Which of the week's captures a live weekly entry shows on its own (recap.week).
    "autolink": {"bookmarks": ["cli", "feed"], "feed": "read", "runs": "succeeded"},
    # Template section -> experiment project: runs are listed under their project's section.
    "sections": {
        "Style Transfer": "style-transfer",
        "fastai to Unity": "fastai-unity",
        "Blender": "blender",
        "Pose Estimation": "pose",
    },
    # What tells weekly posts with the same title apart: "week", "date" or "none".
    "weekly_subtitle": "week",
}


def load(root: Path) -> dict:
    cfg = dict(DEFAULTS)
    path = root / "recap.toml"
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{path}: {exc}") from exc
        unknown = set(data) - set(DEFAULTS)
        if unknown:
            raise InvalidInput(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        cfg.update(data)
    for key in ("autolink", "sections"):
        if not isinstance(cfg[key], dict):
            raise InvalidInput(f"{path}: {key} must be a table ([{key}])")
    if cfg["weekly_subtitle"] not in ("week", "date", "none"):
        raise InvalidInput(f"{path}: weekly_subtitle must be week, date or none")
    return cfg
