"""`--json` on the commands that report something: feed rm, bookmark export, db *, site deploy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "links"


def test_feed_rm_json(cli, db):
    r = cli("feed", "add", DATA / "rss20.xml", "--json")
    assert r.exit_code == 0, r.output
    feed = json.loads(r.stdout)
    r = cli("feed", "rm", str(feed["id"]), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "removed": {"id": feed["id"], "url": feed["url"], "title": feed["title"]}
    }
    assert db.execute("SELECT count(*) FROM feed").fetchone()[0] == 0
    r = cli("feed", "rm", str(feed["id"]), "--json")
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.count("\n") == 1


def test_bookmark_export_json_to_a_file(cli, db, tmp_path):
    for url in ("https://a.example/x", "https://b.example/y"):
        assert cli("bookmark", "add", url, "--offline").exit_code == 0
    out = tmp_path / "all.md"
    r = cli("bookmark", "export", out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"file": str(out), "format": "md", "bookmarks": 2}
    assert "https://a.example/x" in out.read_text() and "https://b.example/y" in out.read_text()
    # to stdout the export is the output: --json there is a one-line error, nothing written
    r = cli("bookmark", "export", "-", "--json")
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.startswith("error: --json reports")


def test_db_path_backup_dump_load_json(cli, db, log_root, tmp_path):
    cli("new", "--week", "2021-W03", "--no-edit")
    r = cli("db", "path", "--json")
    assert json.loads(r.stdout) == {"path": str(log_root / "recap.db"), "exists": True}

    copy = tmp_path / "copy.db"
    r = cli("db", "backup", copy, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"file": str(copy), "bytes": copy.stat().st_size}
    assert sqlite3.connect(copy).execute("SELECT count(*) FROM entry").fetchone()[0] == 1

    dump_file = tmp_path / "log.dump"
    r = cli("db", "dump", dump_file, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    # rows counted as the dump holds them: one JSON line per row after the header lines
    lines = dump_file.read_text().splitlines()
    assert report["file"] == str(dump_file)
    assert report["rows"] == sum(1 for line in lines[1:] if not line.startswith('{"table"'))
    assert report["rows"] >= 1
    r = cli("db", "dump", "--json")
    assert r.exit_code == 2 and r.stdout == "" and "--json reports a dump" in r.stderr

    cli("new", "--week", "2021-W04", "--no-edit")
    assert db.execute("SELECT count(*) FROM entry").fetchone()[0] == 2
    r = cli("db", "load", dump_file, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "file": str(dump_file),
        "rows": report["rows"],
        "database": str(log_root / "recap.db"),
    }
    fresh = sqlite3.connect(log_root / "recap.db")
    assert fresh.execute("SELECT count(*) FROM entry").fetchone()[0] == 1

    r = cli("db", "check", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True


@pytest.mark.slow
def test_site_deploy_dry_run_json(cli, log_root):
    from test_site import seed

    seed(log_root)
    r = cli("site", "deploy", "--dry-run", "--json", "--branch", "pages")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    site = log_root / "site"
    assert plan["site_dir"] == str(site) and plan["dry_run"] is True and plan["pushed"] is False
    assert plan["branch"] == "pages" and plan["remote"] == "origin"
    files = [p for p in site.rglob("*") if p.is_file()]
    assert plan["files"] == len(files) and plan["bytes"] == sum(p.stat().st_size for p in files)
    assert not (log_root / ".git").exists()  # nothing pushed
