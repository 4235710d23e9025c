"""Feeds: subscribe, pull (concurrently, conditionally), failures named, items as bookmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_links_server import Route, serve

DATA = Path(__file__).parent / "data" / "links"
GOOD = {
    "rss090.rdf": "application/rss+xml",
    "rss091.xml": "application/rss+xml",
    "rss10.rdf": "application/rdf+xml",
    "rss20.xml": "application/rss+xml",
    "atom.xml": "application/atom+xml",
    "wrong-encoding.xml": "text/xml",
    "hostile.xml": "application/rss+xml",
}
BAD = ["truncated.xml", "empty.xml", "notafeed.html"]


def bookmarks(db):
    return {r["url_key"] or r["url"]: dict(r) for r in db.execute("SELECT * FROM bookmark")}


def _serve_all(srv):
    for name, ctype in GOOD.items():
        srv.routes[f"/{name}"] = Route(
            (DATA / name).read_bytes(),
            ctype=ctype,
            etag=f'"{name}-v1"',
            headers={"Last-Modified": "Mon, 18 Jan 2021 09:00:00 GMT"},
        )
    for name in BAD:
        srv.routes[f"/{name}"] = Route((DATA / name).read_bytes(), ctype="application/rss+xml")
    srv.routes["/gone.xml"] = Route(b"gone", status=410)


def test_pull_all_formats_conditionally_and_name_failures(cli, db):
    with serve() as srv:
        _serve_all(srv)
        for name in [*GOOD, *BAD, "gone.xml"]:
            r = cli(
                "feed",
                "add",
                srv.url(f"/{name}"),
                *(["--tag", "Vision"] if name == "rss20.xml" else []),
            )
            assert r.exit_code == 0 and r.stdout.startswith("added feed")
        r = cli("feed", "add", srv.url("/rss20.xml"))
        assert r.stdout.startswith("already subscribed feed 4")
        r = cli("feed", "pull")
        assert r.exit_code == 7, r.output
        warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
        assert len(warnings) == 4
        assert any("truncated.xml: broken feed" in w for w in warnings)
        assert any("empty.xml: empty response" in w for w in warnings)
        assert any("notafeed.html: not a feed" in w for w in warnings)
        assert any("gone.xml: HTTP 410" in w for w in warnings)
        assert r.stderr.strip().endswith("error: 4 of 11 feeds failed")
        assert "Vision Weekly: ok, 3 new, 0 already saved" in r.stdout
        assert "Hostile Feed: ok, 1 new, 0 already saved, skipped 2" in r.stdout
        b = bookmarks(db)
        assert len(b) == 11
        # Relative links resolved (against the document's URL, as RFC 3986 says); tracking
        # parameters folded in the key; feed tags added.
        rel = b[srv.url("/posts/relative-item")]
        assert rel["read_at"] is None and rel["source"] == srv.url("/rss20.xml")
        pose = b["https://vision.example/blog/pose-transformers"]
        assert json.loads(pose["tags"]) == ["pose", "vision"]
        assert pose["description"] == "A survey of transformer-based pose estimation."
        assert pose["added"] == "2021-01-18T09:00:00.000Z"
        assert (
            b["https://atom.example/notes/blender-synthetic"]["title"]
            == "Synthetic data with Blender"
        )
        assert b["http://news91.example/cafe"]["title"] == "Café opening"
        assert b["https://enc.example/cafe"]["title"] == "Café naïve résumé"
        assert b["http://old.example/items/2"]["title"] == "Second old item"
        assert b["http://rss10.example/a"]["description"] == "About keypoints."
        hostile = b["https://hostile.example/one"]
        # The title is text (feedparser says so) and is kept as it reads, escaped on output; the
        # description is HTML and is read as text (script bodies and tags gone).
        assert hostile["title"] == (
            "<img src=x onerror=alert(1)>[click](javascript:alert(1)) **bold** # heading"
        )
        assert hostile["description"] == "text"
        assert not any(k.startswith(("javascript", "data")) for k in b)
        feeds = {f["url"]: f for f in json.loads(cli("feed", "list", "--json").stdout)}
        f = feeds[srv.url("/rss20.xml")]
        assert (f["title"], f["etag"], f["items"], f["unread"]) == (
            "Vision Weekly",
            '"rss20.xml-v1"',
            3,
            3,
        )
        assert f["modified"] == "Mon, 18 Jan 2021 09:00:00 GMT" and f["last_error"] is None
        assert feeds[srv.url("/truncated.xml")]["last_error"].startswith("broken feed")
        assert (
            feeds[srv.url("/hostile.xml")]["title"] == '<script>alert("feed")</script>Hostile Feed'
        )
        # at 80 columns each feed's URL and last error go whole under it, not cut
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("COLUMNS", "80")
            lines = cli("feed", "list").stdout.splitlines()
        assert lines[0].split() == ["id", "title", "items", "unread", "last", "pull"]
        assert f"    url: {srv.url('/rss20.xml')}" in lines and max(map(len, lines)) <= 80
        broken = next(x for x in lines if x.startswith(f"    url: {srv.url('/truncated.xml')}"))
        assert "; error: broken feed" in broken
        # Second pull: conditional GETs answered 304, nothing changes.
        before = bookmarks(db)
        srv.requests.clear()
        r = cli("feed", "pull", "--json")
        res = {x["url"]: x for x in json.loads(r.stdout)}
        assert res[srv.url("/rss20.xml")]["status"] == "not modified"
        sent = {p: h for m, p, h in srv.requests}
        assert sent["/rss20.xml"]["If-None-Match"] == '"rss20.xml-v1"'
        assert sent["/rss20.xml"]["If-Modified-Since"] == "Mon, 18 Jan 2021 09:00:00 GMT"
        assert bookmarks(db) == before


def test_items_dedupe_with_existing_bookmarks_and_local_files(cli, db):
    cli("bookmark", "add", "https://vision.example/blog/onnx-unity/", "--offline", "-t", "mine")
    r = cli("feed", "add", DATA / "rss20.xml", "-t", "feeds")
    assert r.exit_code == 0
    r = cli("feed", "pull")
    assert r.exit_code == 0, r.output
    assert "Vision Weekly: ok, 2 new, 1 already saved" in r.stdout
    b = bookmarks(db)
    mine = b["https://vision.example/blog/onnx-unity"]
    assert mine["id"] == 1 and json.loads(mine["tags"]) == ["feeds", "mine"]
    assert mine["read_at"] is not None  # the user's own bookmark stays read
    assert len(b) == 3
    # A local file has no URL of its own: relative links resolve against the channel's link.
    assert b["https://vision.example/blog/posts/relative-item"]["read_at"] is None
    r = cli("bookmark", "list", "--unread", "--json")
    assert {x["id"] for x in json.loads(r.stdout)} == {2, 3}
    r = cli("feed", "pull")
    assert "0 new, 3 already saved" in r.stdout and len(bookmarks(db)) == 3


def test_feed_errors_and_rm(cli, db, tmp_path):
    r = cli("feed", "add", tmp_path / "nope.xml")
    assert r.exit_code == 2 and "nor an existing file" in r.stderr
    r = cli("feed", "add", "javascript:alert(1)")
    assert r.exit_code == 2
    assert cli("feed", "list").stdout.startswith("no feeds")
    cli("feed", "add", DATA / "atom.xml")
    cli("feed", "pull")
    r = cli("feed", "rm", "1")
    assert r.exit_code == 0 and r.stdout.startswith("removed feed 1")
    assert db.execute("SELECT count(*) FROM feed").fetchone()[0] == 0
    # Its bookmarks stay, unlinked from the feed.
    assert db.execute("SELECT count(*), max(feed_id) FROM bookmark").fetchone()[:] == (2, None)
    assert cli("feed", "rm", "1").exit_code == 2


def test_feeds_are_fetched_concurrently(db):
    from recap.db import connect
    from recap.links.feeds import add_feed, pull

    conn = connect()
    body = (DATA / "rss20.xml").read_bytes()
    with serve() as srv:
        for i in range(6):
            srv.routes[f"/f{i}.xml"] = Route(body, ctype="application/rss+xml", delay=0.4)
            add_feed(conn, srv.url(f"/f{i}.xml"))
        seen = []
        res = pull(conn, workers=6, progress=lambda d, t, u: seen.append((d, t)))
    assert srv.peak >= 3
    assert [r["status"] for r in res] == ["ok"] * 6
    assert seen[-1] == (6, 6)
    assert conn.execute("SELECT count(*) FROM bookmark").fetchone()[0] == 3
