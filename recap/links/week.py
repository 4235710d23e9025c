"""The entry's "## Links" section as ``recap show`` prints it: readable Markdown.

``recap.week`` decides which bookmarks an entry shows; this only writes them out. Text from
outside (titles, notes) is made one line and free of control characters, and only http(s) URLs
become links; the site escapes the same items for the web through ``recap.site.markdown``.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

from recap.links.store import tags_of

UNTAGGED = "untagged"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def plain(value) -> str:
    """One line of untrusted text, safe to print (no control characters, no escape codes)."""
    return " ".join(_CONTROL.sub(" ", str(value or "")).split())


def domain(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").removeprefix("www.")
    except ValueError:
        return ""


def bookmark_line(url: str, title: str, note: str) -> str:
    label = plain(title or url).replace("[", "(").replace("]", ")")
    safe = url if urlsplit(url).scheme in ("http", "https") else ""
    line = f"- [{label}](<{plain(safe)}>)" if safe else f"- {label}"
    dom = domain(url)
    if dom:
        line += f" ({dom})"
    if note:
        line += f": {plain(note)}"
    return line


def links_markdown(items) -> str:
    """A "## Links" section grouped by tag ("### tag", untagged last); "" if there is nothing.

    ``items`` are ``recap.week.Item``s (bookmark rows with the link's note). A bookmark with
    several tags is listed once, under the tag most of the entry's bookmarks share.
    """
    if not items:
        return ""
    counts = Counter(t for i in items for t in tags_of(i.row))
    groups: dict[str | None, list[str]] = {}
    for i in items:
        r = i.row
        tags = sorted(tags_of(r), key=lambda t: (-counts[t], t))
        line = bookmark_line(r["url"], r["title"], i.note or r["note"])
        groups.setdefault(tags[0] if tags else None, []).append(line)
    out = ["## Links", ""]
    for tag in sorted(t for t in groups if t is not None) + ([None] if None in groups else []):
        out += [f"### {plain(tag) if tag else UNTAGGED.capitalize()}", ""]
        out += groups[tag] + [""]
    return "\n".join(out).rstrip() + "\n"
