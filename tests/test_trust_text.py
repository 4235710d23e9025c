"""Issue 14 items 1, 2, 6, 8 (bookmark files) and 11: text kept exactly, long text kept, feeds keep
what can be kept, bad bookmark files are one line, buku reads our notes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.test_links_server import Route, serve

TITLES = [
    "Drawing shapes with <canvas>",
    "The <script> element explained",
    "R&amp;D notes &lt;draft&gt;",
    '<script>alert("title")</script>',
    "Two  spaces,\ttab and\nnewline ",
]
NOTES = ["a <b>bold</b> claim & more", "5 < 6 > 4", "", "Note: tricky", "x\n\ny"]
FIELDS = ("url", "title", "description", "note", "tags", "added", "updated", "read_at")


def rows(db):
    """Bookmark rows as recap reads them (m004 stores stamps as integer milliseconds)."""
    from recap.db.stamps import from_ms

    out = [dict(r) for r in db.execute("SELECT * FROM bookmark ORDER BY id")]
    for row in out:
        for key in ("added", "updated"):
            if isinstance(row[key], int):
                row[key] = from_ms(row[key])
    return out


def _fill(cli, db):
    for i, (title, note) in enumerate(zip(TITLES, NOTES, strict=True)):
        args = ["bookmark", "add", f"https://t.example/{i}", "--offline", "--title", title]
        args += ["-t", f"tag{i}", "-t", "<b>"] + (["--note", note] if note else [])
        r = cli(*args)
        assert r.exit_code == 0, r.output
    # Milliseconds, a description with markup-like text, unread and archived states.
    db.execute(
        "UPDATE bookmark SET description = 'uses <video> & &amp;', added = "
        "'2021-01-18T10:11:12.345Z', updated = '2021-01-19T01:02:03.456Z' WHERE id = 2"
    )
    db.execute("UPDATE bookmark SET read_at = NULL WHERE id = 3")
    db.execute("UPDATE bookmark SET read_at = '2021-02-01T00:00:00.007Z' WHERE id = 4")
    db.commit()


def _other_log(tmp_path, monkeypatch, name):
    from recap import paths
    from recap.logroot import init_root

    other, _ = init_root(tmp_path / name, title="Other")
    monkeypatch.setenv("RECAP_ROOT", str(other))
    paths.set_root_override(None)
    conn = sqlite3.connect(other / "recap.db", detect_types=sqlite3.PARSE_DECLTYPES)
    conn.row_factory = sqlite3.Row
    return conn


def test_titles_are_stored_exactly_on_add(cli, db):
    _fill(cli, db)
    assert [r["title"] for r in rows(db)] == TITLES
    assert [r["note"] for r in rows(db)] == NOTES
    # A page's <title> is read by a real HTML parser: entities decoded once, words kept.
    page = (
        b"<html><head><title>Drawing shapes with &lt;canvas&gt; &amp;amp; more</title>"
        b"<meta name='description' content='The &lt;script&gt; element explained'></head></html>"
    )
    with serve() as srv:
        srv.routes["/p"] = Route(page, ctype="text/html")
        r = cli("bookmark", "add", srv.url("/p"))
    assert r.exit_code == 0, r.output
    last = rows(db)[-1]
    assert last["title"] == "Drawing shapes with <canvas> &amp; more"
    assert last["description"] == "The <script> element explained"


@pytest.mark.parametrize("fmt", ["html", "json", "md"])
def test_export_import_round_trip_is_exact(cli, db, tmp_path, monkeypatch, fmt):
    _fill(cli, db)
    before = rows(db)
    out = tmp_path / f"all.{fmt}"
    assert cli("bookmark", "export", out).exit_code == 0
    db2 = _other_log(tmp_path, monkeypatch, f"other-{fmt}")
    r = cli("bookmark", "import", out, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["added"] == len(TITLES) and rep["skipped"] == [] and rep["warnings"] == []
    after = rows(db2)
    for a, b in zip(before, after, strict=True):
        for f in FIELDS:
            assert a[f] == b[f], (fmt, f, a[f], b[f])
    # Importing the same file again changes nothing.
    r = cli("bookmark", "import", out, "--json")
    assert json.loads(r.stdout)["changed"] == 0 and rows(db2) == after


def test_netscape_entities_are_decoded_once(cli, db, tmp_path):
    f = tmp_path / "b.html"
    f.write_text(
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n"
        '<DT><A HREF="https://e.example/1" ADD_DATE="1610000000" NOTE="a &amp;amp; b">'
        "R&amp;amp;D notes &amp;lt;draft&amp;gt;</A>\n"
        "<DD>The &lt;canvas&gt; element\n"
        '<DT><A HREF="https://e.example/2" ADD_DATE="99999999999999999999">Far</A>\n'
        "</DL>\n"
    )
    r = cli("bookmark", "import", f)
    assert r.exit_code == 0, r.output
    one, two = rows(db)
    assert one["title"] == "R&amp;D notes &lt;draft&gt;"
    assert one["note"] == "a &amp; b"
    assert one["description"] == "The <canvas> element"
    # An out-of-range ADD_DATE is reported and ignored (the import time is used).
    assert "warning https://e.example/2: ADD_DATE '99999999999999999999'" in r.stdout
    assert two["added"] > "2020"


def test_long_title_is_kept(cli, db, tmp_path):
    long = "x" * 4990 + " <end>"
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"href": "https://l.example/", "description": long, "tags": []}]))
    r = cli("bookmark", "import", f, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["cut"] == []
    assert rows(db)[0]["title"] == long
    r = cli("bookmark", "add", "https://l.example/2", "--offline", "--title", long)
    assert rows(db)[1]["title"] == long


def test_text_past_the_limit_is_cut_with_a_report_line(cli, db, tmp_path, monkeypatch):
    from recap.links import exchange

    monkeypatch.setattr(exchange, "MAX_FIELD", 10)
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"href": "https://c.example/", "description": "0123456789abc"}]))
    r = cli("bookmark", "import", f)
    assert r.exit_code == 0
    assert "cut https://c.example/: title from 13 to 10 characters" in r.stdout
    assert rows(db)[0]["title"] == "0123456789"


def test_pinboard_tags_as_list_and_empty_files(cli, db, tmp_path):
    f = tmp_path / "p.json"
    f.write_text(
        json.dumps([{"href": "https://p.example/", "description": "P", "tags": ["A b", "c"]}])
    )
    assert cli("bookmark", "import", f).exit_code == 0
    assert json.loads(rows(db)[0]["tags"]) == ["a b", "c"]
    for name, body in (
        ("empty.html", "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n</DL>\n"),
        ("empty.json", "[]"),
        ("nothing.md", "# just a heading\n"),
    ):
        (tmp_path / name).write_text(body)
        r = cli("bookmark", "import", tmp_path / name)
        assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.output
        assert "no bookmarks in this file" in r.stderr
    assert len(rows(db)) == 1


def test_import_streams_json_in_batches(cli, db, tmp_path):
    from recap.links import exchange

    f = tmp_path / "big.json"
    items = [{"href": f"https://s.example/{i}", "description": f"T{i}"} for i in range(1200)]
    f.write_text(json.dumps(items))
    fmt, records = exchange.iter_file(f)
    assert fmt == "pinboard" and next(records)["title"] == "T0"
    # Chunks smaller than one item still parse; batches commit as they go.
    old = exchange.CHUNK
    exchange.CHUNK = 7
    try:
        from recap.db import connect

        rep = exchange.import_file(connect(), f, batch=500)
    finally:
        exchange.CHUNK = old
    assert rep["added"] == 1200 and len(rows(db)) == 1200
    fts = db.execute("SELECT count(*) FROM bookmark_trigram WHERE bookmark_trigram MATCH 'T119'")
    assert fts.fetchone()[0] == 11  # T119, T1190..T1199
    db.execute("INSERT INTO bookmark_fts(bookmark_fts) VALUES ('integrity-check')")
    db.execute("INSERT INTO bookmark_trigram(bookmark_trigram) VALUES ('integrity-check')")


def test_netscape_parse_does_not_depend_on_chunk_boundaries():
    from recap.links import exchange

    text = (Path(__file__).parent / "data" / "links" / "firefox.html").read_text()
    whole = exchange.parse_netscape(text)
    for size in (1, 7, 50):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        # Each record must be complete when it is handed out (it may be written at once).
        assert [dict(r) for r in exchange.iter_netscape(chunks)] == whole, size
    assert any(r["description"] for r in whole)


FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Half</title><link>https://h.example/</link>
<item><title>First whole item</title><link>https://h.example/1</link></item>
<item><title>Second whole item</title><link>https://h.example/2</link></item>
<item><title>Cut here</title><link>https://h.example/3</link><description>trun"""


