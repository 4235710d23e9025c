"""Import and export: Netscape bookmark HTML (Firefox, Chrome, buku), Pinboard JSON, buku's
exports (JSON, Markdown, its .db), and recap's own JSON.

Parsers turn a file into records (plain dicts) and skips (each with a reason); :func:`import_file`
merges the records in batches, one transaction each, so a killed import leaves a whole database
and running it again completes it exactly (merging by URL key makes a re-run a no-op).
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from recap.errors import InvalidInput
from recap.links.store import norm_tags, tags_of, upsert
from recap.links.text import plain
from recap.links.urlkey import check_web_url, url_key
from recap.timeutil import stamp

BATCH = 500
FORMATS = ("html", "pinboard", "buku-json", "buku-md", "buku-db", "json")
EXPORT_FORMATS = ("html", "json", "md")
# Top-level folders every browser makes; they say nothing about the links inside.
ROOT_FOLDERS = {
    "bookmarks menu",
    "bookmarks toolbar",
    "bookmarks bar",
    "other bookmarks",
    "mobile bookmarks",
    "unsorted bookmarks",
    "favorites bar",
    "bookmarks",
    "menu",
    "toolbar",
    "unfiled",
    "other",
}


def _epoch(value) -> str | None:
    """A browser timestamp (seconds, or ms/us from some exporters) as a UTC stamp."""
    try:
        n = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if n <= 0:
        return None
    while n > 1e11:  # milliseconds or microseconds
        n /= 1000
    try:
        return stamp(datetime.fromtimestamp(n, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value) -> str | None:
    if not value:
        return None
    try:
        return stamp(datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")))
    except ValueError:
        return None


def _to_epoch(value: str | None) -> str:
    if not value:
        return "0"
    return str(int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()))


# ---------------------------------------------------------------- Netscape HTML
# The format is a flat stream of a few tags (DL, DT, H3, A, DD), so a tokenizer is enough and
# several times faster than html.parser on a 100,000-bookmark file. Quoted attribute values may
# hold '>' without ending the tag.
_TOKEN = re.compile(
    r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>|<!--.*?-->""", re.S
)
_ATTR = re.compile(r"""([a-zA-Z_:][-\w:.]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def _attrs(raw: str) -> dict:
    out = {}
    for m in _ATTR.finditer(raw):
        val = (
            m.group(2)
            if m.group(2) is not None
            else (m.group(3) if m.group(3) is not None else (m.group(4) or ""))
        )
        out.setdefault(m.group(1).lower(), html.unescape(val) if "&" in val else val)
    return out


def parse_netscape(text: str) -> list[dict]:
    items: list[dict] = []
    folders: list[str | None] = []  # one per open <DL>: its folder's tag, or None
    pending = None  # the folder name an <H3> announced for the next <DL>
    mode, buf, special, current, last = None, [], False, None, None

    def end_dd():
        nonlocal mode
        if mode == "dd" and last is not None:
            last["description"] = plain(html.unescape("".join(buf)))
        if mode == "dd":
            mode = None

    pos = 0
    for m in _TOKEN.finditer(text):
        if mode is not None and m.start() > pos:
            buf.append(text[pos : m.start()])
        pos = m.end()
        name = (m.group(2) or "").lower()
        if not name:  # a comment
            continue
        closing = m.group(1) == "/"
        if not closing and name in ("dt", "dl", "h3", "a", "dd", "hr"):
            end_dd()
        if closing and name == "dl":
            end_dd()
            if folders:
                folders.pop()
        elif closing and name == "h3" and mode == "h3":
            label = plain(html.unescape("".join(buf))).lower()
            top = len(folders) <= 1
            pending = None if (special or (top and label in ROOT_FOLDERS)) else label
            mode = None
        elif closing and name == "a" and mode == "a" and current is not None:
            a = current
            tags = a.get("tags", "").split(",") + [f for f in folders if f]
            added = _epoch(a.get("add_date"))
            unread = a.get("toread", "") in ("1", "true", "yes")
            rec = {
                "url": (a.get("href") or "").strip(),
                "title": plain(html.unescape("".join(buf))),
                "tags": norm_tags(tags),
                "added": added,
                "updated": _epoch(a.get("last_modified")),
                "note": plain(a.get("note")),
                "description": "",
                "read_at": None if unread else (_epoch(a.get("read_at")) or added),
            }
            if a.get("archived") in ("1", "true"):
                rec["archived"] = True
            items.append(rec)
            current, mode, last = None, None, rec
        elif closing:
            continue
        elif name == "h3":
            a = _attrs(m.group(3))
            mode, buf, last = "h3", [], None
            special = "personal_toolbar_folder" in a or "unfiled_bookmarks_folder" in a
        elif name == "dl":
            folders.append(pending)
            pending = None
        elif name == "a":
            current, mode, buf = _attrs(m.group(3)), "a", []
        elif name == "dd" and last is not None:
            mode, buf = "dd", []
        elif name == "br" and mode == "dd":
            buf.append(" ")
    if mode is not None:
        buf.append(text[pos:])
    end_dd()
    return items


# ---------------------------------------------------------------- JSON shapes
def parse_pinboard(data: list) -> list[dict]:
    out = []
    for p in data:
        added = _iso(p.get("time"))
        out.append(
            {
                "url": str(p.get("href") or ""),
                "title": plain(p.get("description")),
                "description": plain(p.get("extended")),
                "tags": norm_tags(str(p.get("tags") or "").split()),
                "added": added,
                "read_at": None if str(p.get("toread", "no")).lower() == "yes" else added,
            }
        )
    return out


def parse_buku_json(data: list) -> list[dict]:
    return [
        {
            "url": str(b.get("uri") or b.get("url") or ""),
            "title": plain(b.get("title")),
            "description": plain(b.get("description") or b.get("desc")),
            "tags": norm_tags(str(b.get("tags") or "").split(",")),
        }
        for b in data
    ]


def parse_recap_json(data: dict) -> list[dict]:
    keep = (
        "url",
        "title",
        "description",
        "note",
        "tags",
        "source",
        "added",
        "updated",
        "read_at",
        "archived",
        "final_url",
        "http_status",
        "check_error",
        "checked_at",
    )
    out = []
    for b in data.get("bookmarks", []):
        rec = {k: b.get(k) for k in keep if k in b}
        rec["url"] = str(rec.get("url") or "")
        for k in ("title", "description", "note"):
            rec[k] = plain(rec.get(k))
        out.append(rec)
    return out


_MD_LINE = re.compile(
    r"^\s*[-*]\s+(?:\[(?P<title>.*)\]\(<?(?P<url>[^)>\s]+)>?\)|<(?P<raw>[^>]+)>)"
    r"(?:\s+<!-- TAGS: (?P<tags>.*?) -->)?"
)


def parse_buku_md(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        m = _MD_LINE.match(line)
        if m:
            out.append(
                {
                    "url": m["url"] or m["raw"] or "",
                    "title": plain(re.sub(r"\\(.)", r"\1", m["title"] or "")),
                    "tags": norm_tags((m["tags"] or "").split(",")),
                }
            )
    return out


def parse_buku_db(path: Path) -> list[dict]:
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = src.execute("SELECT URL, metadata, tags, desc FROM bookmarks ORDER BY id").fetchall()
        src.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} is not a buku database: {exc}") from exc
    return [
        {
            "url": r[0] or "",
            "title": plain(r[1]),
            "tags": norm_tags((r[2] or "").split(",")),
            "description": plain(r[3]),
        }
        for r in rows
    ]


def detect(path: Path, head: bytes) -> str:
    if head.startswith(b"SQLite format 3"):
        return "buku-db"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"[", b"{")):
        return "json"
    if b"netscape-bookmark" in text or b"<dl" in text or path.suffix.lower() in (".html", ".htm"):
        return "html"
    if path.suffix.lower() in (".md", ".markdown"):
        return "buku-md"
    raise InvalidInput(f"cannot tell the format of {path}; pass --format ({', '.join(FORMATS)})")


def read_file(path: Path, fmt: str | None = None) -> tuple[str, list[dict]]:
    """(format, records) of a bookmark file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    raw = path.read_bytes()
    fmt = fmt or detect(path, raw[:4096])
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "buku-db":
        return fmt, parse_buku_db(path)
    text = raw.decode("utf-8-sig", errors="replace")
    if fmt == "html":
        return fmt, parse_netscape(text)
    if fmt == "buku-md":
        return fmt, parse_buku_md(text)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "bookmarks" in data:
        return "json", parse_recap_json(data)
    if isinstance(data, list) and all(isinstance(d, dict) for d in data):
        if fmt == "pinboard" or any("href" in d for d in data):
            return "pinboard", parse_pinboard(data)
        if fmt == "buku-json" or any("uri" in d for d in data):
            return "buku-json", parse_buku_json(data)
        if not data:
            return fmt, []
    raise InvalidInput(f"{path}: JSON that is neither Pinboard, buku nor recap bookmarks")


def import_file(
    conn,
    path: Path,
    fmt: str | None = None,
    *,
    now: datetime | None = None,
    tags=(),
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Merge a bookmark file into the database; returns the report (nothing dropped silently)."""
    from recap.db import transaction

    fmt, records = read_file(path, fmt)
    when = stamp(now)
    extra = norm_tags(tags)
    report = {
        "file": str(path),
        "format": fmt,
        "read": len(records),
        "added": 0,
        "merged": 0,
        "changed": 0,
        "skipped": [],
    }
    todo = []
    for rec in records:
        try:
            rec["url"] = check_web_url(rec.get("url"))
            rec["url_key"] = url_key(rec["url"])
        except InvalidInput as exc:
            report["skipped"].append(
                {
                    "url": (rec.get("url") or "")[:200],
                    "title": rec.get("title", ""),
                    "reason": str(exc),
                }
            )
            continue
        rec["tags"] = sorted(set(rec.get("tags") or []) | set(extra))
        rec.setdefault("source", f"import:{fmt}")
        if rec.get("added") and not rec.get("updated"):
            rec["updated"] = rec["added"]
        todo.append(rec)
    for start in range(0, len(todo), batch):
        with transaction(conn):
            for rec in todo[start : start + batch]:
                status, _ = upsert(conn, rec, when)
                if status == "added":
                    report["added"] += 1
                else:
                    report["merged"] += 1
                    report["changed"] += status == "merged"
        if progress:
            progress(min(start + batch, len(todo)), len(todo))
    return report


# ---------------------------------------------------------------- export
def _rows(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM bookmark ORDER BY id").fetchall()


def export_html(rows) -> str:
    e = lambda s: html.escape(s or "", quote=True)  # noqa: E731
    out = [
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>",
        "<!-- This is an automatically generated file. It will be read and overwritten. -->",
        '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">',
        "<TITLE>Bookmarks</TITLE>",
        "<H1>Bookmarks</H1>",
        "<DL><p>",
    ]
    for r in rows:
        attrs = [
            f'HREF="{e(r["url"])}"',
            f'ADD_DATE="{_to_epoch(r["added"])}"',
            f'LAST_MODIFIED="{_to_epoch(r["updated"])}"',
        ]
        tags = tags_of(r)
        if tags:
            attrs.append(f'TAGS="{e(",".join(tags))}"')
        if r["note"]:
            attrs.append(f'NOTE="{e(r["note"])}"')
        if r["read_at"] is None:
            attrs.append('TOREAD="1"')
        elif r["read_at"] != r["added"]:
            attrs.append(f'READ_AT="{_to_epoch(r["read_at"])}"')
        if r["archived"]:
            attrs.append('ARCHIVED="1"')
        out.append(f"    <DT><A {' '.join(attrs)}>{e(r['title'])}</A>")
        if r["description"]:
            out.append(f"    <DD>{e(r['description'])}")
    out.append("</DL><p>")
    return "\n".join(out) + "\n"


def export_json(rows) -> str:
    from recap.links.store import as_dict

    items = []
    for r in rows:
        d = as_dict(r)
        d.pop("unread", None)
        items.append(d)
    return (
        json.dumps(
            {"format": "recap-bookmarks", "version": 1, "bookmarks": items},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def export_md(rows) -> str:
    """buku's Markdown shape (``- [title](url) <!-- TAGS: a,b -->``), with titles escaped."""
    from recap import markup

    lines = []
    for r in rows:
        line = "- " + markup.link(r["title"] or r["url"], r["url"])
        tags = ",".join(t.replace("--", "- -") for t in tags_of(r))
        lines.append(line + (f" <!-- TAGS: {tags} -->" if tags else ""))
    return "\n".join(lines) + "\n"


def export(conn, fmt: str) -> tuple[str, int]:
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    rows = _rows(conn)
    return {"html": export_html, "json": export_json, "md": export_md}[fmt](rows), len(rows)
