"""Import and export: Netscape bookmark HTML (Firefox, Chrome, buku), Pinboard JSON, buku's
exports (JSON, Markdown, its .db), and recap's own JSON.

Imports stream: the file is read in chunks, parsed incrementally (html.parser for Netscape HTML,
a streaming reader for JSON arrays) into records (plain dicts) and skips (each with a reason), and
:func:`import_file` writes the records in batches as they come, one transaction each, so memory
stays bounded and a killed import leaves a whole database; running it again completes it exactly
(merging by URL key makes a re-run a no-op).

Text is kept exactly as each format says it reads: entities are decoded once, by the parser of
the format that defines them; nothing is stripped or cut in silence.
"""

from __future__ import annotations

import codecs
import html
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from recap.errors import InvalidInput
from recap.links.store import norm_tags, tags_of, upsert
from recap.links.text import clean
from recap.links.urlkey import check_web_url, url_key
from recap.timeutil import stamp

BATCH = 5000
CHUNK = 1 << 20
# Longer text fields are cut, and the import report says which bookmark and by how much.
MAX_FIELD = 100_000
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
# recap's Netscape export writes the note into the <DD> too (buku and browsers read only that),
# after the description and this separator, so a re-import into recap tells them apart.
NOTE_SEP = "\n\nNote: "
_WS = re.compile(r"\s+")


def _epoch(value, warn: Callable[[str], None] | None = None, what: str = "ADD_DATE"):
    """A browser timestamp (seconds, or ms/us from some exporters) as a UTC stamp; a value that is
    no date at all is reported through ``warn`` and ignored."""
    if value is None or str(value).strip() in ("", "0"):
        return None
    try:
        n = float(str(value).strip())
        if n < 0 or n != n:
            raise ValueError
        for scale in (1, 1e3, 1e6):  # seconds, milliseconds, microseconds
            if n / scale < 1e11:
                return stamp(datetime.fromtimestamp(n / scale, UTC))
        raise ValueError
    except (TypeError, ValueError, OverflowError, OSError):
        if warn:
            warn(f"{what} {str(value)[:40]!r} is not a date in range; ignored")
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


