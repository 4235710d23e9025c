"""``recap exp run``: one run of an experiment in a child process, recorded as it goes.

The parent never imports the experiment. It starts ``python -m recap.lab.child`` with the run's
log file as stdout/stderr (no pipe to fill), reads the child's ``events.jsonl`` while it runs and
writes Metric rows in batches, and settles the run's status from the child's exit: 0 succeeded,
a traceback failed, SIGINT interrupted, a signal (SIGKILL) failed with a clear error.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from recap.db import transaction
from recap.lab import spec as specmod
from recap.lab.context import EVENTS
from recap.timeutil import stamp

POLL_S = 0.2
INTERRUPT_GRACE_S = 10.0


@dataclass
class Outcome:
    run_id: str
    status: str
    cached: bool = False
    warnings: list[str] = field(default_factory=list)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def cache_key(
    folder_hash: str, params: dict, seed: int, device: str, versions: dict, python: str
) -> str:
    payload = {
        "folder": folder_hash,
        "params": params,
        "seed": seed,
        "device": device,
        "packages": versions,
        "python": python,
    }
    return hashlib.sha256(specmod.canonical(payload).encode()).hexdigest()


def _rel(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def upsert_experiment(conn: sqlite3.Connection, spec: specmod.Spec, root: Path) -> int:
    with transaction(conn):
        conn.execute(
            "INSERT INTO experiment (name, folder, project, description) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET folder = excluded.folder, "
            "project = excluded.project, description = excluded.description",
            (spec.name, _rel(root, spec.folder), spec.project, spec.description),
        )
        return conn.execute("SELECT id FROM experiment WHERE name = ?", (spec.name,)).fetchone()[0]


def find_cached(conn: sqlite3.Connection, key: str, spec: specmod.Spec, root: Path) -> str | None:
    """The newest succeeded run with this cache key whose outputs are still on disk."""
    from recap import paths

    for row in conn.execute(
        "SELECT id FROM run WHERE cache_key = ? AND status = 'succeeded' ORDER BY started DESC",
        (key,),
    ):
        out_dir = paths.runs_dir(root) / spec.name / row["id"]
        if out_dir.is_dir() and not _missing_outputs(spec, out_dir):
            return row["id"]
    return None


def _missing_outputs(spec: specmod.Spec, out_dir: Path) -> list[str]:
    return [p for p in spec.outputs if not glob.glob(str(out_dir / p), recursive=True)]


class EventReader:
    """Reads complete new lines of ``events.jsonl`` since the last read (the child may be
    mid-line)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read(self) -> tuple[list[dict], int]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return [], self.offset
        end = data.rfind(b"\n") + 1
        lines = data[:end].decode("utf-8", errors="replace").splitlines()
        try:
            # One parse for the whole batch is several times faster than one per line.
            events = json.loads("[" + ",".join(line for line in lines if line.strip()) + "]")
        except json.JSONDecodeError:
            events = []
            for line in lines:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn line from a killed child
        return events, self.offset + end


class Watcher:
    """Told when a run starts, what it last logged, and when it stops (the CLI shows it)."""

    def start(self, experiment: str, run_id: str, log_path: str) -> None: ...

    def update(self, step, last: dict[str, float]) -> None: ...

    def stop(self) -> None: ...


class Recorder:
    """What the child reported so far; metrics go to the database in batches."""

    def __init__(self, conn: sqlite3.Connection, run_id: str, out_dir: Path):
        self.conn, self.run_id, self.out_dir = conn, run_id, out_dir
        self.reader = EventReader(out_dir / EVENTS)
        self.summary: dict = {}
        self.flags: dict = {}
        self.artifacts: dict[str, dict] = {}
        self.runtime_env: dict = {}
        self.nan_metrics = 0
        self.watch: Watcher | None = None
        self.last: dict[str, float] = {}
        self.step = None

    def pump(self) -> int:
        events, offset = self.reader.read()
        if not events:
            self.reader.offset = offset
            return 0
        metrics = []
        for ev in events:
            if not isinstance(ev, dict):
                continue
            kind = ev.get("type")
            if kind == "metric":
                try:
                    value = float(ev.get("value"))
                except (TypeError, ValueError):
                    value = math.nan
                if math.isnan(value):
                    # SQLite stores NaN as NULL; count them instead of failing the batch.
                    self.nan_metrics += 1
                    continue
                metrics.append(
                    (
                        self.run_id,
                        str(ev.get("key")),
                        ev.get("step"),
                        ev.get("epoch"),
                        value,
                        _epoch_stamp(ev.get("time")),
                    )
                )
            elif kind == "summary":
                self.summary[str(ev.get("key"))] = ev.get("value")
            elif kind == "flag":
                self.flags[str(ev.get("name"))] = str(ev.get("message"))
            elif kind == "artifact":
                self.artifacts[str(ev.get("path"))] = ev
            elif kind == "environment":
                self.runtime_env = {k: v for k, v in ev.items() if k != "type"}
        if metrics:
            self.step = metrics[-1][2] if metrics[-1][2] is not None else metrics[-1][3]
            for row in metrics[-16:]:
                self.last[row[1]] = row[4]
            if self.watch:
                self.watch.update(self.step, self.last)
            with transaction(self.conn):
                self.conn.executemany(
                    "INSERT INTO metric (run_id, key, step, epoch, value, time) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    metrics,
                )
        self.reader.offset = offset  # only once the batch is committed
        return len(metrics)


