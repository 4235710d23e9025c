"""Entries in the database: look-up by id or slug, listing, week queries."""

from __future__ import annotations

import sqlite3

from recap.errors import NotFound


def get_entry(conn: sqlite3.Connection, ref: str | int) -> sqlite3.Row:
    """The entry whose id or slug is ``ref``; NotFound otherwise."""
    ref = str(ref).strip()
    row = None
    if ref.isdigit():
        row = conn.execute("SELECT * FROM entry WHERE id = ?", (int(ref),)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM entry WHERE slug = ?", (ref,)).fetchone()
    if row is None:
        raise NotFound(f"no entry with id or slug {ref!r} (see 'recap list')")
    return row
