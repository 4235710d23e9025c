"""The week's links: which bookmarks belong to a week, and the entry's Links section."""

from __future__ import annotations

from datetime import UTC, datetime

from recap.db import connect
from recap.links.store import add_bookmark
from recap.links.week import links_markdown, week_bookmark_ids


def _add(conn, url, when, **kw):
    return add_bookmark(conn, url, offline=True, now=when, **kw)["id"]


def test_week_ids_follow_iso_weeks_in_utc(db):
    conn = connect()
    a = _add(conn, "https://a.example/", datetime(2021, 1, 17, 23, 59, tzinfo=UTC))  # W02
    b = _add(conn, "https://b.example/", datetime(2021, 1, 18, 0, 0, tzinfo=UTC))  # W03 Monday
    c = _add(conn, "https://c.example/", datetime(2021, 1, 24, 23, 59, 59, tzinfo=UTC))
    d = _add(conn, "https://d.example/", datetime(2021, 1, 20, tzinfo=UTC))
    _add(conn, "https://e.example/", datetime(2021, 1, 25, tzinfo=UTC))  # W04
    conn.execute("UPDATE bookmark SET archived = 1 WHERE id = ?", (d,))
    assert week_bookmark_ids(conn, "2021-W03") == [b, c]
    assert week_bookmark_ids(conn, "2021-W02") == [a]
    assert week_bookmark_ids(conn, "2020-W10") == []


def test_links_markdown_groups_by_tag_and_escapes_untrusted_text(db):
    conn = connect()
    when = datetime(2021, 1, 19, tzinfo=UTC)
    ids = [
        _add(
            conn,
            "https://www.arxiv.org/abs/1",
            when,
            title="Pose *transformers*",
            tags=["pose", "ml"],
            note="read [this](javascript:alert(1))",
        ),
        _add(
            conn, "https://unity.example/onnx", when, title="<b>ONNX</b> in Unity", tags=["unity"]
        ),
        _add(conn, "https://plain.example/x", when, note="no tags, no title"),
        _add(conn, "https://pose.example/2", when, title="Second pose link", tags=["pose"]),
    ]
    conn.execute(
        "INSERT INTO entry (slug, title, week, date, created, updated) VALUES "
        "('w3', 'Week 3', '2021-W03', '2021-01-22', 'x', 'x')"
    )
    assert links_markdown(conn, 1) == ""
    for bid in ids:
        conn.execute("INSERT INTO link (entry_id, bookmark_id, created) VALUES (1, ?, 'x')", (bid,))
    md = links_markdown(conn, 1)
    # "pose" is shared by two links, so the ml+pose one is grouped under pose, not ml.
    assert md == (
        "## Links\n\n"
        "### pose\n\n"
        "- [Pose \\*transformers\\*](<https://www.arxiv.org/abs/1>) (arxiv\\.org): "
        "read \\[this\\]\\(javascript:alert\\(1\\)\\)\n"
        "- [Second pose link](<https://pose.example/2>) (pose\\.example)\n\n"
        "### unity\n\n"
        "- [&lt;b&gt;ONNX&lt;/b&gt; in Unity](<https://unity.example/onnx>) (unity\\.example)\n\n"
        "### Untagged\n\n"
        "- [https://plain\\.example/x](<https://plain.example/x>) (plain\\.example): "
        "no tags, no title\n"
    )
    assert "<b>" not in md and "](javascript" not in md