def test_truncated_feed_keeps_its_whole_items(cli, db, tmp_path):
    with serve() as srv:
        srv.routes["/half.xml"] = Route(FEED, ctype="application/rss+xml")
        cli("feed", "add", srv.url("/half.xml"))
        r = cli("feed", "pull")
    assert r.exit_code == 7
    assert "broken feed" in r.stderr and "half.xml" in r.stderr
    assert sorted(b["title"] for b in rows(db)) == ["First whole item", "Second whole item"]
    feed = db.execute("SELECT * FROM feed").fetchone()
    assert feed["last_error"].startswith("broken feed") and feed["etag"] is None


def test_local_feed_over_the_limit_is_refused_before_reading(cli, db, tmp_path, monkeypatch):
    from recap.links import feeds

    monkeypatch.setattr(feeds, "MAX_FEED_BYTES", 100)
    f = tmp_path / "big.xml"
    f.write_bytes(FEED)
    cli("feed", "add", f)
    r = cli("feed", "pull")
    assert "larger than 100 bytes" in r.stderr and rows(db) == []


def test_feed_titles_are_decoded_once(cli, db, tmp_path):
    f = tmp_path / "f.xml"
    f.write_bytes(
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>F</title>'
        b'<entry><title type="text">The &lt;script&gt; element &amp;amp; more</title>'
        b'<link href="https://f.example/1"/><summary type="html">&lt;p&gt;A &amp;lt;canvas&amp;gt;'
        b" &lt;b&gt;demo&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</summary></entry></feed>"
    )
    cli("feed", "add", f)
    assert cli("feed", "pull").exit_code == 0
    (b,) = rows(db)
    assert b["title"] == "The <script> element &amp; more"
    assert b["description"] == "A <canvas> demo"


