"""Which files under ``docs/`` recap generated, so it only ever rewrites or removes its own.

``docs/.recap-manifest.json`` maps each generated path (relative to docs/) to the sha256 of what
recap wrote. A file that exists but is not in the manifest is the user's; a generated file whose
content no longer matches the manifest was edited by hand and becomes the user's too. Files are
rewritten only when their content changes, so a build with no change in the database writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recap import paths
from recap.fsutil import sha256_file, write_if_changed

MANIFEST = ".recap-manifest.json"


@dataclass
class Deferred:
    """Content that is expensive to make (a plot): made only when ``key`` (its inputs) changed."""

    key: str
    make: Callable[[], bytes]


@dataclass
class SyncResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # one-line reasons, naming the file
    warnings: list[str] = field(default_factory=list)


def _replace(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: never half-written. Unlike fsutil's
    atomic_write there is no fsync: generated files are remade from the database, and fsync of
    hundreds of posts dominated a full render."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(docs: Path) -> dict:
    try:
        data = json.loads((docs / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": {}, "sources": {}}
    files = data.get("files") if isinstance(data.get("files"), dict) else {}
    sources = data.get("sources") if isinstance(data.get("sources"), dict) else {}
    return {"files": files, "sources": sources}


def sync(docs: Path, desired: dict[str, bytes | Deferred]) -> SyncResult:
    """Make ``docs`` hold ``desired`` (path relative to docs -> content) for recap's own files."""
    docs.mkdir(parents=True, exist_ok=True)
    old = load(docs)
    files: dict[str, str] = {}
    sources: dict[str, str] = {}
    result = SyncResult()
    for rel in sorted(desired):
        data = desired[rel]
        target = paths.inside(docs, docs / rel)
        known = old["files"].get(rel)
        on_disk = sha256_file(target) if target.is_file() else None
        if target.exists() and not target.is_file():
            result.skipped.append(f"docs/{rel} is not a file; left as is")
            continue
        if isinstance(data, Deferred):
            if on_disk is not None and on_disk == known and old["sources"].get(rel) == data.key:
                files[rel], sources[rel] = known, data.key
                result.unchanged += 1
                continue
            sources[rel] = data.key
            data = data.make()
        sha = hashlib.sha256(data).hexdigest()
        if on_disk is not None and on_disk not in (known, sha):
            why = "was changed by hand" if known else "was not written by recap"
            result.skipped.append(f"docs/{rel} {why}; left as is (delete it to let recap "
                                  "write it)")
            sources.pop(rel, None)
            continue
        if on_disk == sha:
            result.unchanged += 1
        else:
            _replace(target, data)
            result.written.append(rel)
        files[rel] = sha
    for rel in sorted(set(old["files"]) - set(files)):
        if rel in desired:
            continue  # skipped above: no longer ours
        try:
            target = paths.inside(docs, docs / rel)
        except Exception:
            continue
        if not target.is_file():
            continue
        if sha256_file(target) != old["files"][rel]:
            result.warnings.append(f"docs/{rel} was generated but changed by hand; not removed")
            continue
        target.unlink()
        result.removed.append(rel)
        _prune(docs, target.parent)
    manifest = {"version": 1, "files": files, "sources": sources}
    write_if_changed(docs / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return result


def _prune(docs: Path, folder: Path) -> None:
    """Remove folders emptied by removals, up to (never including) docs/."""
    docs = docs.resolve()
    folder = folder.resolve()
    while folder != docs and docs in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