def _text_chunks(path: Path) -> Iterator[str]:
    """The file as text, a chunk at a time (UTF-8, a BOM dropped, bad bytes replaced)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)


# ---------------------------------------------------------------- Netscape HTML
class _Netscape(HTMLParser):
    """Netscape bookmark HTML, fed in chunks; finished records collect in ``out``.

    Character references are decoded exactly once (html.parser does it for attribute values; text
    keeps its references apart so literal whitespace folds as HTML shows it, while an encoded
    newline or double space, as recap's own export writes them, survives).
    """

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.out: list[dict] = []
        self.folders: list[str | None] = []  # one per open <DL>: its folder's tag, or None
        self.pending = None  # the folder name an <H3> announced for the next <DL>
        self.mode = None  # "a", "h3", "dd" while collecting their text
        self.parts: list[tuple[str, bool]] = []  # (text, literal?)
        self.special = False
        self.current: dict | None = None
        self.last: dict | None = None

    # text
    def _text(self) -> str:
        if len(self.parts) == 1 and self.parts[0][1]:  # the common case: one literal run
            text = _WS.sub(" ", self.parts[0][0]).strip(" ")
            self.parts = []
            return clean(text)
        merged: list[list] = []
        for text, literal in self.parts:
            if merged and merged[-1][1] and literal:
                merged[-1][0] += text
            else:
                merged.append([text, literal])
        for item in merged:
            if item[1]:
                item[0] = _WS.sub(" ", item[0])
        if merged and merged[0][1]:
            merged[0][0] = merged[0][0].lstrip(" ")
        if merged and merged[-1][1]:
            merged[-1][0] = merged[-1][0].rstrip(" ")
        self.parts = []
        return clean("".join(t for t, _ in merged))

    def handle_data(self, data):
        if self.mode:
            self.parts.append((data, True))

    def handle_entityref(self, name):
        if self.mode:
            self.parts.append((html.unescape(f"&{name};"), False))

    def handle_charref(self, name):
        if self.mode:
            self.parts.append((html.unescape(f"&#{name};"), False))

    # structure
    def _end_dd(self):
        if self.mode == "dd":
            text = self._text()
            rec = self.last
            if rec is not None:
                note = rec.get("note") or ""
                if note and text == "Note: " + note:
                    text = ""
                elif note and text.endswith(NOTE_SEP + note):
                    text = text[: -len(NOTE_SEP + note)]
                rec["description"] = text
            self.mode = None

    def handle_starttag(self, tag, attrs):
        if tag in ("dt", "dl", "h3", "a", "dd", "hr"):
            self._end_dd()
        if tag == "h3":
            a = dict(attrs)
            self.mode, self.parts, self.last = "h3", [], None
            self.special = "personal_toolbar_folder" in a or "unfiled_bookmarks_folder" in a
        elif tag == "dl":
            self.folders.append(self.pending)
            self.pending = None
        elif tag == "a":
            self.current = {k: v or "" for k, v in attrs}
            self.mode, self.parts = "a", []
        elif tag == "dd" and self.last is not None:
            self.mode, self.parts = "dd", []
        elif tag == "br" and self.mode == "dd":
            self.parts.append(("\n", False))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "dl":
            self._end_dd()
            if self.folders:
                self.folders.pop()
        elif tag == "h3" and self.mode == "h3":
            label = self._text().lower()
            top = len(self.folders) <= 1
            skip = self.special or (top and label in ROOT_FOLDERS)
            self.pending = None if skip else label
            self.mode = None
        elif tag == "a" and self.mode == "a" and self.current is not None:
            self._finish_a()

    def _finish_a(self):
        a = self.current
        warnings: list[str] = []
        tags = a.get("tags", "").split(",") + [f for f in self.folders if f]
        added = _iso(a.get("recap_added")) or _epoch(a.get("add_date"), warnings.append)
        updated = _iso(a.get("recap_updated")) or _epoch(
            a.get("last_modified"), warnings.append, "LAST_MODIFIED"
        )
        unread = a.get("toread", "") in ("1", "true", "yes")
        read_at = None
        if not unread:
            read_at = (
                _iso(a.get("recap_read_at"))
                or _epoch(a.get("read_at"), warnings.append, "READ_AT")
                or added
            )
        rec = {
            "url": (a.get("href") or "").strip(),
            "title": self._text(),
            "tags": norm_tags(tags),
            "added": added,
            "updated": updated,
            "note": clean(a.get("note")),
            "description": clean(a.get("description")),
            "read_at": read_at,
        }
        if a.get("archived") in ("1", "true"):
            rec["archived"] = True
        if warnings:
            rec["warnings"] = warnings
        self.out.append(rec)
        self.current, self.mode, self.last = None, None, rec


def iter_netscape(chunks) -> Iterator[dict]:
    """Records of a Netscape bookmark file given as text chunks, as soon as each is complete.

    The newest record is held back until another one follows, since its ``<DD>`` may still come
    in the next chunk."""
    parser = _Netscape()
    for chunk in chunks:
        parser.feed(chunk)
        if len(parser.out) > 1:
            ready, parser.out = parser.out[:-1], parser.out[-1:]
            yield from ready
    parser.close()
    parser._end_dd()
    yield from parser.out


def parse_netscape(text: str) -> list[dict]:
    return list(iter_netscape([text]))


# ---------------------------------------------------------------- JSON shapes
def _tag_list(value, sep: str | None) -> list[str]:
    """Tags given as one string (split on ``sep``) or as a JSON list."""
    if isinstance(value, list):
        return norm_tags(str(v) for v in value if v is not None)
    return norm_tags(str(value or "").split(sep))


def pinboard_record(p: dict) -> dict:
    added = _iso(p.get("time"))
    return {
        "url": str(p.get("href") or ""),
        "title": clean(p.get("description")),
        "description": clean(p.get("extended")),
        "tags": _tag_list(p.get("tags"), None),
        "added": added,
        "read_at": None if str(p.get("toread", "no")).lower() == "yes" else added,
    }


def buku_record(b: dict) -> dict:
    return {
        "url": str(b.get("uri") or b.get("url") or ""),
        "title": clean(b.get("title")),
        "description": clean(b.get("description") or b.get("desc")),
        "tags": _tag_list(b.get("tags"), ","),
    }


_RECAP_KEEP = (
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


def recap_record(b: dict) -> dict:
    rec = {k: b.get(k) for k in _RECAP_KEEP if k in b}
    rec["url"] = str(rec.get("url") or "")
    rec["tags"] = _tag_list(rec.get("tags"), ",")
    for k in ("title", "description", "note"):
        rec[k] = clean(rec.get(k))
    return rec


def parse_pinboard(data: list) -> list[dict]:
    return [pinboard_record(p) for p in data]


def parse_buku_json(data: list) -> list[dict]:
    return [buku_record(b) for b in data]


def parse_recap_json(data: dict) -> list[dict]:
    return [recap_record(b) for b in data.get("bookmarks", [])]


class _JsonStream:
    """Reads values one by one from JSON text given in chunks, never holding the whole file."""

    def __init__(self, chunks, where: str):
        self.chunks = iter(chunks)
        self.buf, self.pos, self.eof, self.where = "", 0, False, where
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            found = repr(c) if c else "the end of the file"
            raise InvalidInput(f"{self.where} is not valid JSON: expected {chars!r}, found {found}")
        self.pos += 1
        return c

    def value(self):
        self.peek()
        while True:
            try:
                val, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                raise InvalidInput(f"{self.where} is not valid JSON: {exc}") from None
            # A number or literal at the end of a chunk may continue in the next one.
            if end == len(self.buf) and not isinstance(val, (dict, list, str)) and self._more():
                continue
            self.pos = end
            return val

    def array(self) -> Iterator:
        """The items of the array that starts here."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.expect(",]") == "]":
                return


