"""A deterministic text dump of the database, and its exact restore.

Format: one JSON header line, then per table (fixed order) one line ``{"table": name}`` followed by
its rows as JSON arrays in primary-key order. FTS indexes are not dumped: they are rebuilt from the
tables on load. ``dump -> load -> dump`` gives the same bytes, and the rows read the same before
and after migration m004 (compact bookmarks): the dump holds values, not their storage.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TextIO

from recap.errors import InvalidInput

ORDER = ["entry", "feed", "bookmark", "experiment", "run", "metric", "artifact", "link"]
# Columns stored compactly (m004) are dumped as what they mean, so a dump reads the same
# whatever the storage: bookmark.url_key is NULL when it equals the URL; STAMP columns (integer
# milliseconds) come back as text through the connection's converter.
EXPANDED = {("bookmark", "url_key"): "coalesce(url_key, url)"}
FORMAT = "recap-dump"


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def dump(conn: sqlite3.Connection, out: TextIO) -> int:
    from recap.db import schema_version

    out.write(json.dumps({"format": FORMAT, "schema": schema_version(conn)}) + "\n")
    count = 0
    conn.execute("BEGIN")  # one consistent snapshot
    try:
        for table in ORDER:
            cols = _columns(conn, table)
            out.write(json.dumps({"table": table, "columns": cols}) + "\n")
            order = "id"
            select = ", ".join(EXPANDED.get((table, c), c) for c in cols)
            for row in conn.execute(f"SELECT {select} FROM {table} ORDER BY {order}"):
                out.write(json.dumps(list(row), ensure_ascii=False) + "\n")
                count += 1
    finally:
        conn.execute("ROLLBACK")
    return count


LOAD_PREFIX = ".recap-load-"


def clean_stranded(folder: Path) -> list[Path]:
    """Remove temporary databases of ``db load`` runs that died (their process is gone).

    Each is named ``.recap-load-<pid>-*``; a load still running keeps its file."""
    removed = []
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(LOAD_PREFIX)]
    except OSError:
        return removed
    for name in names:
        pid = name[len(LOAD_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        path = Path(folder) / name
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lines(fh, dump_file: Path):
    """(line number, JSON value) of each line; a line that is not UTF-8 JSON is a clear error."""
    for n, raw in enumerate(fh, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{dump_file}:{n}: not UTF-8 text; not a recap dump") from None
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{dump_file}:{n}: not valid JSON ({exc.msg})") from None


def _header(fh, dump_file: Path) -> dict:
    first = fh.readline()
    try:
        header = json.loads(first.decode("utf-8")) if first.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInput(f"{dump_file} is not a recap dump (no recap-dump header line)")
    schema = header.get("schema")
    if type(schema) is not int or schema < 1:
        raise InvalidInput(f"{dump_file}: the header's 'schema' is not a schema number: {schema!r}")
    return header


def load(dump_file: Path, db_file: Path) -> int:
    """Restore ``dump_file`` into ``db_file``, replacing it atomically. Returns the rows loaded.

    Everything is checked while loading into a temporary database beside ``db_file``; any bad
    line leaves ``db_file`` as it was."""
    from recap import db
    from recap.db.bulk import deferred_index
    from recap.db.migrations import HEAD

    dump_file = Path(dump_file)
    if not dump_file.is_file():
        raise InvalidInput(f"no such dump file: {dump_file}")
    db_file = Path(db_file)
    with open(dump_file, "rb") as fh:
        header = _header(fh, dump_file)
        if header["schema"] > HEAD:
            from recap.errors import SchemaTooNew

            raise SchemaTooNew(f"{dump_file} is from schema {header['schema']}, newer than {HEAD}")
        fd, tmp = tempfile.mkstemp(
            dir=db_file.parent, prefix=f"{LOAD_PREFIX}{os.getpid()}-", suffix=".db"
        )
        os.close(fd)
        os.unlink(tmp)
        count = 0
        try:
            conn = db.connect(Path(tmp))
            # Rows of self-referencing runs arrive in id order: check keys once at the end.
            conn.execute("PRAGMA foreign_keys = OFF")
            known = {t: _columns(conn, t) for t in ORDER}
            # Full-text indexes are filled once at the end, not row by row through triggers.
            with (
                db.transaction(conn),
                deferred_index(conn, "entry"),
                deferred_index(conn, "bookmark"),
            ):
                table, cols, sql = None, [], ""
                for n, item in _lines(fh, dump_file):
                    where = f"{dump_file}:{n + 1}"
                    if isinstance(item, dict):
                        table, cols = item.get("table"), item.get("columns")
                        if table not in known:
                            raise InvalidInput(f"{where}: unknown table {table!r}")
                        if not isinstance(cols, list) or not cols:
                            raise InvalidInput(f"{where}: table {table!r} has no 'columns' list")
                        unknown = [c for c in cols if c not in known[table]]
                        if unknown or len(set(cols)) != len(cols):
                            raise InvalidInput(
                                f"{where}: bad columns for {table}: {unknown or cols}"
                            )
                        marks = ", ".join("?" * len(cols))
                        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"
                        continue
                    if table is None:
                        raise InvalidInput(f"{where}: a row before any table line")
                    if not isinstance(item, list) or len(item) != len(cols):
                        raise InvalidInput(
                            f"{where}: a row of {table} must be a list of {len(cols)} values"
                        )
                    if any(isinstance(v, (dict, list)) for v in item):
                        raise InvalidInput(f"{where}: a value of {table} is not a plain value")
                    try:
                        conn.execute(sql, item)
                    except (sqlite3.IntegrityError, OverflowError) as exc:
                        raise InvalidInput(
                            f"{where}: cannot load this row of {table}: {exc}"
                        ) from None
                    count += 1
            bad = conn.execute("PRAGMA foreign_key_check").fetchall()
            if bad:
                raise InvalidInput(f"{dump_file}: {len(bad)} rows point at missing rows")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.close()
            for suffix in ("-wal", "-shm"):
                Path(str(db_file) + suffix).unlink(missing_ok=True)
            os.replace(tmp, db_file)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(tmp + suffix).unlink(missing_ok=True)
    return count


def backup(conn: sqlite3.Connection, target: Path) -> None:
    """Copy the live database with SQLite's online backup API (safe while others write)."""
    target = Path(target)
    if target.exists() and target.is_dir():
        raise InvalidInput(f"{target} is a folder")
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", suffix=".tmp")
    os.close(fd)
    try:
        dst = sqlite3.connect(tmp)
        with dst:
            conn.backup(dst, pages=1024)
        dst.close()
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def check(conn: sqlite3.Connection) -> dict:
    from recap.db import schema_version
    from recap.db.migrations import HEAD

    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ORDER}
    return {
        "ok": integrity == ["ok"] and not fk,
        "integrity": integrity,
        "foreign_key_errors": len(fk),
        "schema_version": schema_version(conn),
        "head": HEAD,
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
        "rows": counts,
        "bytes": sizes(conn),
    }


def sizes(conn: sqlite3.Connection) -> dict | None:
    """Bytes on disk: the tables and their indexes, and the full-text search indexes apart
    (they are rebuilt from the tables and can be as large again); None without dbstat."""
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:
        return None
    fts = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_schema"
            " WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%fts5%'"
        )
    ]
    search = sum(s for name, s in rows if any(name == t or name.startswith(t + "_") for t in fts))
    total = sum(s for _, s in rows)
    return {"data": total - search, "search_indexes": search}
