"""Dead links: HEAD then GET, per-host limits, stored status, 'list --broken'."""

from __future__ import annotations

import json

from test_links_server import Route, serve

from recap.db import connect
from recap.links.check import check_links
from recap.links.store import add_bookmark


def test_check_stores_status_and_lists_broken(cli, db):
    with serve() as srv:
        srv.routes["/ok"] = Route("fine")
        srv.routes["/nohead"] = Route("fine", head_status=405)  # GET tells the truth
        srv.routes["/gone"] = Route("gone", status=404)
        srv.routes["/moved"] = Route(status=301, location="/ok")
        for p in ("/ok", "/nohead", "/gone", "/moved"):
            cli("bookmark", "add", srv.url(p), "--offline")
        cli("bookmark", "add", "http://127.0.0.1:9/refused", "--offline")
        r = cli("bookmark", "check", "--json")
    assert r.exit_code == 0, r.output
    res = {x["url"].rsplit("/", 1)[1]: x for x in json.loads(r.stdout)}
    assert (
        res["ok"]["status"],
        res["nohead"]["status"],
        res["gone"]["status"],
        res["moved"]["status"],
    ) == (200, 200, 404, 200)
    assert res["refused"]["status"] is None and "ConnectError" in res["refused"]["error"]
    methods = [(m, p) for m, p, _ in srv.requests if p == "/nohead"]
    assert methods == [("HEAD", "/nohead"), ("GET", "/nohead")]
    stored = {r["id"]: dict(r) for r in db.execute("SELECT * FROM bookmark")}
    assert stored[3]["http_status"] == 404 and stored[3]["checked_at"]
    assert stored[5]["check_error"] and stored[1]["check_error"] is None
    r = cli("bookmark", "list", "--broken", "--json")
    assert [b["id"] for b in json.loads(r.stdout)] == [5, 3]
    r = cli("bookmark", "list", "--broken")
    assert "404" in r.stdout and "refused" in r.stdout and "/ok" not in r.stdout


def test_check_limits_requests_per_host(db):
    conn = connect()
    with serve() as srv:
        for i in range(8):
            srv.routes[f"/p{i}"] = Route("x", delay=0.2)
            add_bookmark(conn, srv.url(f"/p{i}"), offline=True)
        res = check_links(conn, workers=8, per_host=2)
    assert all(r["ok"] for r in res) and len(res) == 8
    assert srv.peak <= 2