_second_cache: dict[int, str] = {}


def _epoch_stamp(t) -> str:
    """Like timeutil.stamp() for a Unix time, with the seconds part cached (a hot path)."""
    try:
        t = float(t)
        sec = int(t)
        head = _second_cache.get(sec)
        if head is None:
            head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            if len(_second_cache) > 4096:
                _second_cache.clear()
            _second_cache[sec] = head
        return f"{head}.{int((t - sec) * 1000):03d}Z"
    except (TypeError, ValueError, OverflowError, OSError):
        return stamp()


def run_experiment(
    conn: sqlite3.Connection,
    name: str,
    params: list[str] | dict | None = None,
    seed: int | None = None,
    device: str = "auto",
    force: bool = False,
    parent_id: str | None = None,
    lenient: bool = False,
    watch: Watcher | None = None,
) -> Outcome:
    """Run (or reuse from the cache) one experiment. Returns the run id and how it ended.

    An interrupted run (Ctrl-C, SIGTERM) is recorded and returned with status ``interrupted``;
    the caller decides whether to stop (the CLI exits 130).
    """
    from recap import paths
    from recap.lab import env as envmod

    root = paths.log_root()
    folder = specmod.experiment_folder(name, root)
    spec = specmod.load_spec(folder)
    values, warnings = specmod.parse_params(spec, params or [], lenient=lenient)
    seed = 0 if seed is None else int(seed)
    device = envmod.resolve_device(device)
    fhash = specmod.folder_hash(folder)
    versions = envmod.package_versions()
    python = envmod.python_version()
    key = cache_key(fhash, values, seed, device, versions, python)

    if not force:
        cached = find_cached(conn, key, spec, root)
        if cached:
            return Outcome(cached, "succeeded", cached=True, warnings=warnings)
        # Identical runs started together run once: the others wait here, then reuse it.
        with cache_key_lock(root, key):
            cached = find_cached(conn, key, spec, root)
            if cached:
                return Outcome(cached, "succeeded", cached=True, warnings=warnings)
            args = (spec, folder, root, values, seed, device, fhash, key, parent_id, watch)
            return _execute(conn, *args, warnings)
    return _execute(
        conn, spec, folder, root, values, seed, device, fhash, key, parent_id, watch, warnings
    )


# -- per-cache-key lock (issue 14 item 10) -------------------------------------------------------
@contextlib.contextmanager
def cache_key_lock(root: Path, key: str):
    """An exclusive lock per cache key (an flock on runs/.locks/<key>.lock), released when the run
    ends or its process dies, so a waiting identical run never waits on a dead one."""
    import fcntl

    from recap import paths

    folder = paths.runs_dir(root) / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- end of the per-cache-key lock -----------------------------------------------------------------


def _execute(
    conn, spec, folder, root, values, seed, device, fhash, key, parent_id, watch, warnings
) -> Outcome:
    """Start the run's child process and record it (the cache has already been consulted)."""
    from recap import paths
    from recap.lab import env as envmod

    exp_id = upsert_experiment(conn, spec, root)
    run_id = new_run_id()
    out_dir = paths.runs_dir(root) / spec.name / run_id
    out_dir.mkdir(parents=True)
    log_path = out_dir / "run.log"
    git = envmod.git_state(folder)
    environment = envmod.environment()
    started, t0 = stamp(), time.monotonic()
    with transaction(conn):
        conn.execute(
            "INSERT INTO run (id, experiment_id, status, params, seed, device, started, "
            "git_commit, git_dirty, git_diff_hash, folder_hash, environment, cache_key, "
            "parent_id, pid, log_path) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            (
                run_id,
                exp_id,
                json.dumps(values),
                seed,
                device,
                started,
                git["commit"],
                None if git["dirty"] is None else int(git["dirty"]),
                git["diff_hash"],
                fhash,
                json.dumps(environment),
                key,
                parent_id,
                os.getpid(),
                _rel(root, log_path),
            ),
        )

    recorder = Recorder(conn, run_id, out_dir)
    recorder.watch = watch
    if watch:
        watch.start(spec.name, run_id, _rel(root, log_path))
    try:
        # The config travels with the run's outputs, so the folder stands on its own.
        (out_dir / "experiment.toml").write_bytes((folder / specmod.SPEC_FILE).read_bytes())
        (out_dir / "params.json").write_text(
            json.dumps({"params": values, "seed": seed, "device": device}, indent=2) + "\n",
            encoding="utf-8",
        )
        job = out_dir / ".job.json"
        job.write_text(
            json.dumps(
                {
                    "folder": str(folder.resolve()),
                    "entry_file": spec.entry_file,
                    "entry_func": spec.entry_func,
                    "params": values,
                    "seed": seed,
                    "device": device,
                    "run_id": run_id,
                    "out_dir": str(out_dir.resolve()),
                    "parent_pid": os.getpid(),
                }
            ),
            encoding="utf-8",
        )
        status, error = _supervise(job, out_dir, log_path, seed, recorder)
    except Exception as exc:  # the child could not even start: never leave the row 'running'
        _finish(
            conn,
            recorder,
            spec,
            root,
            out_dir,
            "failed",
            f"could not start the run: {exc}",
            time.monotonic() - t0,
            environment,
        )
        raise
    finally:
        if watch:
            watch.stop()
    if status == "succeeded":
        missing = _missing_outputs(spec, out_dir)
        if missing:
            status, error = "failed", f"declared outputs not produced: {', '.join(missing)}"
    _finish(conn, recorder, spec, root, out_dir, status, error, time.monotonic() - t0, environment)
    return Outcome(run_id, status, warnings=warnings)


