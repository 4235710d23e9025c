"""``recap init``: a new log root (mkdocs.yml, docs/, experiments/, recap.toml, the database)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from recap.errors import InvalidInput, RecapError
from recap.fsutil import atomic_write

RECAP_TOML = """\
# recap settings for this log. Every key is optional.
title = "{title}"
# Categories a post may use (the site refuses others).
categories = ["recap", "tutorial", "experiment", "notes"]
# One section per active project in a new weekly entry's template.
projects = ["Style Transfer", "fastai to Unity", "Blender", "Pose Estimation"]
entry_title = "Weekly Recap"
# A template of your own for new entries (a path relative to this folder); empty: the built-in one.
template = ""
"""

GITIGNORE = "recap.db\nrecap.db-wal\nrecap.db-shm\n.recap-load-*\nruns/\nsite/\n.recap-cache/\n"

INDEX_MD = "# {title}\n\nWeekly recaps, links and experiments, kept with recap.\n"
BLOG_INDEX_MD = "# Blog\n"


def init_root(folder: Path, title: str = "Research log") -> tuple[Path, list[str]]:
    """Scaffold a log root in ``folder``; existing files are kept. Returns (root, files made)."""
    from recap import db

    root = Path(folder).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise InvalidInput(f"{root} exists and is not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise RecapError(f"cannot create {root}: permission denied") from exc
    made: list[str] = []
    mkdocs = resources.files("recap").joinpath("scaffold/mkdocs.yml").read_text("utf-8")
    files = {
        "mkdocs.yml": mkdocs.replace("site_name: Research log", f"site_name: {title}"),
        "recap.toml": RECAP_TOML.format(title=title.replace('"', "'")),
        ".gitignore": GITIGNORE,
        "docs/index.md": INDEX_MD.format(title=title),
        "docs/blog/index.md": BLOG_INDEX_MD,
        "experiments/.gitkeep": "",
    }
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            try:
                atomic_write(path, text)
            except PermissionError as exc:
                raise RecapError(f"cannot write {path}: permission denied") from exc
            made.append(rel)
    (root / "docs/blog/posts").mkdir(parents=True, exist_ok=True)
    fresh = not (root / "recap.db").exists()
    db.connect(root / "recap.db").close()
    if fresh:
        made.append("recap.db")
    return root, made
