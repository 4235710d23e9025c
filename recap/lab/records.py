"""Run records: look-up by id, listings, stale-run detection, one run as a dict."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from recap.errors import InvalidInput, NotFound
from recap.timeutil import stamp

RUN_COLUMNS = (
    "r.id, e.name AS experiment, r.status, r.params, r.seed, r.summary, r.device, r.started, "
    "r.ended, r.duration, r.git_commit, r.git_dirty, r.git_diff_hash, r.folder_hash, "
    "r.environment, r.cache_key, r.parent_id, r.pid, r.log_path, r.error"
)
JSON_FIELDS = ("params", "summary", "environment")


def run_folder(experiment: str, run_id: str, root: Path | None = None) -> Path:
    """A run's output folder: the one place that names it (``runs/<experiment>/<run id>``)."""
    from recap import paths

    return paths.runs_dir(root) / experiment / run_id


def resolve_run(conn: sqlite3.Connection, ref: str) -> str:
    """A run id from an exact id, or a unique prefix or suffix of one (the random tail)."""
    ref = str(ref).strip()
    if not ref:
        raise InvalidInput("empty run id")
    if conn.execute("SELECT 1 FROM run WHERE id = ?", (ref,)).fetchone():
        return ref
    if len(ref) < 4:  # too short to name a run by its tail without surprises
        raise NotFound(f"no run {ref!r} (give at least 4 characters of its id)")
    like = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT id FROM run WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' LIMIT 3",
        (like + "%", "%" + like),
    ).fetchall()
    if not rows:
        raise NotFound(f"no run {ref!r} (see 'recap exp runs')")
    if len(rows) > 1:
        raise InvalidInput(f"run id {ref!r} is ambiguous: {', '.join(r[0] for r in rows)}, ...")
    return rows[0][0]


def _decode(row: sqlite3.Row) -> dict:
    out = dict(row)
    for key in JSON_FIELDS:
        if key in out:
            out[key] = json.loads(out[key] or "{}")
    if out.get("git_dirty") is not None:
        out["git_dirty"] = bool(out["git_dirty"])
    return out


def run_row(conn: sqlite3.Connection, run_id: str) -> dict:
    row = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM run r JOIN experiment e ON e.id = r.experiment_id "
        "WHERE r.id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no run {run_id!r}")
    return _decode(row)


def run_record(conn: sqlite3.Connection, run_id: str) -> dict:
    """Everything recorded about a run: the row, its artifacts and a digest of its metrics."""
    rec = run_row(conn, run_id)
    rec["flags"] = rec["summary"].get("flags", {})
    rec["artifacts"] = [
        dict(a) | {"metadata": json.loads(a["metadata"])}
        for a in conn.execute(
            "SELECT path, kind, sha256, size, metadata FROM artifact WHERE run_id = ? "
            "ORDER BY path",
            (run_id,),
        )
    ]
    rec["metrics"] = {
        m["key"]: {"count": m["n"], "last": m["last"], "min": m["lo"], "max": m["hi"]}
        for m in conn.execute(
            "SELECT key, count(*) AS n, min(value) AS lo, max(value) AS hi, "
            "(SELECT value FROM metric m2 WHERE m2.run_id = m.run_id AND m2.key = m.key "
            " ORDER BY m2.id DESC LIMIT 1) AS last "
            "FROM metric m WHERE run_id = ? GROUP BY key ORDER BY key",
            (run_id,),
        )
    }
    return rec


def list_runs(
    conn: sqlite3.Connection, experiment: str | None = None, limit: int = 200
) -> list[dict]:
    mark_stale(conn)
    where, args = "", []
    if experiment:
        if not conn.execute("SELECT 1 FROM experiment WHERE name = ?", (experiment,)).fetchone():
            raise NotFound(f"no runs of an experiment {experiment!r} (see 'recap exp list')")
        where, args = "WHERE e.name = ?", [experiment]
    rows = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM run r JOIN experiment e ON e.id = r.experiment_id {where} "
        "ORDER BY r.started DESC, r.id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [_decode(r) for r in rows]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # A zombie (exited, not yet reaped) is gone as far as the run is concerned.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def mark_stale(conn: sqlite3.Connection) -> list[str]:
    """Mark ``running`` rows whose recording process is gone (SIGKILL, reboot) as failed."""
    import platform

    host = platform.node()
    stale = []
    for row in conn.execute("SELECT id, pid, environment FROM run WHERE status = 'running'"):
        env = json.loads(row["environment"] or "{}")
        if env.get("hostname", host) != host or row["pid"] is None:
            continue
        if not _pid_alive(row["pid"]):
            stale.append(row["id"])
    for run_id in stale:
        conn.execute(
            "UPDATE run SET status = 'failed', ended = ?, error = ? "
            "WHERE id = ? AND status = 'running'",
            (
                stamp(),
                "the recording process disappeared without a word (killed?); "
                "the run was marked failed when listed",
                run_id,
            ),
        )
    return stale


def primary_value(summary: dict, primary: str | None):
    if primary and primary in summary:
        return summary[primary]
    return None


def experiment_primary(conn: sqlite3.Connection, experiment: str) -> tuple[str | None, str]:
    """(primary metric key, direction) from the experiment's spec, (None, 'min') when unreadable."""
    from recap.lab.spec import load_spec
    from recap.paths import log_root

    row = conn.execute("SELECT folder FROM experiment WHERE name = ?", (experiment,)).fetchone()
    if row is None:
        return None, "min"
    folder = Path(row["folder"])
    try:
        spec = load_spec(folder if folder.is_absolute() else log_root() / folder)
    except Exception:
        return None, "min"
    return spec.primary, spec.direction
