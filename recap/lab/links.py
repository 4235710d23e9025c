"""``recap link``: tie an entry to a run, an experiment or a bookmark (Link rows)."""

from __future__ import annotations

import sqlite3

from recap.db import transaction
from recap.errors import InvalidInput, NotFound
from recap.timeutil import stamp


def link_entry(
    conn: sqlite3.Connection,
    entry_ref: str,
    run: str | None = None,
    exp: str | None = None,
    bookmark: str | int | None = None,
    note: str = "",
) -> dict:
    """Link an entry to exactly one target; linking again updates the note. Returns the link."""
    from recap.journal.store import get_entry
    from recap.lab.records import resolve_run

    if sum(x is not None for x in (run, exp, bookmark)) != 1:
        raise InvalidInput("give exactly one of --run, --exp, --bookmark")
    entry = get_entry(conn, entry_ref)
    run_id = exp_id = bm_id = None
    if run is not None:
        run_id = resolve_run(conn, run)
        target = {"run": run_id}
    elif exp is not None:
        row = conn.execute("SELECT id FROM experiment WHERE name = ?", (exp,)).fetchone()
        if row is None:
            raise NotFound(f"no experiment {exp!r} with recorded runs (see 'recap exp list')")
        exp_id = row["id"]
        target = {"experiment": exp}
    else:
        ref = str(bookmark).strip()
        row = (
            conn.execute("SELECT id FROM bookmark WHERE id = ?", (int(ref),)).fetchone()
            if ref.isdigit()
            else None
        )
        if row is None:
            raise NotFound(f"no bookmark {ref!r} (see 'recap bookmark list')")
        bm_id = row["id"]
        target = {"bookmark": bm_id}
    with transaction(conn):
        existing = conn.execute(
            "SELECT id FROM link WHERE entry_id = ? AND bookmark_id IS ? AND run_id IS ? "
            "AND experiment_id IS ?",
            (entry["id"], bm_id, run_id, exp_id),
        ).fetchone()
        if existing:
            conn.execute("UPDATE link SET note = ? WHERE id = ?", (note, existing["id"]))
            link_id, created = existing["id"], False
        else:
            link_id = conn.execute(
                "INSERT INTO link (entry_id, bookmark_id, run_id, experiment_id, note, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (entry["id"], bm_id, run_id, exp_id, note, stamp()),
            ).lastrowid
            created = True
    return {
        "id": link_id,
        "entry": entry["id"],
        "slug": entry["slug"],
        **target,
        "note": note,
        "created": created,
    }
