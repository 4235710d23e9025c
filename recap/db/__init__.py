"""The database: one SQLite file per log root, opened with WAL, a busy timeout and foreign keys.

Hot command paths (``recap new``, ``bookmark add``, search) use :func:`connect`, plain ``sqlite3``,
so they never pay for importing SQLModel. ``recap.db.models`` describes the same tables as SQLModel
classes for library code that wants typed rows; a test keeps the two in step.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from recap.errors import InvalidInput, RecapError, SchemaTooNew

BUSY_TIMEOUT_MS = 30_000


def _pragmas(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    # 16 MB of page cache (SQLite's default is 2 MB): a long-lived connection keeps the FTS
    # doclists and bookmark rows of a 100k-bookmark log warm between searches.
    conn.execute("PRAGMA cache_size = -16000")


def _retry_locked(fn, timeout: float = BUSY_TIMEOUT_MS / 1000):
    """Run ``fn`` again while SQLite says the database is locked; some first-open steps
    (switching to WAL) return SQLITE_BUSY without consulting the busy handler."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations, each in its own IMMEDIATE transaction. Returns the names applied.

    Safe when several processes open a brand-new file at once: the version is re-read after the
    write lock is taken, so each migration runs exactly once.
    """
    from recap.db.migrations import HEAD, MIGRATIONS

    current = schema_version(conn)
    if current > HEAD:
        raise SchemaTooNew(
            f"the database is at schema version {current}, newer than this recap knows "
            f"({HEAD}); upgrade recap"
        )
    applied: list[str] = []
    if current == HEAD:
        return applied
    for number, name, sql in MIGRATIONS:
        if number <= current:
            continue

        def step(number=number, name=name, sql=sql):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if schema_version(conn) >= number:
                    conn.execute("ROLLBACK")
                    return False
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    "number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
                )
                for statement in _split(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                    (number, name),
                )
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
                return True
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        if _retry_locked(step):
            applied.append(name)
    return applied


def _split(sql: str) -> list[str]:
    """Split a migration into statements; trigger bodies keep their inner semicolons."""
    statements, buf = [], []
    for line in sql.strip().splitlines():
        buf.append(line)
        chunk = "\n".join(buf)
        if chunk.rstrip().endswith(";") and sqlite3.complete_statement(chunk):
            statements.append(chunk)
            buf = []
    if "".join(buf).strip():
        statements.append("\n".join(buf))
    return statements


def connect(path: Path | None = None, *, create: bool = True) -> sqlite3.Connection:
    """Open (and migrate) the log's database. Autocommit mode: use :func:`transaction` to write."""
    from recap import paths

    path = Path(path) if path else paths.db_path()
    if not create and not path.exists():
        raise RecapError(f"no database at {path}; run 'recap init'")
    from recap.db.stamps import convert

    # Columns declared STAMP hold integer milliseconds (m004); rows read back the stamp text.
    sqlite3.register_converter("STAMP", convert)
    try:
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            detect_types=sqlite3.PARSE_DECLTYPES,
        )
    except sqlite3.OperationalError as exc:
        raise RecapError(f"cannot open database {path}: {exc}") from exc
    conn.row_factory = sqlite3.Row
    try:
        _pragmas(conn)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
        migrate(conn)
        # A `db load` killed half-way leaves its temporary database beside this one.
        if any(n.startswith(".recap-load-") for n in os.listdir(path.parent or ".")):
            from recap.db.dump import clean_stranded

            clean_stranded(path.parent)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise RecapError(f"cannot use database {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, immediate: bool = True):
    """One write transaction: everything inside commits together or not at all."""
    _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN"))
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def fts_query(query: str) -> str:
    """Validate an FTS5 query early so a malformed one is a clear error, not a traceback."""
    if not query.strip():
        raise InvalidInput("empty search query")
    return query


def fts_error(exc: sqlite3.OperationalError, query: str) -> InvalidInput:
    return InvalidInput(f"malformed search query {query!r}: {exc}")