def iter_json(chunks, where: str, fmt: str | None) -> tuple[str, Iterator[dict]]:
    """(format, records) of a JSON bookmark file, streamed: Pinboard or buku (a list of objects)
    or recap's own export (an object whose ``bookmarks`` list is streamed)."""
    stream = _JsonStream(chunks, where)
    first = stream.peek()
    bad = InvalidInput(f"{where}: JSON that is neither Pinboard, buku nor recap bookmarks")
    if first == "{":
        stream.expect("{")
        if stream.peek() == "}":
            raise bad
        key = stream.value()
        stream.expect(":")
        while key != "bookmarks":
            stream.value()
            if stream.expect(",}") == "}":
                raise bad
            key = stream.value()
            stream.expect(":")
        if stream.peek() != "[":
            raise bad

        def recap_items():
            for item in stream.array():
                if not isinstance(item, dict):
                    raise bad
                yield recap_record(item)

        return "json", recap_items()
    if first != "[":
        raise bad
    items = stream.array()
    head = next(items, None)
    if head is None:
        return fmt or "json", iter(())
    if not isinstance(head, dict):
        raise bad
    if fmt == "pinboard" or (fmt != "buku-json" and "href" in head):
        kind, convert = "pinboard", pinboard_record
    elif fmt == "buku-json" or "uri" in head or "url" in head:
        kind, convert = "buku-json", buku_record
    else:
        raise bad

    def records():
        yield convert(head)
        for item in items:
            if not isinstance(item, dict):
                raise bad
            yield convert(item)

    return kind, records()


_MD_LINE = re.compile(
    r"^\s*[-*]\s+(?:\[(?P<title>.*)\]\(<?(?P<url>[^)>\s]+)>?\)|<(?P<raw>[^>]+)>)"
    r"(?:\s+<!-- TAGS: (?P<tags>.*?) -->)?"
    r"(?:\s+<!-- RECAP: (?P<recap>.*?) -->)?"
)


