"""``recap exp list``: the experiment folders with their last run."""

from __future__ import annotations

import json
import sqlite3

from recap.errors import RecapError
from recap.lab import spec as specmod
from recap.lab.records import mark_stale


def list_experiments(conn: sqlite3.Connection) -> tuple[list[dict], list[str]]:
    """Every experiment folder (name, project, description, last run) and the specs' errors."""
    mark_stale(conn)
    rows, errors = [], []
    for folder in specmod.iter_folders():
        try:
            spec = specmod.load_spec(folder)
        except RecapError as exc:
            errors.append(str(exc))
            continue
        last = conn.execute(
            "SELECT r.id, r.status, r.summary, r.started FROM run r "
            "JOIN experiment e ON e.id = r.experiment_id WHERE e.name = ? "
            "ORDER BY r.started DESC, r.id DESC LIMIT 1",
            (spec.name,),
        ).fetchone()
        summary = json.loads(last["summary"]) if last else {}
        rows.append(
            {
                "name": spec.name,
                "project": spec.project,
                "description": spec.description,
                "entry": spec.entry,
                "primary": spec.primary,
                "direction": spec.direction,
                "last_run": last["id"] if last else None,
                "last_status": last["status"] if last else None,
                "last_started": last["started"] if last else None,
                "last_primary": summary.get(spec.primary),
            }
        )
    return rows, errors
