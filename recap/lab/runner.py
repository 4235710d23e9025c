"""``recap exp run``: one run of an experiment in a child process, recorded as it goes.

The parent never imports the experiment. It starts ``python -m recap.lab.child`` with the run's
log file as stdout/stderr (no pipe to fill), reads the child's ``events.jsonl`` while it runs and
writes Metric rows in batches, and settles the run's status from the child's exit: 0 succeeded,
a traceback failed, SIGINT interrupted, a signal (SIGKILL) failed with a clear error.

With ``--processes N`` / ``--gpus N`` the child is started through torchrun instead
(``recap.lab.launch``), one process per device; the run is still one record, written from rank 0's
events, and a rank that fails fails the run with that rank's error.
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
from recap.lab.records import run_folder
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
    folder_hash: str,
    params: dict,
    seed: int,
    device: str,
    versions: dict,
    python: str,
    code: str | None = None,
    dist: dict | None = None,
) -> str:
    """The key a finished run is reused by: the experiment folder, the code that runs it (recap's
    ML core, a family file, local modules the experiment imports), params, seed, device and
    the versions of the packages that compute."""
    payload = {
        "code": code,
        "folder": folder_hash,
        "params": params,
        "seed": seed,
        "device": device,
        "packages": versions,
        "python": python,
    }
    if dist:  # several processes: the world size (batch statistics, the schedule) and LR rule
        payload["dist"] = dist
    return hashlib.sha256(specmod.canonical(payload).encode()).hexdigest()


def run_cache_key(
    spec, values: dict, seed: int, device: str, root: Path, launch=None, fhash=None, code=None
) -> str:
    """The cache key ``recap exp run`` gives these params (``launch``: several processes)."""
    from recap.lab import env as envmod

    return cache_key(
        fhash or specmod.folder_hash(spec.folder),
        values,
        seed,
        device,
        envmod.package_versions(),
        envmod.python_version(),
        code or specmod.code_hash(spec, root),
        launch.key() if launch is not None else None,
    )


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

    for row in conn.execute(
        "SELECT id FROM run WHERE cache_key = ? AND status = 'succeeded' ORDER BY started DESC",
        (key,),
    ):
        out_dir = run_folder(spec.name, row["id"], root)
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

    def progress_line(self, line: str) -> None:
        """The run's latest ``epoch N/M ... ETA`` line (see ``RunContext.progress``)."""

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
        self.params: dict | None = None  # the resolved params, when the experiment reports them
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
            elif kind == "params" and isinstance(ev.get("values"), dict):
                self.params = ev["values"]
            elif kind == "environment":
                self.runtime_env.update({k: v for k, v in ev.items() if k != "type"})
            elif kind == "distributed":
                self.runtime_env["distributed"] = {k: v for k, v in ev.items() if k != "type"}
            elif kind == "progress" and self.watch:
                self.watch.progress_line(str(ev.get("line", "")))
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
    launch=None,
) -> Outcome:
    """Run (or reuse from the cache) one experiment. Returns the run id and how it ended.

    An interrupted run (Ctrl-C, SIGTERM) is recorded and returned with status ``interrupted``;
    the caller decides whether to stop (the CLI exits 130). ``launch`` (a
    :class:`recap.lab.launch.Launch`) runs it over several processes / machines; on a machine of
    node rank > 0 the run joins the one node 0 records (:func:`join_run`).
    """
    from recap import paths
    from recap.lab import env as envmod

    root = paths.log_root()
    folder = specmod.experiment_folder(name, root)
    spec = specmod.load_spec(folder)
    values, warnings = specmod.parse_params(spec, params or [], lenient=lenient)
    # data=run:<id> (recap.lab.datasets): recorded as the full id, the child gets the manifest.
    from recap.lab import datasets

    values, child_values, data_env = datasets.resolve_data(conn, values, root)
    seed = 0 if seed is None else int(seed)
    if launch is not None and launch.gpus:
        from recap.errors import InvalidInput

        if not envmod._nvidia_present():
            raise InvalidInput("--gpus: no NVIDIA GPU on this machine (--processes N for CPUs)")
        device = "cuda"
    device = envmod.resolve_device(device)
    if launch is not None and not launch.distributed:
        launch = None  # one process, no launcher asked for: the plain child
    fhash = specmod.folder_hash(folder)
    code = specmod.code_hash(spec, root)
    key = run_cache_key(spec, values, seed, device, root, launch, fhash, code)
    if launch is not None and launch.node_rank > 0:
        return join_run(conn, spec, root, key, child_values, seed, device, launch, warnings)
    # What the child needs beyond the recorded params: the code hash, the dataset run's facts.
    prepared = {"code": code, "data_env": data_env, "child_values": child_values, "launch": launch}

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
            return _execute(conn, *args, warnings, prepared)
    args = (spec, folder, root, values, seed, device, fhash, key, parent_id, watch)
    return _execute(conn, *args, warnings, prepared)


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
    conn, spec, folder, root, values, seed, device, fhash, key, parent_id, watch, warnings, prepared
) -> Outcome:
    """Start the run's child process and record it (the cache has already been consulted)."""
    from recap.lab import env as envmod

    code, data_env, child_values = (prepared[k] for k in ("code", "data_env", "child_values"))
    launch = prepared.get("launch")  # several processes (recap.lab.launch), or None

    exp_id = upsert_experiment(conn, spec, root)
    run_id = new_run_id()
    out_dir = run_folder(spec.name, run_id, root)
    out_dir.mkdir(parents=True)
    log_path = out_dir / "run.log"
    git = envmod.git_state(folder)
    # data_env: which dataset run fed it
    environment = {**envmod.environment(), "code_hash": code, **data_env}
    if launch is not None:
        environment["distributed"] = {**launch.job(device), "node_rank": launch.node_rank}
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
            json.dumps(
                {"params": values, "seed": seed, "device": device}
                | ({"world_size": launch.world_size} if launch is not None else {}),
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        job = out_dir / ".job.json"
        job.write_text(
            json.dumps(
                {
                    "folder": str(folder.resolve()),
                    "entry_file": spec.entry_file,
                    "entry_func": spec.entry_func,
                    "params": child_values,
                    "seed": seed,
                    "device": device,
                    "run_id": run_id,
                    "out_dir": str(out_dir.resolve()),
                    "parent_pid": os.getpid(),
                }
                | ({"dist": launch.job(device)} if launch is not None else {})
            ),
            encoding="utf-8",
        )
        status, error = _supervise(job, out_dir, log_path, seed, recorder, launch=launch)
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
    _raise_missing_extra(conn, run_id, out_dir)
    if status == "succeeded":
        missing = _missing_outputs(spec, out_dir)
        if missing:
            status, error = "failed", f"declared outputs not produced: {', '.join(missing)}"
    _finish(conn, recorder, spec, root, out_dir, status, error, time.monotonic() - t0, environment)
    return Outcome(run_id, status, warnings=warnings)


def _raise_missing_extra(conn, run_id: str, out_dir: Path) -> None:
    """A run that stopped on a missing extra is not a result: forget it, name the extra."""
    from recap.errors import MissingExtra
    from recap.lab.child import MISSING_EXTRA_FILE

    marker = out_dir / MISSING_EXTRA_FILE
    if marker.exists():
        from recap.lab.remove import remove_run

        info = json.loads(marker.read_text(encoding="utf-8"))
        remove_run(conn, run_id)
        raise MissingExtra(info["extra"], info["module"])


def run_dir_of(rec: dict) -> Path:
    """A recorded run's output folder."""
    return run_folder(rec["experiment"], rec["id"])


def join_run(conn, spec, root, key, child_values, seed, device, launch, warnings) -> Outcome:
    """Node rank > 0 of a multi-machine run: start this machine's ranks, record nothing.

    Node 0 records the run (its rank 0 writes every event and file); the ranks here train their
    share and write nothing, into a scratch folder removed afterwards. A run node 0 would take
    from the cache is taken here too, so no machine waits for a peer that never comes.
    """
    import shutil
    import tempfile

    cached = find_cached(conn, key, spec, root)
    if cached:
        return Outcome(cached, "succeeded", cached=True, warnings=warnings)
    scratch = Path(tempfile.mkdtemp(prefix=f"recap-join-{spec.name}-"))
    try:
        job = scratch / ".job.json"
        job.write_text(
            json.dumps(
                {
                    "folder": str(spec.folder.resolve()),
                    "entry_file": spec.entry_file,
                    "entry_func": spec.entry_func,
                    "params": child_values,
                    "seed": seed,
                    "device": device,
                    "run_id": None,
                    "out_dir": str(scratch),
                    "parent_pid": os.getpid(),
                    "dist": launch.job(device),
                }
            ),
            encoding="utf-8",
        )
        recorder = Recorder(conn, "", scratch)
        recorder.pump = lambda: 0  # nothing of this machine's is recorded
        status, error = _supervise(job, scratch, scratch / "run.log", seed, recorder, launch=launch)
        if status != "succeeded":
            log = (scratch / "run.log").read_text(encoding="utf-8", errors="replace")
            sys.stderr.write(log[-4000:])
        return Outcome("", status, warnings=[*warnings, *([error] if error else [])])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    job: Path,
    out_dir: Path,
    log_path: Path,
    seed: int,
    recorder: Recorder,
    error_file: str | None = None,
    launch=None,
) -> tuple[str, str | None]:
    """Start the child (or the launcher of its ranks), pump its events while it runs, and say
    how it ended."""
    from recap.lab.child import ERROR_FILE, EXIT_INTERRUPTED

    interrupted = False
    # SIGTERM to the parent (a scheduler, `kill`) is an interruption too, not a silent death.
    old_term = signal.getsignal(signal.SIGTERM)
    if _main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    env = _child_env(seed)
    if launch is not None:
        cmd = launch.command(job)
        env["RECAP_PARENT_PID"] = str(os.getpid())
    else:
        cmd = [sys.executable, "-m", "recap.lab.child", str(job)]
    log_start = log_path.stat().st_size if log_path.exists() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=out_dir,
            env=env,
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
    if launch is not None:
        from recap.lab import launch as launchmod

        launchmod.reap(out_dir, job)  # a rank the launcher could not stop: none left behind
        launchmod.clean_scratch(out_dir)
    recorder.pump()
    rc = proc.returncode
    error_file = out_dir / (error_file or ERROR_FILE)
    detail = (
        error_file.read_text(encoding="utf-8", errors="replace") if error_file.exists() else None
    )
    if launch is not None and rc != 0 and not interrupted:
        with open(log_path, "rb") as fh:
            fh.seek(log_start)
            text = fh.read().decode("utf-8", errors="replace")
        detail = launchmod.failure(out_dir, text) or detail
        if rc > 0 and rc != EXIT_INTERRUPTED:
            return "failed", detail or f"the launcher exited with status {rc}; see the log"
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
        n = recorder.nan_metrics
        were = "value was" if n == 1 else "values were"
        recorder.flags.setdefault("nan_metrics", f"{n} metric {were} NaN (not stored)")
    if recorder.flags:
        summary["flags"] = recorder.flags
    if recorder.runtime_env:
        dist = {**environment.get("distributed", {}), **recorder.runtime_env.get("distributed", {})}
        environment = {**environment, **recorder.runtime_env}
        if dist:  # the launch as the parent asked for it, and as rank 0 saw it
            environment["distributed"] = dist
    with transaction(conn):
        if recorder.params is not None:
            # what trained the model (presets filled in), as config.json has it; the cache key
            # keeps the params as asked for, so the same command finds this run again
            from recap.lab.datasets import keep_run_ref  # data=run:<id> stays a run reference

            params = keep_run_ref(recorder.params, environment)
            conn.execute(
                "UPDATE run SET params = ? WHERE id = ?",
                (json.dumps(params, default=str), recorder.run_id),
            )
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


