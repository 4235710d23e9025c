"""Migration m004_compact: bookmarks store the URL once and integer timestamps, read the same."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from recap import db
from recap.db import dump as dumpmod
from recap.db.migrations import MIGRATIONS

NOW = "2021-01-25T10:00:00.123Z"


def schema3(path) -> sqlite3.Connection:
    """A database frozen at schema 3 (before m004), made by the earlier migrations."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for number, _name, sql in MIGRATIONS:
        if number > 3:
            break
        for statement in db._split(sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    return conn


def fill(conn, n: int = 0) -> None:
    conn.execute(
        "INSERT INTO entry (slug, title, date, created, updated) VALUES "
        "('w3', 'Week 3', '2021-01-24', ?, ?)",
        (NOW, NOW),
    )
    rows = [
        # url, url_key, title, added, updated
        ("https://a.example/x", "https://a.example/x", "Zebracorn paper", NOW, NOW),
        (
            "HTTP://B.example/y?utm_source=z",
            "http://b.example/y",
            "Bee",
            NOW,
            "2022-02-02T02:02:02.002Z",
        ),
        ("https://c.example/", "https://c.example/", "Odd dates", "2021-01-25 10:00", "yesterday"),
        ("https://d.example/", "https://d.example/", "Old", "1001-01-01T00:00:00.000Z", NOW),
    ]
    rows += [
        (f"https://e.example/{i}", f"https://e.example/{i}", f"Title {i}", NOW, NOW)
        for i in range(n)
    ]
    conn.executemany(
        "INSERT INTO bookmark (url, url_key, title, tags, added, updated)"
        " VALUES (?,?,?,'[\"t\"]',?,?)",
        rows,
    )
    conn.execute(
        "INSERT INTO link (entry_id, bookmark_id, note, created) VALUES (1, 2, 'n', ?)", (NOW,)
    )


def _dump(conn) -> str:
    out = io.StringIO()
    dumpmod.dump(conn, out)
    return out.getvalue()


def _sizes(conn) -> int:
    """Bytes of the bookmark table and its indexes (the search indexes excluded)."""
    return conn.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name = 'bookmark' OR name LIKE '%bookmark%' "
        "AND name NOT LIKE 'bookmark_fts%' AND name NOT LIKE 'bookmark_trigram%'"
    ).fetchone()[0]


def _section(dump: str, table: str) -> list[str]:
    """The lines of one table in a dump: its header line and its rows."""
    out, on = [], False
    for line in dump.splitlines()[1:]:
        if line.startswith('{"table"'):
            on = json.loads(line)["table"] == table
        if on:
            out.append(line)
    return out


def test_m004_converts_in_place_and_reads_the_same(tmp_path):
    path = tmp_path / "recap.db"
    old = schema3(path)
    fill(old, n=300)
    old.execute("VACUUM")
    before_rows = [dict(r) for r in old.execute("SELECT * FROM bookmark ORDER BY id")]
    before_dump = _dump(old)
    before_size = _sizes(old)
    old.close()

    conn = db.connect(path)
    assert db.schema_version(conn) == MIGRATIONS[-1][0]  # m004 and every later one applied
    after_rows = [dict(r) for r in conn.execute("SELECT * FROM bookmark ORDER BY id")]
    for a, b in zip(before_rows, after_rows, strict=True):
        b = {**b, "url_key": b["url_key"] or b["url"]}
        assert a == b
    # Stored compactly: integer milliseconds for canonical stamps, text kept as it was otherwise;
    # the key only where it differs from the URL.
    raw = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT id, url_key, typeof(added), typeof(updated), added + 0 FROM bookmark WHERE id <= 4"
        )
    }
    assert raw[1][:3] == (None, "integer", "integer")
    assert raw[2][:3] == ("http://b.example/y", "integer", "integer")
    assert raw[3][:3] == (None, "text", "text")
    assert raw[4][1] == "integer" and raw[4][3] < 0
    # Links survive the table rebuild, foreign keys hold, the search indexes still find rows.
    assert [tuple(r) for r in conn.execute("SELECT bookmark_id, note FROM link")] == [(2, "n")]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    hits = conn.execute("SELECT rowid FROM bookmark_fts WHERE bookmark_fts MATCH 'zebracorn'")
    assert [r[0] for r in hits] == [1]
    # The dump holds values, not storage: the same rows before and after (only the header moves).
    # (Tables a later migration gives new columns, entry and link, are left out of the check.)
    after_dump = _dump(conn)
    for table in ("bookmark", "feed", "experiment", "run", "metric", "artifact"):
        assert _section(before_dump, table) == _section(after_dump, table), table
    assert json.loads(after_dump.splitlines()[0])["schema"] == MIGRATIONS[-1][0]
    conn.execute("VACUUM")
    assert _sizes(conn) < 0.85 * before_size


