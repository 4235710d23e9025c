"""Entries in the database: look-up by id or slug, listing, week queries."""

from __future__ import annotations

import sqlite3

from recap.errors import NotFound


def get_entry(conn: sqlite3.Connection, ref: str | int) -> sqlite3.Row:
    """The entry whose id or slug is ``ref``, or the weekly entry of an ISO week such as
    ``2021-W03``; NotFound otherwise."""
    import re

    ref = str(ref).strip()
    row = None
    if ref.isdigit():
        row = conn.execute("SELECT * FROM entry WHERE id = ?", (int(ref),)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM entry WHERE slug = ?", (ref,)).fetchone()
    m = re.fullmatch(r"(\d{4})-?[wW](\d{1,2})", ref)
    if row is None and m:
        row = conn.execute(
            "SELECT * FROM entry WHERE kind = 'weekly' AND week = ? ORDER BY id LIMIT 1",
            (f"{m.group(1)}-W{int(m.group(2)):02d}",),
        ).fetchone()
    if row is None:
        raise NotFound(f"no entry with id, slug or week {ref!r} (see 'recap list')")
    return row
