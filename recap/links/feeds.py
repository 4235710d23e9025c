"""Feeds whose items become unread bookmarks.

``pull`` fetches every feed concurrently (conditional GET with ETag / Last-Modified), parses each
with feedparser, and merges the items by URL key, one transaction per feed. A feed that fails
(unreachable, broken XML, empty, not a feed) is reported by name and changes nothing; the others
still go through.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from recap.errors import InvalidInput, NotFound
from recap.links.store import norm_tags, upsert
from recap.links.text import fold, html_text
from recap.links.urlkey import check_web_url, url_key
from recap.timeutil import stamp

MAX_FEED_BYTES = 10_000_000
DEADLINE = 60.0  # seconds to read one feed's body (httpx's timeouts are per operation)


def _is_url(ref: str) -> bool:
    return urlsplit(ref).scheme.lower() in ("http", "https")


def add_feed(conn, ref: str, tags=(), now: datetime | None = None) -> tuple[sqlite3.Row, bool]:
    """Subscribe to a feed URL or a local feed file. Returns (row, created)."""
    from recap.db import transaction

    ref = ref.strip()
    if _is_url(ref):
        check_web_url(ref)
    else:
        path = Path(ref).expanduser()
        if not path.is_file():
            raise InvalidInput(f"not a feed URL (http/https) nor an existing file: {ref!r}")
        ref = str(path.resolve())
    with transaction(conn):
        row = conn.execute("SELECT * FROM feed WHERE url = ?", (ref,)).fetchone()
        if row:
            merged = sorted(set(json.loads(row["tags"])) | set(norm_tags(tags)))
            conn.execute("UPDATE feed SET tags = ? WHERE id = ?", (json.dumps(merged), row["id"]))
            created = False
        else:
            conn.execute(
                "INSERT INTO feed (url, tags, added) VALUES (?, ?, ?)",
                (ref, json.dumps(norm_tags(tags)), stamp(now)),
            )
            created = True
    return conn.execute("SELECT * FROM feed WHERE url = ?", (ref,)).fetchone(), created


def get_feed(conn, ref: str) -> sqlite3.Row:
    ref = str(ref).strip()
    row = None
    if ref.isdigit():
        row = conn.execute("SELECT * FROM feed WHERE id = ?", (int(ref),)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM feed WHERE url = ?", (ref,)).fetchone()
    if row is None and not _is_url(ref) and Path(ref).exists():
        row = conn.execute(
            "SELECT * FROM feed WHERE url = ?", (str(Path(ref).resolve()),)
        ).fetchone()
    if row is None:
        raise NotFound(f"no feed {ref!r} (see 'recap feed list')")
    return row


def list_feeds(conn) -> list[dict]:
    rows = conn.execute(
        "SELECT f.*, (SELECT count(*) FROM bookmark b WHERE b.feed_id = f.id) AS items,"
        " (SELECT count(*) FROM bookmark b WHERE b.feed_id = f.id AND b.read_at IS NULL)"
        " AS unread FROM feed f ORDER BY f.id"
    ).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["tags"] = json.loads(r["tags"] or "[]")
        out.append(d)
    return out


def remove_feed(conn, ref: str) -> sqlite3.Row:
    """Unsubscribe; the bookmarks it brought stay (they lose their feed link)."""
    from recap.db import transaction

    row = get_feed(conn, ref)
    with transaction(conn):
        conn.execute("DELETE FROM feed WHERE id = ?", (row["id"],))
    return row


def fetch_feed(feed: dict, client) -> dict:
    """Raw bytes of one feed (or ``not_modified``), honouring its ETag / Last-Modified."""
    url = feed["url"]
    if not _is_url(url):
        path = Path(url)
        if not path.is_file():
            return {"error": f"file not found: {url}"}
        # The same limit as a remote feed, checked before anything is read into memory.
        if path.stat().st_size > MAX_FEED_BYTES:
            return {"error": f"larger than {MAX_FEED_BYTES} bytes"}
        return {"body": path.read_bytes(), "headers": {}}
    import time

    import httpx

    stop = time.monotonic() + DEADLINE
    headers = {}
    if feed.get("etag"):
        headers["If-None-Match"] = feed["etag"]
    if feed.get("modified"):
        headers["If-Modified-Since"] = feed["modified"]
    try:
        with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 304:
                return {"not_modified": True}
            if resp.status_code >= 400:
                return {"error": f"HTTP {resp.status_code}"}
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    return {"error": f"larger than {MAX_FEED_BYTES} bytes"}
                if time.monotonic() > stop:
                    return {"error": f"gave up reading after {DEADLINE:g} s"}
            return {
                "body": bytes(body),
                "url": str(resp.url),
                "headers": {k.lower(): v for k, v in resp.headers.items()},
            }
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}


def parse_feed(body: bytes, base: str | None, headers: dict) -> dict:
    """feedparser's view of a feed as plain records, or an error saying why it is not usable."""
    import feedparser

    if not body.strip():
        return {"error": "empty response"}
    hdrs = {k: v for k, v in headers.items() if k in ("content-type", "content-language")}
    if base:
        hdrs["content-location"] = base
    # feedparser's HTML sanitiser and relative-URI rewriting only matter for keeping HTML; every
    # field is read as text below (recap.links.text), so they are wasted work.
    parsed = feedparser.parse(
        body, response_headers=hdrs, sanitize_html=False, resolve_relative_uris=False
    )
    exc = parsed.get("bozo_exception")
    benign = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    if not parsed.get("version") and not parsed.entries:
        why = f" ({type(exc).__name__}: {exc})" if exc else ""
        return {"error": "not a feed" + why}
    broken = None
    entries = parsed.entries
    if parsed.get("bozo") and exc is not None and not isinstance(exc, benign):
        # Truncated or broken XML: the items closed before the break are whole and kept; the one
        # the break cut (feedparser's loose parse guesses at it) is not. The feed is reported.
        broken = f"broken feed ({type(exc).__name__}: {exc})"
        low = body.lower()
        entries = entries[: low.count(b"</item>") + low.count(b"</entry>")]
        if not entries:
            return {"error": broken}
    site = parsed.feed.get("link") or ""
    root = base if base and _is_url(base) else site
    items = []
    for e in entries:
        link = e.get("link") or ""
        if not link:
            link = next((x.get("href") for x in e.get("links", []) if x.get("href")), "")
        link = urljoin(root, link.strip()) if root else link.strip()
        title = _field(e, "title")
        when = e.get("published_parsed") or e.get("updated_parsed")
        items.append(
            {
                "url": link,
                "title": title,
                "description": _field(e, "summary"),
                "tags": [t.get("term") for t in e.get("tags", []) if t.get("term")],
                "published": when,
            }
        )
    return {
        "title": _field(parsed.feed, "title"),
        "items": items,
        "encoding": parsed.get("encoding"),
        "broken": broken,
    }


