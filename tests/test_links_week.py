"""The entry's Links section as ``recap show`` prints it: grouped by tag, readable, inert."""

from __future__ import annotations

from datetime import UTC, datetime

from recap import week
from recap.db import connect
from recap.links.store import add_bookmark
from recap.links.week import links_markdown


def _add(conn, url, when, **kw):
    return add_bookmark(conn, url, offline=True, now=when, **kw)["id"]


def test_links_markdown_groups_by_tag_and_is_readable_and_inert(db):
    conn = connect()
    when = datetime(2021, 1, 19, tzinfo=UTC)
    _add(
        conn,
        "https://www.arxiv.org/abs/1",
        when,
        title="Pose [transformers]\x1b[31m",
        tags=["pose", "ml"],
        note="read\nthis",
    )
    _add(conn, "https://unity.example/onnx", when, title="ONNX in Unity", tags=["unity"])
    _add(conn, "https://plain.example/x", when, note="no tags, no title")
    _add(conn, "https://pose.example/2", when, title="Second pose link", tags=["pose"])
    conn.execute(
        "INSERT INTO entry (slug, title, kind, week, date, created, updated) VALUES "
        "('w3', 'Week 3', 'weekly', '2021-W03', '2021-01-22', 'x', 'x')"
    )
    assert links_markdown([]) == ""
    md = links_markdown(week.view(conn, 1, {}).bookmarks)
    # "pose" is shared by two links, so the ml+pose one is grouped under pose, not ml; domains
    # read as typed (no backslash escapes), control characters are gone.
    assert md == (
        "## Links\n\n"
        "### pose\n\n"
        "- [Pose (transformers) (31m](<https://www.arxiv.org/abs/1>) (arxiv.org): read this\n"
        "- [Second pose link](<https://pose.example/2>) (pose.example)\n\n"
        "### unity\n\n"
        "- [ONNX in Unity](<https://unity.example/onnx>) (unity.example)\n\n"
        "### Untagged\n\n"
        "- [https://plain.example/x](<https://plain.example/x>) (plain.example): "
        "no tags, no title\n"
    )
    assert "\x1b" not in md
