"""Listings page through the database: a default limit, --all streamed, JSON streamed."""

from __future__ import annotations

import io
import json
import sys

from recap import db as recap_db


def _bookmarks(root, n: int) -> None:
    conn = recap_db.connect(root / "recap.db")
    with recap_db.transaction(conn):
        conn.executemany(
            "INSERT INTO bookmark (url, url_key, title, tags, added, updated) VALUES (?,?,?,?,?,?)",
            [
                (
                    f"https://example.org/{i}",
                    f"example.org/{i}",
                    f"Title {i} ☃",
                    json.dumps(["t"] if i % 2 else []),
                    f"2021-01-{1 + i % 28:02d}T10:00:{i % 60:02d}.000Z",
                    "2021-01-01T00:00:00.000Z",
                )
                for i in range(n)
            ],
        )
    conn.close()


def test_list_pages_by_default_and_streams_all(log_root, cli):
    _bookmarks(log_root, 130)
    r = cli("bookmark", "list")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 2 + 100  # header, rule, the first 100 (off a terminal)
    assert "first 100 shown" in r.stderr and "--all" in r.stderr
    r = cli("bookmark", "list", "--all")
    assert len(r.stdout.splitlines()) == 2 + 130 and r.stderr == ""
    # Columns stay aligned for rows past the sample the widths came from.
    starts = {line.index("https://") for line in r.stdout.splitlines()[2:]}
    assert len(starts) == 1
    r = cli("bookmark", "list", "--limit", "7")
    assert len(r.stdout.splitlines()) == 2 + 7 and "first 7 shown" in r.stderr
    r = cli("bookmark", "list", "--limit", "5", "--all")
    assert r.exit_code != 0 and "--limit or --all" in r.stderr


def test_list_at_80_columns_puts_each_url_whole_under_its_title(log_root, cli, monkeypatch):
    _bookmarks(log_root, 3)
    conn = recap_db.connect(log_root / "recap.db")
    long_url = "https://vision.example/blog/posts/2021/01/shipping-onnx-models-to-unity?ref=feed"
    with recap_db.transaction(conn):
        conn.execute("UPDATE bookmark SET url = ?, title = ? WHERE id = 2", (long_url, "X " * 40))
    conn.close()
    monkeypatch.setenv("COLUMNS", "80")
    for args in (("bookmark", "list"), ("bookmark", "search", "example")):
        lines = cli(*args).stdout.splitlines()
        assert lines[0].split() == ["id", "added", "title", "tags"], args
        assert set(lines[1]) == {"-", " "}  # the rule is not cut
        at = next(i for i, line in enumerate(lines) if line.startswith("2 "))
        assert lines[at + 1] == "    " + long_url, args  # whole, on its own line
        assert max(map(len, lines)) <= 80 or long_url in max(lines, key=len)
    monkeypatch.delenv("COLUMNS")
    assert long_url in cli("bookmark", "list").stdout.splitlines()[2 + 1]  # piped: one table


def test_json_is_streamed_and_identical_to_a_dump(log_root, cli):
    _bookmarks(log_root, 30)
    r = cli("bookmark", "list", "--all", "--json", "--tag", "t")
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)
    assert len(items) == 15 and all(i["tags"] == ["t"] for i in items)
    assert r.stdout == json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    assert [i["added"] for i in items] == sorted((i["added"] for i in items), reverse=True)
    # The rows are the database's, newest first, ties broken by id.
    conn = recap_db.connect(log_root / "recap.db")
    want = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM bookmark WHERE tags != '[]' ORDER BY added DESC, id DESC"
        )
    ]
    assert [i["id"] for i in items] == want
    r = cli("bookmark", "list", "--json", "--week", "2030-W01")
    assert r.stdout == "[]\n"


def test_stream_json_matches_print_json(monkeypatch):
    from recap.cli.output import print_json, stream_json

    rows = [
        {"a": 1},
        {"a": [1, {"b": "x\ny"}], "c": None},
        {"d": 'é\u2028"', "t": ["x", "y é"], "e": [], "f": 1.5, "g": True, "h": {}},
        {},
        {"nested": {"k": [1]}},
        [1, 2],
    ]
    for items in ([], [rows[0]], rows):
        outs = []
        for fn in (print_json, stream_json):
            buf = io.StringIO()
            monkeypatch.setattr(sys, "stdout", buf)
            fn(items if fn is print_json else iter(items))
            outs.append(buf.getvalue())
        assert outs[0] == outs[1]


def test_default_limit_is_a_screenful_on_a_terminal(monkeypatch):
    import os
    import shutil

    from recap.cli import bookmark

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: os.terminal_size((100, 40)))
    assert bookmark._default_limit() == 36
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert bookmark._default_limit() == bookmark.DEFAULT_LIST_LIMIT


def test_entry_list_leaves_bodies_unread(log_root, cli):
    from recap.journal.entries import list_entries

    conn = recap_db.connect(log_root / "recap.db")
    with recap_db.transaction(conn):
        conn.execute(
            "INSERT INTO entry (slug, title, date, body, created, updated) VALUES "
            "('big', 'Big', '2021-01-01', ?, 'x', 'x')",
            ("word " * 100_000,),
        )
    seen = []
    conn.set_trace_callback(seen.append)
    rows = list_entries(conn, body=False)
    assert rows[0]["slug"] == "big" and "body" not in rows[0]
    assert not any("SELECT *" in sql or " body" in sql for sql in seen if "FROM entry" in sql)
    conn.close()
    r = cli("list", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["slug"] == "big" and "word word" not in r.stdout