@dataclass
class ExportOutcome:
    run_id: str
    target: str
    status: str
    folder: Path
    report: dict = field(default_factory=dict)
    error: str | None = None


def export_run(conn: sqlite3.Connection, ref: str, target: str) -> ExportOutcome:
    """Re-export a recorded run's model for ``target`` as a lab job (``recap exp export``).

    The export runs in a child process like ``exp run`` (``recap.ml.reexport:run_job``), so a
    crash, Ctrl-C or SIGKILL never leaves a half-written bundle or touches the run's own record:
    the bundle is built beside ``export-<target>/`` and renamed into place, and the artifact rows
    are written only once the child has succeeded, from what it reported through its context.
    """
    from recap.errors import NotFound
    from recap.lab import records
    from recap.ml.targets import get_target

    chosen = get_target(target)  # unknown: one line listing the known targets, before any work
    run_id = records.resolve_run(conn, ref)
    rec = records.run_row(conn, run_id)
    out_dir = run_folder(rec["experiment"], run_id)
    if not (out_dir / "model.pth").is_file():
        raise NotFound(f"run {run_id} has no saved model ({out_dir}/model.pth)")
    for stale in out_dir.glob(f".export-{chosen.name}.*"):
        if stale.is_dir():  # a bundle folder a killed export left half-built
            import shutil

            shutil.rmtree(stale, ignore_errors=True)
    tag = f"export-{chosen.name}"
    job = out_dir / f".{tag}.job.json"
    error_name = f".{tag}.error.txt"
    (out_dir / error_name).unlink(missing_ok=True)
    job.write_text(
        json.dumps(
            {
                "folder": str(out_dir.resolve()),
                "entry_file": "recap.ml.reexport",
                "entry_func": "run_job",
                "params": {"target": chosen.name},
                "seed": rec["seed"] or 0,
                "device": "cpu",
                "run_id": run_id,
                "out_dir": str(out_dir.resolve()),
                "parent_pid": os.getpid(),
                "error_file": error_name,
            }
        ),
        encoding="utf-8",
    )
    recorder = Recorder(conn, run_id, out_dir)
    # the job appends to the run's events.jsonl: read only what it adds
    events = out_dir / EVENTS
    recorder.reader.offset = events.stat().st_size if events.exists() else 0
    status, error = _supervise(
        job, out_dir, out_dir / f"{tag}.log", rec["seed"] or 0, recorder, error_name
    )
    dest = out_dir / tag
    if status != "succeeded":
        return ExportOutcome(run_id, chosen.name, status, dest, error=error)
    _record_artifacts(conn, run_id, out_dir, recorder.artifacts)
    report = json.loads((dest / "parity.json").read_text(encoding="utf-8"))
    return ExportOutcome(run_id, chosen.name, status, dest, report)


def _record_artifacts(conn, run_id: str, out_dir: Path, artifacts: dict) -> None:
    """Artifact rows (replacing rows of the same path) for files a job reported, in one go."""
    from recap.fsutil import sha256_file

    rows = []
    for rel, ev in artifacts.items():
        full = out_dir / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not full.is_file():
            continue
        rows.append(
            (
                run_id,
                rel,
                str(ev.get("kind") or "file"),
                sha256_file(full),
                full.stat().st_size,
                json.dumps(ev.get("metadata") or {}),
            )
        )
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO artifact (run_id, path, kind, sha256, size, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
