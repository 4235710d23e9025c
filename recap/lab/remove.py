"""``recap exp rm RUN``: forget a run (its row, metrics, artifacts, links) and its output folder.

Reruns of it stay and lose their parent; an entry that linked it no longer shows it.
"""

from __future__ import annotations

import shutil
import sqlite3


def remove_run(conn: sqlite3.Connection, run_id: str) -> dict:
    """Delete a run's rows (metrics, artifacts and links cascade) and its ``runs/`` folder."""
    from recap import paths
    from recap.db import transaction

    row = conn.execute(
        "SELECT r.id, r.status, e.name AS experiment FROM run r "
        "JOIN experiment e ON e.id = r.experiment_id WHERE r.id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        from recap.errors import NotFound

        raise NotFound(f"no run {run_id!r} (see 'recap exp runs')")
    with transaction(conn):
        conn.execute("DELETE FROM run WHERE id = ?", (run_id,))
    folder = paths.runs_dir() / row["experiment"] / row["id"]
    removed_folder = folder.is_dir()
    if removed_folder:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "id": row["id"],
        "experiment": row["experiment"],
        "status": row["status"],
        "folder": str(folder) if removed_folder else None,
    }
