"""Weekly entries: create (one per ISO week), list, show, edit, search."""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from datetime import date
from pathlib import Path

from recap import db
from recap.errors import InvalidInput
from recap.journal import weeks
from recap.journal.store import add_link, get_entry
from recap.timeutil import stamp

LIST_FIELDS = ("categories", "tags", "aliases")


def slugify(text: str, max_len: int = 60) -> str:
    """ASCII, lower-case, hyphen-separated; never empty, never a path."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return (text[:max_len].rstrip("-")) or "entry"


def unique_slug(conn: sqlite3.Connection, base: str, exclude_id: int | None = None) -> str:
    slug, n = base, 2
    while True:
        row = conn.execute("SELECT id FROM entry WHERE slug = ?", (slug,)).fetchone()
        if row is None or row["id"] == exclude_id:
            return slug
        slug, n = f"{base}-{n}", n + 1


def to_dict(row: sqlite3.Row) -> dict:
    out = dict(row)
    for key in LIST_FIELDS:
        out[key] = json.loads(out[key] or "[]")
    for key in ("draft", "hidden", "search_exclude", "toc"):
        out[key] = bool(out[key])
    return out


def _link_week(conn: sqlite3.Connection, entry_id: int, week: str, now: str) -> dict:
    """Link the week's bookmarks and runs to a new entry; returns how many of each."""
    from recap.lab.week import week_run_ids
    from recap.links.week import week_bookmark_ids

    return {
        "bookmarks": sum(
            add_link(conn, entry_id, now, bookmark_id=bid) for bid in week_bookmark_ids(conn, week)
        ),
        "runs": sum(add_link(conn, entry_id, now, run_id=rid) for rid in week_run_ids(conn, week)),
    }


def new_entry(
    conn: sqlite3.Connection,
    root: Path,
    *,
    week: str | None = None,
    day: date | None = None,
    title: str | None = None,
    body: str | None = None,
) -> tuple[dict, bool, dict]:
    """The weekly entry of ``week`` (or of ``day``, or of today), made from the template if new.

    Returns (entry, created, linked counts). Asking again for a week returns its entry, never a
    second one: the check and the insert share one write transaction.
    """
    from recap import config
    from recap.journal import templates

    if week and day:
        raise InvalidInput("give --week or --date, not both")
    if week:
        week = weeks.normalise_week(week)
        day = weeks.week_end(week)
    else:
        day = day or weeks.today()
        week = weeks.week_of(day)
    cfg = config.load(root)
    now = stamp()
    with db.transaction(conn):
        row = conn.execute(
            "SELECT * FROM entry WHERE kind = 'weekly' AND week = ? ORDER BY id LIMIT 1", (week,)
        ).fetchone()
        if row is not None:
            if body is not None and body != row["body"]:
                conn.execute(
                    "UPDATE entry SET body = ?, updated = ? WHERE id = ?", (body, now, row["id"])
                )
                row = get_entry(conn, row["id"])
            return to_dict(row), False, {"bookmarks": 0, "runs": 0}
        title = title or cfg["entry_title"]
        slug = unique_slug(conn, f"{slugify(title)}-{week.lower()}")
        if body is None:
            body = templates.render(root, cfg, title=title, week=week, day=day.isoformat())
        cur = conn.execute(
            "INSERT INTO entry (slug, title, kind, week, date, body, categories, created, updated)"
            " VALUES (?, ?, 'weekly', ?, ?, ?, ?, ?, ?)",
            (slug, title, week, day.isoformat(), body, json.dumps(["recap"]), now, now),
        )
        linked = _link_week(conn, cur.lastrowid, week, now)
        row = get_entry(conn, cur.lastrowid)
    return to_dict(row), True, linked


def list_entries(
    conn: sqlite3.Connection,
    *,
    week: str | None = None,
    since: date | None = None,
    category: str | None = None,
    body: bool = True,
) -> list[dict]:
    """Entries newest first; ``body=False`` leaves the bodies (most of the bytes) unread."""
    cols = "*"
    if not body:
        cols = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(entry)") if r[1] != "body")
    sql, args = f"SELECT {cols} FROM entry WHERE 1=1", []
    if week:
        sql += " AND week = ?"
        args.append(weeks.normalise_week(week))
    if since:
        sql += " AND date >= ?"
        args.append(since.isoformat())
    if category:
        sql += " AND EXISTS (SELECT 1 FROM json_each(entry.categories) WHERE value = ?)"
        args.append(category)
    sql += " ORDER BY date DESC, id DESC"
    return [to_dict(r) for r in conn.execute(sql, args)]


def expand(conn: sqlite3.Connection, entry: dict) -> str:
    """The entry's body with its links and runs sections in place of the markers."""
    from recap.journal.render import LINKS_MARKER, RUNS_MARKER

    body = entry["body"]
    from recap.lab.week import runs_markdown
    from recap.links.week import links_markdown

    sections = {
        LINKS_MARKER: links_markdown(conn, entry["id"]),
        RUNS_MARKER: runs_markdown(conn, entry["id"]),
    }
    for marker, text in sections.items():
        if marker in body:
            body = body.replace(marker, text.strip())
        elif text:
            body = body.rstrip() + "\n\n" + text.strip() + "\n"
    return re.sub(r"\n{3,}", "\n\n", body)


