"""Which files under ``docs/`` recap generated, so it only ever rewrites or removes its own.

``docs/.recap-manifest.json`` maps each generated path (relative to docs/) to the sha256 of what
recap wrote. A file that exists but is not in the manifest is the user's; a generated file whose
content no longer matches the manifest was edited by hand and becomes the user's too. Files are
rewritten only when their content changes, so a build with no change in the database writes nothing.
"""

from __future__ import annotations

import contextlib
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
    """Content that is expensive to make (a plot): made only when ``key`` (its inputs) changed.

    ``prepare()`` runs in this process (it may read the database) and returns a picklable job:
    a module-level function and plain arguments, which several processes can run at once."""

    key: str
    prepare: Callable[[], tuple]


POOL_MIN = 64


def _run_job(job: tuple) -> bytes:
    fn, *args = job
    return fn(*args)


def _make_all(jobs: list[tuple]) -> list[bytes]:
    """Run the jobs, over forked worker processes when there are many (plots are CPU-bound).

    A plot takes a few milliseconds: below ``POOL_MIN`` jobs, starting workers costs more than
    it saves."""
    import os
    import sys

    workers = min(len(jobs), os.cpu_count() or 1, 4)
    if workers < 2 or len(jobs) < POOL_MIN or not sys.platform.startswith("linux"):
        return [_run_job(job) for job in jobs]
    import multiprocessing

    # fork: the workers inherit the imported plotting modules instead of importing them again.
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(_run_job, jobs, chunksize=1)


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


def _made_cache(docs: Path) -> Path:
    """Deferred content (plots) by key, kept beside docs/ so that emptying docs/, a fresh
    checkout or a moved post does not redraw what the database did not change."""
    return docs.parent / ".recap-cache" / "made"


def _cached(folder: Path, key: str) -> bytes | None:
    if not key.isalnum():
        return None
    try:
        return (folder / key[:2] / key).read_bytes()
    except OSError:
        return None


def _store(folder: Path, key: str, data: bytes) -> None:
    if key.isalnum():
        with contextlib.suppress(OSError):
            _replace(folder / key[:2] / key, data)


def _prune_cache(folder: Path, live: set[str]) -> None:
    """Forget content no page uses any more, so the cache follows the log, not its history."""
    if not folder.is_dir():
        return
    for sub in folder.iterdir():
        for path in sub.iterdir() if sub.is_dir() else []:
            if path.name not in live:
                path.unlink(missing_ok=True)


def sync(docs: Path, desired: dict[str, bytes | Deferred]) -> SyncResult:
    """Make ``docs`` hold ``desired`` (path relative to docs -> content) for recap's own files."""
    docs.mkdir(parents=True, exist_ok=True)
    old = load(docs)
    files: dict[str, str] = {}
    sources: dict[str, str] = {}
    result = SyncResult()
    # Deferred content whose inputs changed is made first, all together.
    pending = {}
    for rel, data in desired.items():
        if isinstance(data, Deferred):
            target = docs / rel
            known = old["files"].get(rel)
            if (
                known
                and old["sources"].get(rel) == data.key
                and target.is_file()
                and sha256_file(target) == known
            ):
                continue
            pending[rel] = data
    cache = _made_cache(docs)
    made = {}
    for rel, data in list(pending.items()):
        hit = _cached(cache, data.key)
        if hit is not None:
            made[rel] = hit
            del pending[rel]
    fresh = dict(zip(pending, _make_all([d.prepare() for d in pending.values()]), strict=True))
    for rel, data in fresh.items():
        _store(cache, pending[rel].key, data)
    made.update(fresh)
    _prune_cache(cache, {d.key for d in desired.values() if isinstance(d, Deferred)})
    inside = _Inside(docs)
    for rel in sorted(desired):
        data = desired[rel]
        target = inside(rel)
        known = old["files"].get(rel)
        if target.exists() and not target.is_file():
            result.skipped.append(f"docs/{rel} is not a file; left as is")
            continue
        on_disk = sha256_file(target) if target.is_file() else None
        if isinstance(data, Deferred):
            if rel not in made:
                files[rel], sources[rel] = known, data.key
                result.unchanged += 1
                continue
            sources[rel] = data.key
            data = made[rel]
        sha = hashlib.sha256(data).hexdigest()
        if on_disk is not None and on_disk not in (known, sha):
            why = "was changed by hand" if known else "was not written by recap"
            result.skipped.append(f"docs/{rel} {why}; left as is (delete it to let recap write it)")
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


class _Inside:
    """paths.inside() for many files: docs/ itself is the base, and a folder whose parent was
    checked needs one lstat (a plain name that is not a symlink stays inside), not a resolve."""

    def __init__(self, docs: Path):
        self.docs = docs
        self.ok: set[str] = {""}

    def _folder_ok(self, folder: str) -> bool:
        if folder in self.ok:
            return True
        up, _, last = folder.rpartition("/")
        if last in ("", ".", "..") or not self._folder_ok(up):
            return False
        import stat

        try:
            if stat.S_ISLNK((self.docs / folder).lstat().st_mode):
                return False
        except FileNotFoundError:
            pass  # made by a plain mkdir when the file is written
        except OSError:
            return False
        self.ok.add(folder)
        return True

    def __call__(self, rel: str) -> Path:
        parent, _, name = rel.rpartition("/")
        target = self.docs / rel
        if name not in ("", ".", "..") and self._folder_ok(parent) and not target.is_symlink():
            return target
        return paths.inside(self.docs, target)


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