def iter_buku_md(lines) -> Iterator[dict]:
    for line in lines:
        m = _MD_LINE.match(line)
        if not m:
            continue
        rec = {
            "url": m["url"] or m["raw"] or "",
            "title": clean(re.sub(r"\\(.)", r"\1", m["title"] or "")),
            "tags": norm_tags((m["tags"] or "").split(",")),
        }
        if m["recap"]:
            # recap's own Markdown export carries the exact fields beside buku's shape.
            try:
                extra = json.loads(m["recap"])
            except ValueError:
                extra = None
            if isinstance(extra, dict):
                rec.update(recap_record({**extra, "url": rec["url"]}))
                rec["tags"] = norm_tags((m["tags"] or "").split(","))
        yield rec


def parse_buku_md(text: str) -> list[dict]:
    return list(iter_buku_md(text.splitlines()))


def _lines(chunks) -> Iterator[str]:
    rest = ""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split("\n")
        yield from lines
    if rest:
        yield rest


def iter_buku_db(path: Path) -> Iterator[dict]:
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        cur = src.execute("SELECT URL, metadata, tags, desc FROM bookmarks ORDER BY id")
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} is not a buku database: {exc}") from exc
    try:
        for r in cur:
            yield {
                "url": r[0] or "",
                "title": clean(r[1]),
                "tags": norm_tags((r[2] or "").split(",")),
                "description": clean(r[3]),
            }
    finally:
        src.close()


def parse_buku_db(path: Path) -> list[dict]:
    return list(iter_buku_db(path))


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