def linked(conn: sqlite3.Connection, entry_id: int) -> dict:
    rows = conn.execute(
        "SELECT bookmark_id, run_id, experiment_id FROM link WHERE entry_id = ? ORDER BY id",
        (entry_id,),
    ).fetchall()
    return {
        "bookmarks": [r["bookmark_id"] for r in rows if r["bookmark_id"] is not None],
        "runs": [r["run_id"] for r in rows if r["run_id"] is not None],
        "experiments": [r["experiment_id"] for r in rows if r["experiment_id"] is not None],
    }


# -- editing ------------------------------------------------------------------------------------
EDITABLE = ("title", "description", "date", "categories", "tags", "draft")


def to_document(entry: dict) -> str:
    from recap.journal import frontmatter

    meta = {k: entry[k] for k in EDITABLE}
    return frontmatter.join(meta, entry["body"])


def update_from_document(conn: sqlite3.Connection, entry_id: int, text: str) -> bool:
    """Apply an edited document (front matter + body). Returns True if anything changed."""
    from recap.journal import frontmatter

    meta, body = frontmatter.split(text, source="the edited entry")
    unknown = set(meta) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"the edited entry has unknown key(s): {', '.join(sorted(unknown))}")
    current = to_dict(get_entry(conn, entry_id))
    values = {"body": body}
    for key in EDITABLE:
        if key not in meta:
            continue
        value = meta[key]
        if key in ("categories", "tags"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                raise InvalidInput(f"the edited entry: {key} must be a list")
            value = [str(v) for v in value]
        elif key == "date":
            value = weeks.parse_date(str(value)).isoformat()
        elif key == "draft":
            value = bool(value)
        elif value is None:
            value = ""
        else:
            value = str(value)
        values[key] = value
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return False
    if "date" in changed and current["kind"] == "weekly":
        changed["week"] = weeks.week_of(weeks.parse_date(changed["date"]))
    changed["updated"] = stamp()
    for key in LIST_FIELDS:
        if key in changed:
            changed[key] = json.dumps(changed[key], ensure_ascii=False)
    sets = ", ".join(f"{k} = ?" for k in changed)
    with db.transaction(conn):
        conn.execute(f"UPDATE entry SET {sets} WHERE id = ?", (*changed.values(), entry_id))
    return True


# -- search -------------------------------------------------------------------------------------
# Snippet lengths in tokens: a trigram token is one character, a unicode61 token a word.
_SNIPPET = {"entry_trigram": 64, "entry_fts": 12}


def search(conn: sqlite3.Connection, query: str, limit: int = 20) -> list[dict]:
    """Entries containing ``query`` (substrings, any script), best first, each with a snippet.

    Words shorter than three characters (below the trigram index) fall back to LIKE, newest first.
    """
    from recap.db.search import like_where, malformed, plan

    p = plan(query)
    limit = int(limit) if limit else -1
    if p.kind == "like":
        where, args = like_where(("title", "description", "body", "tags", "categories"), p.words)
        rows = conn.execute(
            f"SELECT id, slug, title, date, week, description, body, NULL AS score FROM entry"
            f" WHERE {where} ORDER BY date DESC, id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_like_hit(dict(r), p.words) for r in rows]

    # Whole-word hits first (unicode61, accents folded), then hits only the trigram index finds.
    def ranked(table):
        return (
            f"SELECT rowid, snippet({table}, 2, '[', ']', '…', {_SNIPPET[table]}) AS snippet,"
            f" bm25({table}, 10.0, 5.0, 1.0, 3.0, 3.0) AS score FROM {table}"
            f" WHERE {table} MATCH ? ORDER BY score LIMIT ?"
        )

    sql = (
        f"WITH u AS MATERIALIZED ({ranked('entry_fts')}),"
        f" t AS MATERIALIZED ({ranked('entry_trigram')})"
        " SELECT e.id, e.slug, e.title, e.date, e.week, m.snippet, m.score FROM"
        " (SELECT rowid, snippet, score, 0 AS tier FROM u UNION ALL"
        " SELECT rowid, snippet, score, 1 FROM t WHERE rowid NOT IN (SELECT rowid FROM u)) m"
        " JOIN entry e ON e.id = m.rowid ORDER BY m.tier, m.score, e.id LIMIT ?"
    )
    try:
        rows = conn.execute(sql, (p.expr, limit, p.expr, limit, limit)).fetchall()
    except sqlite3.OperationalError as exc:
        raise malformed(exc, query) from None
    out = []
    for r in rows:
        item = dict(r)
        item["snippet"] = re.sub(r"\s+", " ", item["snippet"] or "").strip()
        out.append(item)
    return out


def _like_hit(item: dict, words: tuple[str, ...]) -> dict:
    """A snippet around the first word found in the body (or the description), marked [like so]."""
    text = re.sub(r"\s+", " ", item.pop("body") or "")
    desc = item.pop("description") or ""
    for source in (text, desc):
        low = source.lower()
        at = min((i for i in (low.find(w.lower()) for w in words) if i >= 0), default=-1)
        if at >= 0:
            w = next(w for w in words if low.find(w.lower()) == at)
            start = max(0, at - 30)
            end = at + len(w)
            item["snippet"] = (
                ("…" if start else "")
                + source[start:at]
                + "["
                + source[at:end]
                + "]"
                + source[end : end + 30]
                + ("…" if end + 30 < len(source) else "")
            ).strip()
            return item
    item["snippet"] = ""
    return item
