"""Bookmarks in the database: capture (insert or merge by URL key), find, tidy.

Plain ``sqlite3`` only: this module sits on the ``bookmark add`` hot path, which is benchmarked.
Every write is one transaction; merges never move a bookmark's id or its first ``added`` date.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from recap.errors import InvalidInput, NotFound
from recap.links.urlkey import url_key
from recap.timeutil import stamp

# Fields a record may carry into :func:`upsert`, besides url and tags.
TEXT_FIELDS = ("title", "description", "note")
_WS = re.compile(r"\s+")


def norm_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Tags as stored: lower-case, whitespace folded, comma-split, deduplicated, sorted."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out = set()
    for tag in tags:
        for part in str(tag).split(","):
            part = _WS.sub(" ", part).strip().lower()
            if part:
                out.add(part)
    return sorted(out)


def tags_of(row) -> list[str]:
    try:
        return list(json.loads(row["tags"] or "[]"))
    except (ValueError, TypeError):
        return []


def _dump_tags(tags: list[str]) -> str:
    return json.dumps(tags, ensure_ascii=False)


def key_of(row: sqlite3.Row) -> str:
    """The normalised URL key; stored only when it differs from the URL (migration m004)."""
    return row["url_key"] or row["url"]


def as_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    if "url_key" in d:
        d["url_key"] = key_of(row)
    d["tags"] = tags_of(row)
    d["archived"] = bool(d.get("archived"))
    d["unread"] = d.get("read_at") is None
    return d


def upsert(conn: sqlite3.Connection, rec: dict, now: str, override: Iterable[str] = ()) -> tuple:
    """Insert ``rec`` or merge it into the bookmark with the same URL key (no transaction here).

    Returns ``(status, id)`` where status is "added", "merged" (something changed) or "unchanged".
    Merging unions the tags, fills empty text fields, keeps the earliest ``added`` and leaves the
    id alone; fields named in ``override`` (what the user typed explicitly) replace stored values.
    """
    key = rec.get("url_key") or url_key(rec["url"])
    tags = norm_tags(rec.get("tags"))
    row = conn.execute("SELECT * FROM bookmark WHERE coalesce(url_key, url) = ?", (key,)).fetchone()
    if row is None:
        from recap.db.stamps import encode

        added = rec.get("added") or now
        url = rec["url"].strip()
        cur = conn.execute(
            "INSERT INTO bookmark (url, url_key, final_url, title, description, note, tags, source,"
            " feed_id, added, updated, read_at, archived, http_status, check_error, checked_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                url,
                None if key == url else key,  # stored compactly: the same as the URL
                rec.get("final_url"),
                rec.get("title") or "",
                rec.get("description") or "",
                rec.get("note") or "",
                _dump_tags(tags),
                rec.get("source") or "cli",
                rec.get("feed_id"),
                encode(added),
                encode(rec.get("updated") or added),
                encode(rec.get("read_at")),
                int(bool(rec.get("archived"))),
                rec.get("http_status"),
                rec.get("check_error"),
                encode(rec.get("checked_at")),
            ),
        )
        return "added", cur.lastrowid
    override = set(override)
    changes: dict = {}
    merged_tags = sorted(set(tags_of(row)) | set(tags))
    if merged_tags != tags_of(row):
        changes["tags"] = _dump_tags(merged_tags)
    for field in TEXT_FIELDS:
        new = rec.get(field)
        if new and (field in override or not row[field]) and new != row[field]:
            changes[field] = new
    if rec.get("added") and rec["added"] < row["added"]:
        changes["added"] = rec["added"]
    if rec.get("read_at") and not row["read_at"]:
        changes["read_at"] = rec["read_at"]
    if rec.get("final_url") and rec["final_url"] != row["final_url"]:
        changes["final_url"] = rec["final_url"]
    if not changes:
        return "unchanged", row["id"]
    changes["updated"] = max(now, row["updated"])
    sets = ", ".join(f"{k} = ?" for k in changes)
    conn.execute(f"UPDATE bookmark SET {sets} WHERE id = ?", (*changes.values(), row["id"]))
    return "merged", row["id"]


def add_bookmark(
    conn,
    url: str,
    *,
    title: str | None = None,
    tags=(),
    note: str | None = None,
    entry: str | None = None,
    offline: bool = False,
    client=None,
    now: datetime | None = None,
    source: str = "cli",
) -> dict:
    """Capture one URL. Online, the page's title and description fill what was not given.

    Returns ``{"status", "id", "bookmark", "fetch_error"}``; status is "added" or "updated".
    """
    from recap.links.urlkey import check_web_url

    url = check_web_url(url)
    key = url_key(url)
    when = stamp(now)
    rec = {
        "url": url,
        "url_key": key,
        "title": title,
        "note": note,
        "tags": tags,
        "source": source,
        "read_at": when,
    }
    fetch_error = None
    if not offline:
        from recap.links.fetch import fetch_page

        page = fetch_page(url, client=client)
        fetch_error = page.get("error")
        if not title and page.get("title"):
            rec["title"] = page["title"]
        rec["description"] = page.get("description") or None
        if page.get("final_url") and page["final_url"] != url:
            rec["final_url"] = page["final_url"]
        if page.get("status") is not None:
            rec["http_status"], rec["checked_at"] = page["status"], when
    override = [f for f in ("title", "note") if rec.get(f)]
    from recap.db import transaction

    with transaction(conn):
        status, bid = upsert(conn, rec, when, override=override)
        if entry is not None:
            link_entry(conn, entry, bid, when)
    row = get_bookmark(conn, bid)
    return {
        "status": "added" if status == "added" else "updated",
        "id": bid,
        "bookmark": as_dict(row),
        "fetch_error": fetch_error,
    }


def link_entry(conn, entry_ref: str, bookmark_id: int, when: str) -> None:
    """Attach a bookmark to an entry by hand (a ``link`` row); attaching twice is a no-op."""
    from recap.db import linkrows
    from recap.journal.store import get_entry

    entry_id = get_entry(conn, entry_ref)["id"]
    linkrows.add_if_missing(conn, entry_id, "bookmark", bookmark_id, reason="manual", when=when)


def get_bookmark(conn, bid: int | str) -> sqlite3.Row:
    ref = str(bid).strip()
    row = None
    if ref.isdigit():
        row = conn.execute("SELECT * FROM bookmark WHERE id = ?", (int(ref),)).fetchone()
    if row is None:
        raise NotFound(f"no bookmark with id {ref!r} (see 'recap bookmark list')")
    return row


def week_range(week: str) -> tuple[int, int]:
    """The [start, end) of an ISO week like ``2021-W03`` as ``bookmark.added`` stores time
    (milliseconds since 1970, UTC; migration m004), so SQL compares it with the column."""
    from recap.db.stamps import to_ms
    from recap.journal import weeks

    monday, next_monday = weeks.week_bounds(week)
    return (
        to_ms(stamp(datetime(monday.year, monday.month, monday.day, tzinfo=UTC))),
        to_ms(stamp(datetime(next_monday.year, next_monday.month, next_monday.day, tzinfo=UTC))),
    )


def parse_since(value: str) -> str:
    """A date or ISO timestamp -> a comparable UTC stamp."""
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"--since wants a date like 2021-01-18, not {value!r}") from exc
    return stamp(dt)


def iter_bookmarks(
    conn,
    *,
    tag: str | None = None,
    since: str | None = None,
    week: str | None = None,
    unread: bool = False,
    broken: bool = False,
    archived: bool = False,
    limit: int | None = None,
) -> Iterator[sqlite3.Row]:
    """Bookmarks newest first, straight from the cursor: memory stays flat however many match
    (the newest-first order walks the ``added`` index, so a limit reads only that many rows)."""
    where, args = [], []
    if not archived:
        where.append("archived = 0")
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(bookmark.tags) WHERE value = ?)")
        args.append(norm_tags(tag)[0] if norm_tags(tag) else tag)
    if since:
        from recap.db.stamps import to_ms

        where.append("added >= ?")
        args.append(to_ms(parse_since(since)))
    if week:
        start, end = week_range(week)
        where += ["added >= ?", "added < ?"]
        args += [start, end]
    if unread:
        where.append("read_at IS NULL")
    if broken:
        where.append("(check_error IS NOT NULL OR http_status >= 400)")
    sql = "SELECT * FROM bookmark" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY added DESC, id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    cur = conn.execute(sql, args)
    while batch := cur.fetchmany(500):
        yield from batch


def list_bookmarks(conn, **filters) -> list[sqlite3.Row]:
    """:func:`iter_bookmarks` as a list (for small results)."""
    return list(iter_bookmarks(conn, **filters))


# With a limit, ranking looks at most at this many of the newest matches (CANDIDATES_PER_RESULT
# per result asked, at least MIN_CANDIDATES), so a word found in 140,000 bookmarks costs what the
# limit asks, not what the hit count is. Fewer matches than that are all ranked.
CANDIDATES_PER_RESULT = 20
MIN_CANDIDATES = 2000
_BM25 = "bm25(10.0, 3.0, 3.0, 2.0, 5.0)"  # title, description, note, url, tags
_LIKE_COLUMNS = ("title", "description", "note", "url", "tags")


def search(
    conn, query: str, limit: int | None = 100, columns: tuple[str, ...] = ()
) -> list[sqlite3.Row]:
    """Bookmarks whose title, description, note, URL or tags contain ``query``, best first.

    Substrings match in any script (trigram index); words shorter than three characters fall back
    to a LIKE scan, newest first. ``limit`` None or 0 ranks every match. ``columns``: read only
    these bookmark columns (and ``id`` and ``rank``) instead of all of them; same rows, same order.
    """
    from recap.db.search import like_where, malformed, plan

    p = plan(query)
    limit = int(limit) if limit else 0
    if columns and "id" not in columns:
        columns = ("id", *columns)  # the trigram query leaves out the ids already found
    cols = ", ".join(f"b.{_column(c)}" for c in columns) if columns else "b.*"
    if p.kind == "like":
        where, args = like_where(_LIKE_COLUMNS, p.words)
        sql = f"SELECT {cols}, NULL AS rank FROM bookmark b WHERE {where}"
        sql += " ORDER BY added DESC, id DESC"
        if limit:
            sql += f" LIMIT {limit}"
        return conn.execute(sql, args).fetchall()
    # Whole-word hits first (the unicode61 index, accents folded: "creme" -> "Crème"), then, while
    # the limit is not reached, hits only the trigram index finds (substrings: "former" in
    # "Transformer", words inside Japanese text). A common word fills the limit from the cheap
    # word index alone.
    try:
        rows = conn.execute(_joined("bookmark_fts", limit, cols), (p.expr,)).fetchall()
        if not limit or len(rows) < limit:
            seen = json.dumps([r["id"] for r in rows])
            more = limit - len(rows) if limit else 0
            rows += conn.execute(
                _joined("bookmark_trigram", more, cols, True), (p.expr, seen)
            ).fetchall()
    except sqlite3.OperationalError as exc:
        raise malformed(exc, query) from None
    return rows


def _column(name: str) -> str:
    if name not in _BOOKMARK_COLUMNS:
        raise ValueError(f"no bookmark column {name!r}")
    return name


_BOOKMARK_COLUMNS = frozenset(
    "id url url_key final_url title description note tags source feed_id added updated read_at"
    " archived http_status check_error checked_at".split()
)


def _joined(table: str, limit: int, cols: str = "b.*", exclude: bool = False) -> str:
    """The best ``limit`` (0: all) matches of one FTS table with their rows, ranked among bounded
    candidates; ``exclude``: leave out the ids of a JSON list given as a second parameter. Ranking
    happens inside the FTS table (its weighted "rank" column) before the join: about twice as
    fast as bm25() over a join."""
    ranked = f"SELECT rowid, rank FROM {table} WHERE {table} MATCH ? AND rank MATCH '{_BM25}'"
    if exclude:
        ranked += " AND rowid NOT IN (SELECT value FROM json_each(?))"
    if not limit:
        # Ranked outside the FTS table, so only rows past the exclusion are scored ("LIMIT -1"
        # keeps SQLite from folding the ORDER BY back into the FTS scan).
        ranked = f"SELECT rowid, rank FROM ({ranked} LIMIT -1) ORDER BY rank"
    else:
        cap = max(limit * CANDIDATES_PER_RESULT, MIN_CANDIDATES)
        ranked = (
            f"SELECT rowid, rank FROM ({ranked} ORDER BY rowid DESC LIMIT {cap})"
            f" ORDER BY rank LIMIT {limit}"
        )
    return (
        f"SELECT {cols}, f.rank FROM ({ranked}) f"
        " JOIN bookmark b ON b.id = f.rowid ORDER BY f.rank, b.id"
    )


def edit(conn, bid, *, now: datetime | None = None, **fields) -> sqlite3.Row:
    """Change a bookmark's url/title/description/note/read state/archived flag."""
    from recap.db import transaction
    from recap.links.urlkey import check_web_url

    row = get_bookmark(conn, bid)
    when = stamp(now)
    changes = {}
    for field in ("title", "description", "note"):
        if fields.get(field) is not None:
            changes[field] = fields[field]
    if fields.get("url"):
        changes["url"] = check_web_url(fields["url"])
        changes["url_key"] = url_key(changes["url"])
        other = conn.execute(
            "SELECT id FROM bookmark WHERE coalesce(url_key, url) = ? AND id != ?",
            (changes["url_key"], row["id"]),
        ).fetchone()
        if other:
            raise InvalidInput(f"bookmark {other['id']} already has that URL")
    if fields.get("read") is not None:
        changes["read_at"] = (row["read_at"] or when) if fields["read"] else None
    if fields.get("archived") is not None:
        changes["archived"] = int(fields["archived"])
    if not changes:
        raise InvalidInput("nothing to change (see 'recap bookmark edit --help')")
    changes["updated"] = when
    with transaction(conn):
        sets = ", ".join(f"{k} = ?" for k in changes)
        conn.execute(f"UPDATE bookmark SET {sets} WHERE id = ?", (*changes.values(), row["id"]))
    return get_bookmark(conn, row["id"])