def iter_file(path: Path, fmt: str | None = None) -> tuple[str, Iterator[dict]]:
    """(format, records) of a bookmark file; the records are read as they are iterated."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    fmt = fmt or detect(path, head)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "buku-db":
        return fmt, iter_buku_db(path)
    if fmt == "html":
        return fmt, iter_netscape(_text_chunks(path))
    if fmt == "buku-md":
        return fmt, iter_buku_md(_lines(_text_chunks(path)))
    return iter_json(_text_chunks(path), str(path), fmt if fmt != "json" else None)


def read_file(path: Path, fmt: str | None = None) -> tuple[str, list[dict]]:
    """(format, records) of a bookmark file, all in memory (small files, tests)."""
    fmt, records = iter_file(path, fmt)
    return fmt, list(records)


def _cut(rec: dict, report: dict) -> None:
    for field in ("title", "description", "note"):
        value = rec.get(field)
        if value and len(value) > MAX_FIELD:
            rec[field] = value[:MAX_FIELD]
            report["cut"].append(
                {
                    "url": rec["url"][:200],
                    "field": field,
                    "from": len(value),
                    "to": MAX_FIELD,
                }
            )


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
    """Merge a bookmark file into the database as it is read, ``batch`` records per transaction;
    returns the report (nothing dropped or cut silently). ``progress(done, None)``: the total is
    not known while streaming."""
    from recap.db import transaction
    from recap.db.bulk import deferred_index

    fmt, records = iter_file(path, fmt)
    when = stamp(now)
    extra = norm_tags(tags)
    report = {
        "file": str(path),
        "format": fmt,
        "read": 0,
        "added": 0,
        "merged": 0,
        "changed": 0,
        "skipped": [],
        "warnings": [],
        "cut": [],
    }

    def write(todo: list[dict]) -> None:
        with transaction(conn), deferred_index(conn, "bookmark"):
            for rec in todo:
                status, _ = upsert(conn, rec, when)
                if status == "added":
                    report["added"] += 1
                else:
                    report["merged"] += 1
                    report["changed"] += status == "merged"
        if progress:
            progress(report["read"], None)

    todo: list[dict] = []
    for rec in records:
        report["read"] += 1
        for warning in rec.pop("warnings", ()):
            report["warnings"].append({"url": (rec.get("url") or "")[:200], "reason": warning})
        try:
            rec["url"] = check_web_url(rec.get("url"))
            rec["url_key"] = url_key(rec["url"])
        except InvalidInput as exc:
            report["skipped"].append(
                {
                    "url": (rec.get("url") or "")[:200],
                    "title": (rec.get("title") or "")[:200],
                    "reason": str(exc),
                }
            )
            continue
        _cut(rec, report)
        rec["tags"] = sorted(set(rec.get("tags") or []) | set(extra))
        rec.setdefault("source", f"import:{fmt}")
        if rec.get("added") and not rec.get("updated"):
            rec["updated"] = rec["added"]
        todo.append(rec)
        if len(todo) >= batch:
            write(todo)
            todo = []
    if todo:
        write(todo)
    if report["read"] == 0:
        raise InvalidInput(f"{path}: no bookmarks in this file (read as {fmt})")
    return report


# ---------------------------------------------------------------- export
def _rows(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM bookmark ORDER BY id").fetchall()


def _html_text(value: str) -> str:
    """Text for an HTML text node that reads back exactly: escaped, and every whitespace that HTML
    would fold (newlines, tabs, runs, ends) written as a character reference."""
    out = html.escape(value, quote=True)
    if not _WS.search(value) or (" " in value and not _ODD_WS.search(value)):
        return out
    return _ODD_WS.sub(lambda m: "".join(f"&#{ord(c)};" for c in m.group(0)), out)


# Whitespace other than single inner spaces: at either end, in runs, or not a plain space.
_ODD_WS = re.compile(r"^\s+|\s+$|\s{2,}|[^\S ]")


def export_html(rows) -> str:
    """Netscape bookmark HTML. Browsers and buku read ADD_DATE (seconds), TAGS and the <DD>
    description, which also carries the note; recap reads its exact fields back (RECAP_* stamps
    with milliseconds, NOTE, DESCRIPTION)."""
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
            f'RECAP_ADDED="{e(r["added"])}"',
            f'RECAP_UPDATED="{e(r["updated"])}"',
        ]
        tags = tags_of(r)
        if tags:
            attrs.append(f'TAGS="{e(",".join(tags))}"')
        if r["note"]:
            attrs.append(f'NOTE="{e(r["note"])}"')
        if r["read_at"] is None:
            attrs.append('TOREAD="1"')
        elif r["read_at"] != r["added"]:
            attrs.append(f'RECAP_READ_AT="{e(r["read_at"])}"')
        if r["archived"]:
            attrs.append('ARCHIVED="1"')
        out.append(f"    <DT><A {' '.join(attrs)}>{_html_text(r['title'] or '')}</A>")
        desc, note = r["description"] or "", r["note"] or ""
        if desc or note:
            dd = desc + NOTE_SEP + note if desc and note else (desc or "Note: " + note)
            out.append(f"    <DD>{_html_text(dd)}")
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


_COMMENT_SAFE = {ord(c): f"\\u{ord(c):04x}" for c in "-<>[]()&"}


def export_md(rows) -> str:
    """buku's Markdown shape (``- [title](url) <!-- TAGS: a,b -->``), with titles escaped, and a
    ``<!-- RECAP: {...} -->`` comment holding the exact fields for a re-import into recap."""
    from recap import markup

    lines = []
    for r in rows:
        line = "- " + markup.link(r["title"] or r["url"], r["url"])
        tags = ",".join(t.replace("--", "- -") for t in tags_of(r))
        exact = {
            k: r[k]
            for k in ("title", "description", "note", "added", "updated", "read_at", "archived")
        }
        # Inside an HTML comment "--" may not appear, and nothing should look like markup or a
        # link: these characters only occur inside JSON strings, so escapes spell them.
        meta = json.dumps(exact, ensure_ascii=False).translate(_COMMENT_SAFE)
        line += f" <!-- TAGS: {tags} -->" if tags else ""
        lines.append(f"{line} <!-- RECAP: {meta} -->")
    return "\n".join(lines) + "\n"


def export(conn, fmt: str) -> tuple[str, int]:
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r} (one of {', '.join(EXPORT_FORMATS)})")
    rows = _rows(conn)
    return {"html": export_html, "json": export_json, "md": export_md}[fmt](rows), len(rows)