def run_dir_of(rec: dict) -> Path:
    """A recorded run's output folder."""
    from recap import paths

    return paths.runs_dir() / rec["experiment"] / rec["id"]


def _child_env(seed: int) -> dict:
    env = dict(os.environ)
    # The child must import this very recap (a worktree on PYTHONPATH, an editable install).
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        [pkg_parent, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    )
    env["PYTHONHASHSEED"] = str(seed)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep experiment folders (and their hash) clean
    return env


def _supervise(
    job: Path, out_dir: Path, log_path: Path, seed: int, recorder: Recorder
) -> tuple[str, str | None]:
    """Start the child, pump its events while it runs, and say how it ended."""
    from recap.lab.child import ERROR_FILE, EXIT_INTERRUPTED

    interrupted = False
    # SIGTERM to the parent (a scheduler, `kill`) is an interruption too, not a silent death.
    old_term = signal.getsignal(signal.SIGTERM)
    if _main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recap.lab.child", str(job)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=out_dir,
            env=_child_env(seed),
        )
        try:
            while True:
                try:
                    proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    recorder.pump()
        except KeyboardInterrupt:
            interrupted = True
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
            try:
                _stop(proc)
            finally:
                if old_int is not None:
                    signal.signal(signal.SIGINT, old_int)
        finally:
            if _main_thread():
                signal.signal(signal.SIGTERM, old_term)
    recorder.pump()
    rc = proc.returncode
    error_file = out_dir / ERROR_FILE
    detail = (
        error_file.read_text(encoding="utf-8", errors="replace") if error_file.exists() else None
    )
    if interrupted or rc == EXIT_INTERRUPTED or rc == -signal.SIGINT:
        return "interrupted", detail or "interrupted"
    if rc == 0:
        return "succeeded", None
    if rc < 0:
        name = signal.Signals(-rc).name
        why = " (out of memory, or killed by hand)" if -rc == signal.SIGKILL else ""
        return "failed", f"the run's process was killed by {name}{why} without a traceback"
    return "failed", detail or f"the run's process exited with status {rc}; see its log"


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(*_):
    raise KeyboardInterrupt


def _stop(proc: subprocess.Popen) -> None:
    """Let the child end on the terminal's own SIGINT, forward one if not, then kill."""
    try:
        proc.wait(timeout=1.0)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _finite(value):
    """NaN and infinities as text: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _finish(
    conn,
    recorder: Recorder,
    spec: specmod.Spec,
    root: Path,
    out_dir: Path,
    status: str,
    error: str | None,
    duration: float,
    environment: dict,
) -> None:
    from recap.fsutil import sha256_file

    artifacts = dict(recorder.artifacts)
    for pattern in spec.outputs:
        for hit in sorted(glob.glob(str(out_dir / pattern), recursive=True)):
            rel = Path(hit).resolve().relative_to(out_dir.resolve()).as_posix()
            artifacts.setdefault(rel, {"path": rel, "kind": "output", "metadata": {}})
    rows = []
    for rel, ev in artifacts.items():
        full = out_dir / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            continue  # an artifact is a file of this run's folder, nothing else
        if full.is_file():
            rows.append(
                (
                    recorder.run_id,
                    rel,
                    str(ev.get("kind") or "file"),
                    sha256_file(full),
                    full.stat().st_size,
                    json.dumps(ev.get("metadata") or {}),
                )
            )
    summary = {k: _finite(v) for k, v in recorder.summary.items()}
    if recorder.nan_metrics:
        recorder.flags.setdefault(
            "nan_metrics", f"{recorder.nan_metrics} metric values were NaN (not stored)"
        )
    if recorder.flags:
        summary["flags"] = recorder.flags
    if recorder.runtime_env:
        environment = {**environment, **recorder.runtime_env}
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO artifact (run_id, path, kind, sha256, size, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "UPDATE run SET status = ?, summary = ?, ended = ?, duration = ?, error = ?, "
            "environment = ? WHERE id = ?",
            (
                status,
                json.dumps(summary, default=str),
                stamp(),
                round(duration, 3),
                error,
                json.dumps(environment, default=str),
                recorder.run_id,
            ),
        )