def retag(conn, ids: Iterable, add=(), remove=(), now: datetime | None = None) -> list:
    """Add and remove tags on several bookmarks at once (all or none)."""
    from recap.db import transaction

    add, remove = norm_tags(add), set(norm_tags(remove))
    if not add and not remove:
        raise InvalidInput("give tags to add, or --remove tags")
    when = stamp(now)
    out = []
    with transaction(conn):
        for bid in ids:
            row = get_bookmark(conn, bid)
            tags = sorted((set(tags_of(row)) | set(add)) - remove)
            if tags != tags_of(row):
                conn.execute(
                    "UPDATE bookmark SET tags = ?, updated = ? WHERE id = ?",
                    (_dump_tags(tags), when, row["id"]),
                )
            out.append(get_bookmark(conn, row["id"]))
    return out


def remove(conn, ids: Iterable) -> list[int]:
    """Delete bookmarks (their ids are never reused: the table is AUTOINCREMENT)."""
    from recap.db import transaction

    ids = [int(get_bookmark(conn, b)["id"]) for b in ids]
    with transaction(conn):
        conn.executemany("DELETE FROM bookmark WHERE id = ?", [(i,) for i in ids])
    return ids


def dupes(conn) -> list[list[sqlite3.Row]]:
    """Groups of bookmarks whose keys differ only in scheme, ``www.``, index page or case."""
    from recap.links.urlkey import loose_key

    groups: dict[str, list] = {}
    for row in conn.execute("SELECT * FROM bookmark ORDER BY id"):
        groups.setdefault(loose_key(key_of(row)), []).append(row)
    return [g for g in groups.values() if len(g) > 1]


def merge(conn, keep, others: Iterable, now: datetime | None = None) -> sqlite3.Row:
    """Fold ``others`` into ``keep`` (tags, empty fields, links, earliest date) and delete them."""
    from recap.db import linkrows, transaction

    when = stamp(now)
    keep_row = get_bookmark(conn, keep)
    rows = [get_bookmark(conn, o) for o in others if int(o) != keep_row["id"]]
    with transaction(conn):
        for row in rows:
            linkrows.move_bookmark(conn, row["id"], keep_row["id"])
            conn.execute("DELETE FROM bookmark WHERE id = ?", (row["id"],))
            rec = {k: row[k] for k in ("title", "description", "note", "added", "read_at")}
            rec.update(url=keep_row["url"], url_key=key_of(keep_row), tags=tags_of(row))
            upsert(conn, rec, when)
    return get_bookmark(conn, keep_row["id"])
