"""Capture, find and tidy bookmarks: what the user sees and what is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from test_links_server import Route, serve

from recap.links import store


def rows(db, sql="SELECT * FROM bookmark ORDER BY id", *args):
    return [dict(r) for r in db.execute(sql, args).fetchall()]


def test_add_offline_stores_url_key_tags_note(cli, db):
    r = cli(
        "bookmark",
        "add",
        "HTTP://Example.com:80/paper/?utm_source=tw#intro",
        "--offline",
        "-t",
        "ML",
        "-t",
        "vision",
        "-t",
        "ml",
        "--note",
        "read section 3",
        "--title",
        "Paper",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "added 1: Paper [ml, vision]"
    (b,) = rows(db)
    assert b["url"] == "HTTP://Example.com:80/paper/?utm_source=tw#intro"
    assert b["url_key"] == "http://example.com/paper"
    assert json.loads(b["tags"]) == ["ml", "vision"]
    assert (b["note"], b["title"], b["source"]) == ("read section 3", "Paper", "cli")
    assert b["added"] == b["updated"] and b["added"].endswith("Z")


def test_adding_same_key_merges_tags_and_keeps_first_date(cli, db):
    cli("bookmark", "add", "https://example.com/a", "--offline", "-t", "one")
    first = rows(db)[0]
    r = cli(
        "bookmark",
        "add",
        "https://example.com/a/?utm_campaign=x",
        "--offline",
        "-t",
        "two",
        "--json",
    )
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["status"] == "updated" and out["id"] == 1 and out["tags"] == ["one", "two"]
    (b,) = rows(db)
    assert b["added"] == first["added"] and b["updated"] >= first["updated"]
    assert b["url"] == "https://example.com/a"  # the original spelling stays
    r = cli("bookmark", "add", "https://example.com/a", "--offline")
    assert "already saved" in r.stdout


def test_ids_are_stable_after_deletion(cli, db):
    for u in ("https://a.example/", "https://b.example/", "https://c.example/"):
        cli("bookmark", "add", u, "--offline")
    r = cli("bookmark", "rm", "2")
    assert r.exit_code == 0 and "removed 1 bookmark: 2" in r.stdout
    cli("bookmark", "add", "https://d.example/", "--offline")
    assert [b["id"] for b in rows(db)] == [1, 3, 4]
    assert (
        db.execute("SELECT count(*) FROM bookmark_fts WHERE bookmark_fts MATCH 'b'").fetchone()[0]
        == 0
    )
    r = cli("bookmark", "rm", "2")
    assert r.exit_code == 2 and r.stderr.startswith("error: no bookmark with id '2'")


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "not a url", "ftp://x.example/f"])
def test_add_refuses_non_web_urls_in_one_line(cli, db, bad):
    r = cli("bookmark", "add", bad, "--offline")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.output
    assert rows(db) == []


def test_add_online_fetches_title_description_and_final_url(cli, db, monkeypatch):
    page = (
        "<html><head><meta charset='iso-8859-1'><title> Caf\xe9 &amp; <b>Co</b> </title>"
        "<meta name='description' content='A &lt;b&gt;page&lt;/b&gt; about caf\xe9s'>"
        "</head><body>hi</body></html>"
    ).encode("latin-1")
    with serve() as srv:
        srv.routes["/old"] = Route(status=301, location="/new")
        srv.routes["/new"] = Route(page, ctype="text/html")
        r = cli("bookmark", "add", srv.url("/old"), "--json")
    assert r.exit_code == 0, r.output
    (b,) = rows(db)
    assert b["title"] == "Café & Co"
    # The attribute's entities are decoded once: what the page says is kept as text.
    assert b["description"] == "A <b>page</b> about cafés"
    assert b["final_url"] == srv.url("/new") and b["url"] == srv.url("/old")
    assert b["http_status"] == 200
    assert json.loads(r.stdout)["title"] == "Café & Co"


def test_add_online_keeps_given_title_and_skips_non_html(cli, db):
    with serve() as srv:
        srv.routes["/f.pdf"] = Route(b"%PDF-1.4", ctype="application/pdf")
        r = cli("bookmark", "add", srv.url("/f.pdf"), "--title", "Mine")
    assert r.exit_code == 0
    assert "not a web page (application/pdf)" in r.stderr
    assert rows(db)[0]["title"] == "Mine"


def test_add_online_caps_size_and_never_hangs(db, log_root):
    from recap.db import connect
    from recap.links.fetch import make_client

    big = b"<html><head><title>Big</title></head><body>" + b"x" * 3_000_000
    with serve() as srv:
        srv.routes["/big"] = Route(big)
        srv.routes["/slow"] = Route("<title>Slow</title>", delay=3)
        conn = connect()
        res = store.add_bookmark(conn, srv.url("/big"))
        assert res["bookmark"]["title"] == "Big"
        t0 = datetime.now()
        with make_client(timeout=0.5) as client:
            res = store.add_bookmark(conn, srv.url("/slow"), client=client, tags=["t"])
        assert (datetime.now() - t0).total_seconds() < 2.5
        assert "Timeout" in res["fetch_error"] and res["bookmark"]["title"] == ""
        # A server that drips bytes forever trips the total deadline, not just the timeouts.
        srv.routes["/drip"] = Route(b"<html><head>" + b" " * 4000, drip=0.05)
        t0 = datetime.now()
        from recap.links.fetch import fetch_page

        page = fetch_page(srv.url("/drip"), deadline=0.5)
        assert (datetime.now() - t0).total_seconds() < 2
        assert page["error"] == "gave up reading after 0.5 s"
    # Unreachable: stored as given, with the error reported.
    res = store.add_bookmark(conn, "http://127.0.0.1:9/nothing")
    assert res["fetch_error"] and res["status"] == "added"
    assert len(rows(db)) == 3


def test_entry_option_links_bookmark_once(cli, db):
    db.execute(
        "INSERT INTO entry (slug, title, week, date, created, updated) VALUES "
        "('2021-w03', 'Week 3', '2021-W03', '2021-01-22', 'x', 'x')"
    )
    db.commit()
    for _ in range(2):
        r = cli("bookmark", "add", "https://example.com/x", "--offline", "--entry", "2021-w03")
        assert r.exit_code == 0
    assert rows(db, "SELECT entry_id, bookmark_id FROM link") == [{"entry_id": 1, "bookmark_id": 1}]
    r = cli("bookmark", "add", "https://example.com/y", "--offline", "--entry", "nope")
    assert r.exit_code == 2 and "no entry" in r.stderr
    assert len(rows(db)) == 1  # nothing half-written


def _seed(conn):
    when = [
        datetime(2021, 1, 18, 9, tzinfo=UTC),
        datetime(2021, 1, 24, 23, tzinfo=UTC),
        datetime(2021, 1, 25, 0, 30, tzinfo=UTC),
    ]
    store.add_bookmark(
        conn,
        "https://a.example/transformers",
        title="Transformers for pose",
        tags=["pose", "ml"],
        note="good survey",
        offline=True,
        now=when[0],
    )
    store.add_bookmark(
        conn, "https://b.example/cafe", title="Crème brûlée in Zürich", offline=True, now=when[1]
    )
    store.add_bookmark(
        conn,
        "https://c.example/onnx",
        title="ONNX export",
        tags=["unity"],
        note="mentions transformer once",
        offline=True,
        now=when[2],
    )


def test_list_filters_and_json(cli, db):
    from recap.db import connect

    _seed(connect())
    r = cli("bookmark", "list", "--json")
    assert [b["id"] for b in json.loads(r.stdout)] == [3, 2, 1]
    r = cli("bookmark", "list", "--tag", "POSE", "--json")
    assert [b["id"] for b in json.loads(r.stdout)] == [1]
    r = cli("bookmark", "list", "--week", "2021-W03", "--json")
    assert [b["id"] for b in json.loads(r.stdout)] == [2, 1]
    r = cli("bookmark", "list", "--since", "2021-01-24", "--json")
    assert [b["id"] for b in json.loads(r.stdout)] == [3, 2]
    db.execute("UPDATE bookmark SET read_at = NULL WHERE id = 2")
    db.commit()
    r = cli("bookmark", "list", "--unread")
    assert "Crème brûlée" in r.stdout and "ONNX" not in r.stdout
    r = cli("bookmark", "list", "--week", "2021-W99")
    assert r.exit_code == 2 and "is not a week of 2021" in r.stderr


def test_search_ranked_unicode_and_malformed(cli, db):
    from recap.db import connect

    _seed(connect())
    r = cli("bookmark", "search", "transformer", "--json")
    found = json.loads(r.stdout)
    # Whole-word hits come first, then substrings ("transformer" in "Transformers"); with prefix
    # syntax (FTS5's own) both are word hits and the title match outranks the note match.
    r2 = cli("bookmark", "search", "transformer*", "--json")
    assert [b["id"] for b in json.loads(r2.stdout)] == [1, 3]
    assert [b["id"] for b in found] == [3, 1]
    r = cli("bookmark", "search", "creme brulee zurich", "--json")
    assert [b["id"] for b in json.loads(r.stdout)] == [2]
    r = cli("bookmark", "search", "a.example")  # URL words
    assert "Transformers for pose" in r.stdout
    r = cli("bookmark", "search", "unity", "--json")  # tags
    assert [b["id"] for b in json.loads(r.stdout)] == [3]
    r = cli("bookmark", "search", "survey")  # note
    assert "Transformers for pose" in r.stdout
    for bad in ('"unclosed', "AND", "title:(x"):
        r = cli("bookmark", "search", bad)
        assert r.exit_code == 2 and r.stderr.startswith("error: malformed search query")
        assert r.stderr.count("\n") == 1
    assert cli("bookmark", "search", "nothinglikethis").stdout.strip() == "no matches"


def test_edit_tag_and_read_state(cli, db):
    cli("bookmark", "add", "https://example.com/a", "--offline", "-t", "x")
    r = cli("bookmark", "edit", "1", "--title", "New", "--note", "n2", "--unread")
    assert r.exit_code == 0 and r.stdout.strip() == "updated 1: New"
    b = rows(db)[0]
    assert (b["title"], b["note"], b["read_at"]) == ("New", "n2", None)
    r = cli("bookmark", "tag", "1", "--add", "Y", "--add", "z", "--remove", "x")
    assert r.stdout.strip() == "1: y, z"
    assert json.loads(rows(db)[0]["tags"]) == ["y", "z"]
    assert cli("bookmark", "search", "n2", "--json").stdout.count('"id": 1') == 1
    cli("bookmark", "add", "https://example.com/b", "--offline")
    r = cli("bookmark", "edit", "2", "--url", "https://example.com/a/")
    assert r.exit_code == 2 and "already has that URL" in r.stderr
    r = cli("bookmark", "edit", "1", "--archive")
    assert "New" not in cli("bookmark", "list").stdout
    assert cli("bookmark", "edit", "1").exit_code == 2


def test_dupes_lists_and_merges_near_duplicates(cli, db):
    for u in ("http://example.com/a", "https://www.example.com/a/", "https://other.example/"):
        cli("bookmark", "add", u, "--offline", "-t", u.split(":")[0])
    r = cli("bookmark", "dupes")
    assert r.stdout.strip() == "1 http://example.com/a = 2 https://www.example.com/a/"
    assert len(rows(db)) == 3  # listing never changes anything
    r = cli("bookmark", "dupes", "--merge", "--yes")
    assert "merged into 1" in r.stdout
    assert [(b["id"], json.loads(b["tags"])) for b in rows(db)] == [
        (1, ["http", "https"]),
        (3, ["https"]),
    ]
    assert cli("bookmark", "dupes").stdout.strip() == "no near-duplicates"