def _field(obj, name: str) -> str:
    """A feed field as text: feedparser has decoded the XML once; a field it says is HTML is read
    as HTML (tags gone, entities decoded), any other is kept as it reads."""
    value = obj.get(name)
    if not value:
        return ""
    kind = (obj.get(f"{name}_detail") or {}).get("type", "")
    return html_text(value) if "html" in kind else fold(value)


def _parse_fetched(feed: dict, got: dict) -> dict:
    if "body" not in got:
        return got
    base = got.get("url") or (feed["url"] if _is_url(feed["url"]) else None)
    out = parse_feed(got["body"], base, got.get("headers", {}))
    out["headers"] = got.get("headers", {})
    return out


def pull(
    conn,
    client=None,
    now: datetime | None = None,
    refs=None,
    workers: int = 8,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[dict]:
    """Pull every feed (or those named in ``refs``). One result per feed, failures included."""
    from recap.db import transaction

    feeds = (
        [dict(get_feed(conn, r)) for r in refs]
        if refs
        else [dict(r) for r in conn.execute("SELECT * FROM feed ORDER BY id")]
    )
    if not feeds:
        return []
    own = client is None and any(_is_url(f["url"]) for f in feeds)
    if own:
        from recap.links.fetch import make_client

        client = make_client(timeout=15.0)
    when = stamp(now)
    now_dt = now or datetime.now(UTC)
    results = []
    try:
        # Threads only fetch (I/O); parsing and storing stay on this thread. Parsing is CPU-bound
        # under the GIL anyway, and a parser thread would stall every sqlite call here while it
        # holds the GIL for its whole switch interval.
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(feeds)))) as pool:
            futures = [(f, pool.submit(fetch_feed, f, client)) for f in feeds]
            for done, (feed, fut) in enumerate(futures, 1):
                got = _parse_fetched(feed, fut.result())
                results.append(_store(conn, feed, got, when, now_dt, transaction))
                if progress:
                    progress(done, len(feeds), feed["url"])
    finally:
        if own:
            client.close()
    return results


def _store(conn, feed: dict, got: dict, when: str, now_dt: datetime, transaction) -> dict:
    res = {
        "feed": feed["id"],
        "url": feed["url"],
        "title": feed["title"],
        "status": "ok",
        "added": 0,
        "merged": 0,
        "skipped": [],
        "error": None,
    }
    if got.get("error"):
        res.update(status="failed", error=got["error"])
        with transaction(conn):
            conn.execute(
                "UPDATE feed SET last_pull = ?, last_error = ? WHERE id = ?",
                (when, got["error"], feed["id"]),
            )
        return res
    if got.get("not_modified"):
        res["status"] = "not modified"
        with transaction(conn):
            conn.execute(
                "UPDATE feed SET last_pull = ?, last_error = NULL WHERE id = ?", (when, feed["id"])
            )
        return res
    feed_tags = json.loads(feed["tags"] or "[]")
    # A broken feed keeps no validators, so the next pull fetches it again in full.
    headers = {} if got.get("broken") else got.get("headers", {})
    with transaction(conn):
        for item in got["items"]:
            try:
                item["url"] = check_web_url(item["url"])
                item["url_key"] = url_key(item["url"])
            except InvalidInput as exc:
                res["skipped"].append(
                    {"url": item["url"][:200], "title": item["title"], "reason": str(exc)}
                )
                continue
            # An item is dated by its publication when it has one (not in the future).
            added, published = when, item.pop("published", None)
            if published:
                try:
                    pub = datetime(*tuple(published)[:6], tzinfo=UTC)
                except (TypeError, ValueError):
                    pub = None
                if pub and pub < now_dt:
                    added = stamp(pub)
            rec = {
                **item,
                "tags": norm_tags(item["tags"] or []) + feed_tags,
                "source": feed["url"],
                "feed_id": feed["id"],
                "added": added,
                "read_at": None,
            }
            status, _ = upsert(conn, rec, when)
            res["added" if status == "added" else "merged"] += 1
        conn.execute(
            "UPDATE feed SET title = ?, etag = ?, modified = ?, last_pull = ?, last_error = ?"
            " WHERE id = ?",
            (
                got.get("title") or feed["title"],
                headers.get("etag"),
                headers.get("last-modified"),
                when,
                got.get("broken"),
                feed["id"],
            ),
        )
    res["title"] = got.get("title") or feed["title"]
    if got.get("broken"):
        res.update(status="broken", error=got["broken"])
    return res
