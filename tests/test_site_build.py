"""Incremental publishing: `recap site build` runs MkDocs only when something it reads changed,
rewrites only files whose bytes changed, and gives the same site as a clean build."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from test_site import POST, add_entry, seed

from recap import db as recap_db

SITE_POST = "blog/2021/01/24/weekly-recap-2021-w03/index.html"
OTHER_POST = "blog/2021/01/10/weekly-recap/index.html"
# Files whose bytes carry the build time (RSS lastBuildDate): a rebuild may rewrite them.
DATED = {"feed_rss_created.xml", "feed_rss_updated.xml", "feed_json_created.json"}


def _state(site: Path) -> dict[str, tuple]:
    out = {}
    for path in site.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(site).as_posix()] = (st.st_ino, st.st_mtime_ns)
    return out


def _bytes(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and p.name not in DATED
    }


@pytest.mark.slow
def test_incremental_build_matches_a_clean_build(log_root, cli, tmp_path):
    seed(log_root)
    site = log_root / "site"
    r = cli("site", "build", "--json")
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["site"]["skipped"] is False and SITE_POST in first["site"]["written"]
    before = _state(site)

    # Nothing changed: MkDocs does not run and nothing under site/ is written.
    r = cli("site", "build")
    assert r.exit_code == 0, r.output
    assert "up to date: nothing changed, mkdocs not run" in r.stdout
    assert _state(site) == before

    # One post changes: its page (and the search index, feeds) are rewritten, others are not.
    conn = recap_db.connect(log_root / "recap.db")
    with recap_db.transaction(conn):
        conn.execute(
            "UPDATE entry SET body = replace(body, 'More next week.', 'Quokkaword next week.') "
            "WHERE slug = 'weekly-recap-2021-w03'"
        )
    conn.close()
    r = cli("site", "build", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)["site"]
    assert out["skipped"] is False
    assert SITE_POST in out["written"] and OTHER_POST not in out["written"]
    assert "search/search_index.json" in out["written"]
    assert not any(w.startswith("assets/") for w in out["written"])
    assert out["pages_reused"] > out["pages_converted"] > 0
    after = _state(site)
    assert after[OTHER_POST] == before[OTHER_POST]
    assert "Quokkaword" in (site / SITE_POST).read_text()
    assert "Quokkaword" in (site / "search/search_index.json").read_text()

    # The cached conversions give the bytes a clean build gives.
    import shutil

    from recap.site.build import _mkdocs_build

    shutil.rmtree(log_root / ".recap-cache")
    clean = tmp_path / "clean-site"
    from recap.site.build import render_root

    _mkdocs_build(log_root, render_root(log_root).redirects, site_dir=clean)
    assert _bytes(site) == _bytes(clean)

    # A file removed from site/ by hand is noticed and put back; --force runs MkDocs anyway.
    (site / OTHER_POST).unlink()
    r = cli("site", "build")
    assert r.exit_code == 0 and "site built in" in r.stdout, r.output
    assert (site / OTHER_POST).is_file()
    r = cli("site", "build", "--force", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)["site"]
    assert out["skipped"] is False and set(out["written"]) <= DATED | {"sitemap.xml.gz"}


@pytest.mark.slow
def test_new_and_deleted_posts_reach_site(log_root, cli):
    seed(log_root)
    assert cli("site", "build").exit_code == 0
    conn = recap_db.connect(log_root / "recap.db")
    with recap_db.transaction(conn):
        add_entry(conn, "fresh-one", "Fresh one", "Wombatword.\n", date="2021-01-25")
        conn.execute("DELETE FROM entry WHERE slug = 'weekly-recap'")
    conn.close()
    r = cli("site", "build", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)["site"]
    assert "blog/2021/01/25/fresh-one/index.html" in out["written"]
    assert OTHER_POST in out["removed"]
    site = log_root / "site"
    assert not (site / OTHER_POST).exists()
    assert "Wombatword" in (site / "blog/index.html").read_text()


@pytest.mark.slow
def test_library_build_prints_nothing(log_root, capfd):
    """build() reports through callbacks; it has no printer or log handler of its own."""
    from recap.site.build import build

    seed(log_root)
    conn = recap_db.connect(log_root / "recap.db")
    add_entry(conn, "broken", "Broken", "See [this](missing-page.md).\n")
    conn.close()
    calls, messages = [], []
    from recap.errors import RecapError

    with pytest.raises(RecapError, match="missing-page.md"):
        build(log_root, progress=lambda *a: calls.append(a), on_message=messages.append)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert ("mkdocs", 0, None) in calls
    assert any("missing-page.md" in m for m in messages)


def test_render_progress_goes_through_the_callback(log_root, capfd):
    from recap.site.build import render_root

    conn = recap_db.connect(log_root / "recap.db")
    with recap_db.transaction(conn):
        for i in range(60):
            add_entry(conn, f"post-{i}", f"Post {i}", "Text.\n")
    conn.close()
    calls = []
    res = render_root(log_root, progress=lambda *a: calls.append(a))
    assert res.posts == 60
    assert calls[0] == ("render", 0, 60) and calls[-1] == ("render", 60, 60)
    assert capfd.readouterr() == ("", "")


def test_plots_are_cached_by_run_and_metrics(log_root, cli, monkeypatch):
    seed(log_root)
    assert cli("site", "build", "--render-only").exit_code == 0
    plot = next((log_root / "docs").rglob("curves-*.png"))
    # An emptied docs/ (a fresh checkout) redraws nothing whose metrics did not change.
    import recap.site.plots as plots

    drawn = []
    real = plots.curves_png
    monkeypatch.setattr(plots, "curves_png", lambda *a: drawn.append(a) or real(*a))
    import shutil

    shutil.rmtree(log_root / "docs" / "blog" / "posts")
    (log_root / "docs" / ".recap-manifest.json").unlink()
    assert cli("site", "build", "--render-only").exit_code == 0
    assert plot.is_file() and drawn == []
    # A new metric value redraws that run's plot.
    conn = recap_db.connect(log_root / "recap.db")
    with recap_db.transaction(conn):
        conn.execute(
            "INSERT INTO metric (run_id, key, step, value, time) VALUES "
            "('r-0001', 'loss', 6, 0.1, '2021-01-25T10:00:00.000Z')"
        )
    conn.close()
    old = plot.read_bytes()
    assert cli("site", "build", "--render-only").exit_code == 0
    assert len(drawn) >= 1 and plot.read_bytes() != old


def test_serve_watcher_rerenders_when_the_database_changes(log_root):
    from recap.site.build import _watch_database, render_root

    seed(log_root)
    render_root(log_root, include_drafts=True)
    stop, messages = threading.Event(), []
    watcher = threading.Thread(target=_watch_database, args=(log_root, stop, messages.append))
    watcher.start()
    try:
        time.sleep(0.3)
        conn = recap_db.connect(log_root / "recap.db")
        with recap_db.transaction(conn):
            conn.execute(
                "UPDATE entry SET body = body || 'Platypusword.' "
                "WHERE slug = 'weekly-recap-2021-w03'"
            )
        conn.close()
        deadline = time.monotonic() + 20
        post = log_root / POST
        while time.monotonic() < deadline and "Platypusword" not in post.read_text():
            time.sleep(0.2)
        assert "Platypusword" in post.read_text()
        assert any("database changed" in m for m in messages)
    finally:
        stop.set()
        watcher.join(timeout=10)