def test_writes_after_m004_stay_compact_and_unique(tmp_path, log_root, cli):
    conn = db.connect(log_root / "recap.db")
    with db.transaction(conn):
        fill(conn)
        # A writer that binds text (as every writer did before m004) is stored compactly too.
        conn.execute("UPDATE bookmark SET updated = ?, read_at = ? WHERE id = 3", (NOW, NOW))
    assert conn.execute("SELECT typeof(updated) FROM bookmark WHERE id = 3").fetchone()[0] == (
        "integer"
    )
    assert conn.execute("SELECT updated FROM bookmark WHERE id = 3").fetchone()[0] == NOW
    assert tuple(
        conn.execute("SELECT typeof(read_at), read_at FROM bookmark WHERE id = 3").fetchone()
    ) == ("integer", NOW)
    with pytest.raises(sqlite3.IntegrityError):  # same key, one stored as NULL, one spelled out
        conn.execute(
            "INSERT INTO bookmark (url, url_key, added, updated) VALUES (?, ?, ?, ?)",
            ("https://a.example/x#frag", "https://a.example/x", NOW, NOW),
        )
    r = cli("bookmark", "add", "https://a.example/x?utm_source=feed", "--offline", "--json")
    assert r.exit_code == 0, r.output
    assert conn.execute("SELECT count(*) FROM bookmark").fetchone()[0] == 4  # merged
    r = cli("bookmark", "list", "--json", "--since", "2021-01-25")
    items = {i["id"]: i for i in json.loads(r.stdout)}
    assert items[1]["url_key"] == "https://a.example/x" and items[1]["added"] == NOW
    assert 4 not in items  # added in 1001
    r = cli("bookmark", "list", "--json", "--week", "2021-W04")
    assert {i["id"] for i in json.loads(r.stdout)} == {1, 2}  # the odd text date is not a time


def test_dump_load_dump_is_byte_identical(tmp_path, log_root):
    conn = db.connect(log_root / "recap.db")
    with db.transaction(conn):
        fill(conn, n=20)
    first = _dump(conn)
    conn.close()
    (tmp_path / "d.txt").write_text(first)
    dumpmod.load(tmp_path / "d.txt", tmp_path / "loaded.db")
    again = db.connect(tmp_path / "loaded.db")
    assert _dump(again) == first
    assert again.execute("SELECT typeof(added) FROM bookmark WHERE id = 1").fetchone()[0] == (
        "integer"
    )


def test_db_check_reports_search_index_size_apart(log_root, cli):
    conn = db.connect(log_root / "recap.db")
    with db.transaction(conn):
        fill(conn, n=200)
    conn.close()
    r = cli("db", "check", "--json")
    assert r.exit_code == 0, r.output
    sizes = json.loads(r.stdout)["bytes"]
    assert sizes["data"] > 0 and sizes["search_indexes"] > 0
    r = cli("db", "check")
    assert "MB of full-text search indexes" in r.stdout


def test_stamp_text_from_ms_matches_gmtime_everywhere():
    """The cached, table-driven from_ms gives exactly the gmtime() text: across hour and day
    edges, before 1970 and past year 9999."""
    import random
    import time

    from recap.db.stamps import convert, from_ms

    def reference(ms):
        seconds, milli = divmod(ms, 1000)
        t = time.gmtime(seconds)
        return (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{milli:03d}Z"
        )

    rng = random.Random(4)
    edges = [h * 3_600_000 + d for h in (-1, 0, 1, 447_000) for d in (-1001, -1, 0, 1, 999, 1000)]
    values = edges + [253402300799999, 253402300800000, -62135596800000]
    values += [rng.randrange(-(10**14), 10**14) for _ in range(20000)]
    for ms in values:
        assert from_ms(ms) == reference(ms) == convert(str(ms).encode()), ms
    assert convert(b"1611568800123") == "2021-01-25T10:00:00.123Z"
    assert convert(b"-1") == "1969-12-31T23:59:59.999Z"
    assert convert(b"2021-01-25") == "2021-01-25"
