"""Where the log root, its database and its run outputs live.

Everything is resolved by functions at call time, never at import time. The log root is, in order:

1. the ``--root`` option (stored by the CLI through :func:`set_root_override`);
2. the ``RECAP_ROOT`` environment variable;
3. the nearest folder, walking up from the working directory, that holds ``recap.toml`` or
   ``recap.db`` next to a ``mkdocs.yml``.
"""

from __future__ import annotations

import os
from pathlib import Path

from recap.errors import NoLogRoot

_override: Path | None = None

MARKERS = ("recap.toml", "recap.db")


def set_root_override(path: Path | None) -> None:
    global _override
    _override = Path(path).expanduser().resolve() if path else None


def is_log_root(path: Path) -> bool:
    return any((path / m).exists() for m in MARKERS) and (path / "mkdocs.yml").exists()


def find_root(start: Path | None = None) -> Path | None:
    """The log root by option, environment or discovery, or None."""
    if _override is not None:
        return _override
    env = os.environ.get("RECAP_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_log_root(folder):
            return folder
    return None


def log_root() -> Path:
    """The log root, or NoLogRoot with a one-line hint."""
    root = find_root()
    if root is None:
        raise NoLogRoot(
            "not inside a recap log (no recap.toml found walking up from "
            f"{Path.cwd()}); run 'recap init DIR', or pass --root / set RECAP_ROOT"
        )
    if not root.is_dir():
        raise NoLogRoot(f"log root {root} does not exist; run 'recap init {root}'")
    return root


def db_path(root: Path | None = None) -> Path:
    return (root or log_root()) / "recap.db"


def docs_dir(root: Path | None = None) -> Path:
    return (root or log_root()) / "docs"


def posts_dir(root: Path | None = None) -> Path:
    return docs_dir(root) / "blog" / "posts"


def experiments_dir(root: Path | None = None) -> Path:
    return (root or log_root()) / "experiments"


def runs_dir(root: Path | None = None) -> Path:
    return (root or log_root()) / "runs"


def media_dir(root: Path | None = None) -> Path:
    """Images and other files that belong to entries (imported post images land here)."""
    return (root or log_root()) / "media"


def config_path(root: Path | None = None) -> Path:
    return (root or log_root()) / "recap.toml"


def inside(root: Path, candidate: Path) -> Path:
    """``candidate`` resolved, or InvalidInput when it escapes ``root`` (no writes outside)."""
    from recap.errors import InvalidInput

    resolved = candidate.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise InvalidInput(f"refusing to write {candidate}: outside {root}")
    return resolved
