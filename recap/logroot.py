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
# What tells posts with the usual title apart on the index and in RSS: "week", "date" or "none".
weekly_subtitle = "week"


# Tables go last in this file (a key written below a [table] belongs to it). Uncomment to change.
# What a weekly entry shows on its own until it is published (recap unlink takes one out):
# bookmark sources "cli" (captured by hand), "import" (browser files), "feed" (feed items);
# feed items "read" (once read), "all" or "none"; the week's runs "succeeded", "all" or "none".
# [autolink]
# bookmarks = ["cli", "feed"]
# feed = "read"
# runs = "succeeded"

# Template section -> experiment project: a post lists runs under their project's section.
# [sections]
# "Style Transfer" = "style-transfer"
# "fastai to Unity" = "fastai-unity"
# "Blender" = "blender"
# "Pose Estimation" = "pose"
"""

GITIGNORE = "recap.db\nrecap.db-wal\nrecap.db-shm\n.recap-load-*\nruns/\nsite/\n.recap-cache/\n"

INDEX_MD = "# {title}\n\nWeekly recaps, links and experiments, kept with recap.\n"
BLOG_INDEX_MD = "# Blog\n"


def shipped_experiments() -> Path | None:
    """The experiment folders recap ships: inside the installed package (a wheel carries them as
    ``recap/_experiments``, see setup.py), else the source tree's ``experiments/`` (an editable
    install or a checkout). Every folder there with an ``experiment.toml`` is one."""
    import recap

    packaged = Path(recap.__file__).resolve().parent / "_experiments"
    if packaged.is_dir():
        return packaged
    source = Path(recap.__file__).resolve().parent.parent / "experiments"
    return source if source.is_dir() else None


FAMILY_FILES = ("-family.toml", "-family.md")


def copy_experiments(root: Path) -> list[str]:
    """Copy the shipped experiment folders that ``root/experiments`` lacks. Returns those made."""
    import shutil

    src = shipped_experiments()
    if src is None:
        return []
    dest = root / "experiments"
    made = []
    for folder in sorted(src.iterdir()):
        if (folder / "experiment.toml").is_file() and not (dest / folder.name).exists():
            if folder.resolve() == (dest / folder.name).resolve():
                continue
            shutil.copytree(
                folder,
                dest / folder.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"),
            )
            made.append(f"experiments/{folder.name}/")
        elif folder.is_file() and folder.name.endswith(FAMILY_FILES):
            # a family's shared definition (experiments/<family>-family.toml), which folders extend
            if not (dest / folder.name).exists():
                shutil.copy2(folder, dest / folder.name)
                made.append(f"experiments/{folder.name}")
    return made


def init_root(
    folder: Path, title: str = "Research log", experiments: bool = False
) -> tuple[Path, list[str]]:
    """Scaffold a log root in ``folder``; existing files are kept. Returns (root, files made).

    ``experiments=True`` (what ``recap init`` does) copies the shipped experiment folders;
    running it again on a log adds the ones it lacks, such as families a newer recap ships.
    """
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
    if experiments:
        made += copy_experiments(root)
    fresh = not (root / "recap.db").exists()
    db.connect(root / "recap.db").close()
    if fresh:
        made.append("recap.db")
    return root, made
