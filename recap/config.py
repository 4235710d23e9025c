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
    return cfg