def test_buku_reads_our_notes(cli, tmp_path):
    buku = Path(os.environ.get("PEERS_BIN", "/tmp/peers-venv/bin")) / "buku"
    if not buku.exists():
        buku = Path(__file__).resolve().parent.parent / "build" / "peers-venv" / "bin" / "buku"
    if not buku.exists():
        pytest.skip("buku (the peers venv) not installed")
    cli("bookmark", "add", "https://n.example/1", "--offline", "--title", "One", "--note", "mine")
    cli("bookmark", "add", "https://n.example/2", "--offline", "--title", "Two", "--note", "n2")
    conn = sqlite3.connect(Path(os.environ["RECAP_ROOT"]) / "recap.db")
    conn.execute("UPDATE bookmark SET description = 'desc two' WHERE id = 2")
    conn.commit()
    cli("bookmark", "export", tmp_path / "out.html")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    subprocess.run(
        [str(buku), "--nostdin", "--offline", "--tacit", "-i", str(tmp_path / "out.html")],
        env=env,
        input="n\nn\nn\n",
        text=True,
        capture_output=True,
        timeout=60,
    )
    got = subprocess.run(
        [str(buku), "--nostdin", "--np", "-p", "-j"], env=env, capture_output=True, text=True
    )
    desc = {b["uri"]: b["description"] for b in json.loads(got.stdout)}
    assert "mine" in desc["https://n.example/1"]
    assert "desc two" in desc["https://n.example/2"] and "n2" in desc["https://n.example/2"]
