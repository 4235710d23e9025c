"""The week's links: which bookmarks belong to a weekly entry, and its "## Links" section.

Contract with the journal and the site: ``recap new`` calls :func:`week_bookmark_ids` to make the
entry's link rows; ``recap show`` and the site call :func:`links_markdown` to expand the links
marker. Every string that came from outside goes through recap.markup.
"""

from __future__ import annotations

import sqlite3

from recap.links.store import tags_of, week_range

UNTAGGED = "untagged"


def week_bookmark_ids(conn: sqlite3.Connection, week: str) -> list[int]:
    """Ids of non-archived bookmarks added during ISO week ``week`` (UTC), oldest first."""
    start, end = week_range(week)
    rows = conn.execute(
        "SELECT id FROM bookmark WHERE archived = 0 AND added >= ? AND added < ?"
        " ORDER BY added, id",
        (start, end),
    ).fetchall()
    return [r[0] for r in rows]


def links_markdown(conn: sqlite3.Connection, entry_id: int) -> str:
    """A "## Links" section grouped by tag ("### tag", untagged last); "" if nothing is linked.

    A bookmark with several tags is listed once, so the post never repeats a link: under the
    tag that most of this entry's bookmarks share (topics cluster), ties broken alphabetically.
    """
    from collections import Counter

    from recap import markup

    rows = conn.execute(
        "SELECT b.* FROM link l JOIN bookmark b ON b.id = l.bookmark_id"
        " WHERE l.entry_id = ? ORDER BY b.added, b.id",
        (int(entry_id),),
    ).fetchall()
    if not rows:
        return ""
    counts = Counter(t for r in rows for t in tags_of(r))
    groups: dict[str | None, list[str]] = {}
    for r in rows:
        tags = sorted(tags_of(r), key=lambda t: (-counts[t], t))
        item = f"- {markup.link(r['title'] or r['url'], r['url'])} ({markup.domain(r['url'])})"
        if r["note"]:
            item += f": {markup.text(r['note'], limit=None)}"
        groups.setdefault(tags[0] if tags else None, []).append(item)
    out = ["## Links", ""]
    for tag in sorted(t for t in groups if t is not None) + ([None] if None in groups else []):
        out += [f"### {markup.text(tag) if tag else UNTAGGED.capitalize()}", ""]
        out += groups[tag] + [""]
    return "\n".join(out).rstrip() + "\n"
