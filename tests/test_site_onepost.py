"""One changed post: MkDocs re-renders that post (and the index pages), not every page."""

from __future__ import annotations

import shutil

import pytest
from test_site import add_entry
from test_site_build import DATED, _bytes

from recap import db as recap_db


@pytest.mark.slow
def test_one_changed_post_renders_only_what_depends_on_it(log_root, tmp_path):
    from recap.site.build import _mkdocs_build, build, render_root

    conn = recap_db.connect(log_root / "recap.db")
    with recap_db.transaction(conn):
        for i in range(12):
            add_entry(conn, f"post-{i}", f"Post {i}", f"Text {i}.\n", date=f"2021-02-{i + 1:02d}")
    first = build(log_root)
    assert not first.skipped and first.pages_converted > 12

    with recap_db.transaction(conn):
        conn.execute("UPDATE entry SET body = 'Numbatword.\n' WHERE slug = 'post-3'")
    conn.close()
    res = build(log_root)
    site = log_root / "site"
    assert "blog/2021/02/04/post-3/index.html" in res.site_written
    assert "blog/2021/02/05/post-4/index.html" not in res.site_written
    assert "Numbatword" in (site / "blog/2021/02/04/post-3/index.html").read_text()
    # The post's conversion, its excerpt on the three index pages that list it (blog, archive,
    # category) and their HTML, its search entry, read time, feed description and HTML: a
    # dozen, not one per page (recap's manifest in docs/ once made every page miss).
    assert res.pages_converted <= 12, (res.pages_converted, res.pages_reused)
    assert res.pages_reused >= 12

    # What the cache gave is what a clean build gives.
    shutil.rmtree(log_root / ".recap-cache")
    clean = tmp_path / "clean"
    _mkdocs_build(log_root, render_root(log_root).redirects, site_dir=clean)
    # RSS and JSON feeds carry the build time (their "updated" feeds too, here).
    dated = DATED | {"feed_json_updated.json"}
    ours, theirs = _bytes(site), _bytes(clean)
    assert {k: v for k, v in ours.items() if k not in dated} == {
        k: v for k, v in theirs.items() if k not in dated
    }
    assert set(ours) == set(theirs)
