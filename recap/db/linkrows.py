"""The one owner of the ``link`` table: every write to it goes through this module.

A row ties an entry to exactly one bookmark, run or experiment, with a note and a reason:

- ``manual``: linked by hand (``recap link``, ``bookmark add --entry``);
- ``excluded``: unlinked by hand from the week's automatic set, so it stays out;
- ``auto``: an automatic link frozen when the entry was published (``recap publish``).

Which bookmarks and runs a live weekly entry shows is decided above (``recap.week``); this
module only stores rows. It imports nothing of recap but the clock.
"""

from __future__ import annotations

import sqlite3

from recap.timeutil import stamp

REASONS = ("manual", "excluded", "auto")
KINDS = {"bookmark": "bookmark_id", "run": "run_id", "experiment": "experiment_id"}


def _target(kind: str, target) -> tuple:
    if kind not in KINDS:
        raise ValueError(f"unknown link kind {kind!r}")
    return tuple(target if k == kind else None for k in KINDS)


def find(conn: sqlite3.Connection, entry_id: int, kind: str, target) -> sqlite3.Row | None:
    bm, run, exp = _target(kind, target)
    return conn.execute(
        "SELECT * FROM link WHERE entry_id = ? AND bookmark_id IS ? AND run_id IS ? "
        "AND experiment_id IS ?",
        (entry_id, bm, run, exp),
    ).fetchone()


def put(
    conn: sqlite3.Connection,
    entry_id: int,
    kind: str,
    target,
    *,
    reason: str = "manual",
    note: str | None = None,
    when: str | None = None,
) -> tuple[int, bool]:
    """Insert or update the row for (entry, target). Returns (link id, whether it was new).

    ``note=None`` keeps an existing note; a manual link replaces an exclusion or a frozen row.
    """
    assert reason in REASONS
    existing = find(conn, entry_id, kind, target)
    if existing is not None:
        new_note = existing["note"] if note is None else note
        conn.execute(
            "UPDATE link SET reason = ?, note = ? WHERE id = ?", (reason, new_note, existing["id"])
        )
        return existing["id"], existing["reason"] == "excluded"
    bm, run, exp = _target(kind, target)
    cur = conn.execute(
        "INSERT INTO link (entry_id, bookmark_id, run_id, experiment_id, note, created, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (entry_id, bm, run, exp, note or "", when or stamp(), reason),
    )
    return cur.lastrowid, True


def add_if_missing(
    conn: sqlite3.Connection, entry_id: int, kind: str, target, *, reason: str, when: str
) -> bool:
    """Insert a row unless one exists for (entry, target) (an exclusion wins). True if new."""
    if find(conn, entry_id, kind, target) is not None:
        return False
    put(conn, entry_id, kind, target, reason=reason, when=when)
    return True


def delete(conn: sqlite3.Connection, link_id: int) -> None:
    conn.execute("DELETE FROM link WHERE id = ?", (link_id,))


def rows(conn: sqlite3.Connection, entry_id: int) -> list[sqlite3.Row]:
    """Every link row of an entry, oldest first."""
    return conn.execute(
        "SELECT * FROM link WHERE entry_id = ? ORDER BY id", (int(entry_id),)
    ).fetchall()


def drop_auto(conn: sqlite3.Connection, entry_id: int) -> int:
    """Forget the frozen automatic rows (an entry made live again). Returns how many."""
    return conn.execute(
        "DELETE FROM link WHERE entry_id = ? AND reason = 'auto'", (entry_id,)
    ).rowcount


def move_bookmark(conn: sqlite3.Connection, old_id: int, new_id: int) -> None:
    """Point the links of bookmark ``old_id`` at ``new_id`` (merging duplicates)."""
    conn.execute(
        "UPDATE OR IGNORE link SET bookmark_id = ? WHERE bookmark_id = ?", (new_id, old_id)
    )
