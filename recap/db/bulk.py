"""Bulk writes that index full text once per batch instead of once per row.

The FTS5 indexes are kept in sync by triggers. Fired row by row, an FTS insert from a trigger costs
several times a plain insert (measured: 10,000 rows into a trigram index, 3.4 s by trigger against
0.5 s by direct inserts), which dominates a large import. :func:`deferred_index` works inside one
write transaction: the table's AFTER INSERT triggers are set aside, its UPDATE/DELETE triggers are
limited to rows that existed before (rows added in the batch are not in the index yet), and when the
batch ends every AFTER INSERT trigger's own statement is run once over the new rows, then the
triggers are put back exactly as they were. It all commits or rolls back with the transaction, so
a crash never leaves the triggers changed. Triggers it cannot read this way are left alone (the
batch is then indexed row by row, as before).
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager

_INSERT_BODY = re.compile(
    r"^(?P<head>.*?\bBEGIN\b)\s*(?P<insert>INSERT\s+INTO\s+[^;]*?)\s+VALUES\s*\((?P<values>.*)\)"
    r"\s*;\s*END\s*$",
    re.S | re.I,
)
_BEGIN = re.compile(r"\bBEGIN\b", re.I)


def _rewrites_own_row(sql: str, table: str) -> bool:
    """A trigger whose whole body is one UPDATE of the same row (``WHERE id = new.id``), such as
    m004_compact's, which stores a row's values compactly: it indexes nothing."""
    body = _BEGIN.split(sql, 1)[-1].strip()
    return bool(
        re.fullmatch(
            rf"UPDATE\s+{re.escape(table)}\s+SET\s+[^;]*\bWHERE\s+id\s*=\s*new\.id\s*;\s*END",
            body,
            re.S | re.I,
        )
    )


def _plan(conn: sqlite3.Connection, table: str, after: int):
    """(inserts, limited): the set-based form of each AFTER INSERT trigger, and the UPDATE/DELETE
    triggers rewritten to act only on rows up to ``after``; None when a trigger does not fit."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
    ).fetchall()
    inserts, limited = [], []
    for name, sql in rows:
        head = _BEGIN.split(sql, 1)[0]
        if _rewrites_own_row(sql, table):
            continue  # m004's storage triggers index nothing: left in place, firing per row
        if re.search(r"\bWHEN\b|\bBEFORE\b|\bINSTEAD\b", head, re.I):
            return None
        if re.search(r"\bAFTER\s+INSERT\b", head, re.I):
            m = _INSERT_BODY.match(sql.strip())
            if not m or "new." not in m["values"]:
                return None
            bulk = f"{m['insert']} SELECT {m['values']} FROM {table} AS new WHERE new.rowid > ?"
            inserts.append((name, sql, bulk))
        elif re.search(r"\bAFTER\s+(UPDATE|DELETE)\b", head, re.I):
            start = _BEGIN.search(sql).start()
            limited.append(
                (name, sql, f"{sql[:start]}WHEN old.rowid <= {int(after)} {sql[start:]}")
            )
        else:
            return None
    return inserts, limited


@contextmanager
def deferred_index(conn: sqlite3.Connection, table: str):
    """Inside an open write transaction: index rows inserted into ``table`` once, at the end."""
    after = conn.execute(f"SELECT ifnull(max(rowid), 0) FROM {table}").fetchone()[0]
    plan = _plan(conn, table, after)
    if not plan:
        yield
        return
    inserts, limited = plan
    for name, _sql, _bulk in inserts:
        conn.execute(f'DROP TRIGGER "{name}"')
    for name, _sql, changed in limited:
        conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(changed)
    yield
    for _name, sql, bulk in inserts:
        conn.execute(bulk, (after,))
        conn.execute(sql)
    for name, sql, _changed in limited:
        conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(sql)
