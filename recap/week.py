"""The week's view: an entry with its bookmarks and runs, composed live from the database.

The one place above ``journal``, ``links`` and ``lab`` that knows how they meet. ``recap show``,
the editor's view, ``recap site build``, ``recap link``/``unlink``/``publish`` and ``recap rerun
ENTRY`` all call it, so the arrows point one way: cli/site -> week -> journal, links, lab -> db.

A weekly entry that is not final shows, at every render, the week's automatic set (the rules in
``recap.toml``'s ``[autolink]``) plus what was linked by hand, minus what was unlinked. Publishing
with ``recap publish`` makes it final: the automatic set is frozen into link rows, and later
captures no longer change the post.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from recap.db import linkrows
from recap.errors import InvalidInput, NotFound
from recap.timeutil import stamp

BOOKMARK_SOURCES = ("cli", "import", "feed")
FEED_RULES = ("all", "read", "none")
RUN_RULES = ("succeeded", "all", "none")


@dataclass
class Item:
    """One thing shown in an entry: a bookmark, run or experiment row, and why it is there."""

    kind: str
    id: object
    row: dict
    note: str = ""
    why: str = ""
    manual: bool = False


@dataclass
class WeekView:
    entry: dict
    bookmarks: list[Item] = field(default_factory=list)
    runs: list[Item] = field(default_factory=list)
    experiments: list[Item] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)

    def items(self) -> list[Item]:
        return [*self.bookmarks, *self.runs, *self.experiments]

    def as_json(self) -> dict:
        def one(i: Item) -> dict:
            label = i.row.get("url") or i.row.get("name") or i.id
            return {"kind": i.kind, "id": i.id, "label": label, "note": i.note, "why": i.why}

        return {
            "final": bool(self.entry.get("final")),
            "bookmarks": [one(i) for i in self.bookmarks],
            "runs": [one(i) for i in self.runs],
            "experiments": [one(i) for i in self.experiments],
            "excluded": self.excluded,
        }


# -- rules --------------------------------------------------------------------------------------
def rules(cfg: dict) -> dict:
    """The auto-link rules of ``[autolink]`` in recap.toml, checked."""
    from recap.config import DEFAULTS

    out = dict(DEFAULTS["autolink"])
    out.update(cfg.get("autolink") or {})
    sources = out["bookmarks"]
    if isinstance(sources, str):
        sources = [sources]
    bad = [s for s in sources if s not in BOOKMARK_SOURCES]
    if bad:
        raise InvalidInput(
            f"recap.toml: autolink.bookmarks: unknown source(s) {', '.join(map(str, bad))}"
            f" (use {', '.join(BOOKMARK_SOURCES)})"
        )
    out["bookmarks"] = list(sources)
    if out["feed"] not in FEED_RULES:
        raise InvalidInput(f"recap.toml: autolink.feed must be one of {', '.join(FEED_RULES)}")
    if out["runs"] not in RUN_RULES:
        raise InvalidInput(f"recap.toml: autolink.runs must be one of {', '.join(RUN_RULES)}")
    return out


def _auto_bookmarks(conn, week: str, rule: dict) -> list[tuple[sqlite3.Row, str]]:
    from recap.links.store import week_range

    start, end = week_range(week)
    out: list[tuple[sqlite3.Row, str]] = []
    clauses = []
    if "cli" in rule["bookmarks"]:
        clauses.append(
            (
                "feed_id IS NULL AND source = 'cli' AND added >= :start AND added < :end",
                f"captured by hand in {week}",
            )
        )
    if "import" in rule["bookmarks"]:
        clauses.append(
            (
                "feed_id IS NULL AND source LIKE 'import%' AND added >= :start AND added < :end",
                f"imported in {week}",
            )
        )
    if "feed" in rule["bookmarks"] and rule["feed"] != "none":
        if rule["feed"] == "read":
            clauses.append(
                (
                    "feed_id IS NOT NULL AND read_at >= :start AND read_at < :end",
                    f"feed item read in {week}",
                )
            )
        else:
            clauses.append(
                ("feed_id IS NOT NULL AND added >= :start AND added < :end", f"feed item of {week}")
            )
    bounds = {"start": start, "end": end}  # integer stamps since m004 (recap.db.stamps)
    seen: set[int] = set()
    for where, why in clauses:
        for row in conn.execute(
            f"SELECT * FROM bookmark WHERE archived = 0 AND {where} ORDER BY added, id", bounds
        ):
            if row["id"] not in seen:
                seen.add(row["id"])
                out.append((row, why))
    return out


def _auto_runs(conn, week: str, rule: dict) -> list[tuple[sqlite3.Row, str]]:
    from recap.lab.week import week_bounds

    if rule["runs"] == "none":
        return []
    start, end = week_bounds(week)
    status = "AND r.status = 'succeeded'" if rule["runs"] == "succeeded" else ""
    rows = conn.execute(
        "SELECT r.*, e.name AS experiment, e.project AS project FROM run r "
        "JOIN experiment e ON e.id = r.experiment_id WHERE r.parent_id IS NULL "
        f"AND r.status != 'running' {status} AND r.started >= ? AND r.started < ? "
        "ORDER BY r.started, r.id",
        (start, end),
    ).fetchall()
    return [(r, f"run in {week} ({r['status']})") for r in rows]


def _automatic(conn, entry: dict, cfg: dict) -> tuple[list, list]:
    if entry.get("kind") != "weekly" or not entry.get("week"):
        return [], []
    rule = rules(cfg)
    return _auto_bookmarks(conn, entry["week"], rule), _auto_runs(conn, entry["week"], rule)


# -- the view -----------------------------------------------------------------------------------
def _entry(conn, entry) -> dict:
    from recap.journal.entries import to_dict
    from recap.journal.store import get_entry

    if isinstance(entry, dict):
        return entry
    if isinstance(entry, sqlite3.Row):
        return to_dict(entry)
    return to_dict(get_entry(conn, entry))


def view(conn: sqlite3.Connection, entry, cfg: dict | None = None) -> WeekView:
    """What the entry shows now: its links and runs, each with the reason it is there."""
    if cfg is None:
        from recap import config, paths

        cfg = config.load(paths.log_root())
    entry = _entry(conn, entry)
    out = WeekView(entry=entry)
    rows = linkrows.rows(conn, entry["id"])
    excluded = {("bookmark", r["bookmark_id"]) for r in rows if r["reason"] == "excluded"} | {
        ("run", r["run_id"]) for r in rows if r["reason"] == "excluded"
    }
    notes = {
        (k, r[col]): r["note"]
        for r in rows
        for k, col in linkrows.KINDS.items()
        if r[col] is not None
    }
    manual = {
        (k, r[col])
        for r in rows
        for k, col in linkrows.KINDS.items()
        if r[col] is not None and r["reason"] == "manual"
    }
    bookmarks: dict[int, Item] = {}
    runs: dict[str, Item] = {}

    def add_bookmark(row, why):
        if row["id"] in bookmarks and why == "linked by hand":
            bookmarks[row["id"]].why += ", and linked by hand"
        if row["id"] in bookmarks or ("bookmark", row["id"]) in excluded:
            return
        key = ("bookmark", row["id"])
        bookmarks[row["id"]] = Item(
            "bookmark", row["id"], dict(row), notes.get(key, ""), why, key in manual
        )

    def add_run(row, why):
        if row["id"] in runs and why == "linked by hand":
            runs[row["id"]].why += ", and linked by hand"
        if row["id"] in runs or ("run", row["id"]) in excluded:
            return
        key = ("run", row["id"])
        runs[row["id"]] = Item("run", row["id"], dict(row), notes.get(key, ""), why, key in manual)

    if not entry.get("final"):
        auto_bm, auto_runs = _automatic(conn, entry, cfg)
        for row, why in auto_bm:
            add_bookmark(row, why)
        for row, why in auto_runs:
            add_run(row, why)
    kept = "manual" if not entry.get("final") else ("manual", "auto")
    for r in rows:
        if r["reason"] not in kept:
            continue
        why = "linked by hand" if r["reason"] == "manual" else "frozen when published"
        if r["bookmark_id"] is not None:
            b = conn.execute("SELECT * FROM bookmark WHERE id = ?", (r["bookmark_id"],)).fetchone()
            # Archiving a bookmark takes it out of a live post; a final one keeps its history.
            if b is not None and (entry.get("final") or not b["archived"]):
                add_bookmark(b, why)
        elif r["run_id"] is not None:
            run = conn.execute(
                "SELECT r.*, e.name AS experiment, e.project AS project FROM run r "
                "JOIN experiment e ON e.id = r.experiment_id WHERE r.id = ?",
                (r["run_id"],),
            ).fetchone()
            if run is not None:
                add_run(run, why)
        else:
            e = conn.execute(
                "SELECT * FROM experiment WHERE id = ?", (r["experiment_id"],)
            ).fetchone()
            if e is not None:
                out.experiments.append(
                    Item("experiment", e["id"], dict(e), r["note"], why, r["reason"] == "manual")
                )
    out.bookmarks = sorted(bookmarks.values(), key=lambda i: (i.row["added"], i.id))
    out.runs = sorted(runs.values(), key=lambda i: (i.row["started"], i.id))
    out.excluded = [
        {"kind": k, "id": v} for k, v in sorted(excluded, key=lambda kv: (kv[0], str(kv[1])))
    ]
    return out


def run_ids(conn: sqlite3.Connection, entry) -> list[str]:
    """The runs an entry shows, then each linked experiment's latest succeeded original run."""
    v = view(conn, entry)
    ids = [i.id for i in v.runs]
    for e in v.experiments:
        row = conn.execute(
            "SELECT id FROM run WHERE experiment_id = ? AND status = 'succeeded' "
            "AND parent_id IS NULL ORDER BY started DESC LIMIT 1",
            (e.id,),
        ).fetchone()
        if row is not None and row["id"] not in ids:
            ids.append(row["id"])
    return ids


def rerun_targets(conn: sqlite3.Connection, ref: str) -> tuple[str, list[str]]:
    """(label, run ids) that ``recap rerun REF`` replays: a run (its id), else every run the
    entry ``ref`` shows (its live links and rules), else a run by a unique prefix or suffix."""
    from recap.journal.store import get_entry
    from recap.lab.rerun import run_target

    ref = str(ref).strip()
    if conn.execute("SELECT 1 FROM run WHERE id = ?", (ref,)).fetchone():
        return f"run {ref}", [ref]
    try:
        entry = get_entry(conn, ref)
    except NotFound:
        try:
            return run_target(conn, ref)
        except NotFound:
            raise NotFound(
                f"no run and no entry {ref!r} (see 'recap exp runs', 'recap list')"
            ) from None
    ids = run_ids(conn, entry)
    if not ids:
        raise InvalidInput(
            f"entry {entry['slug']!r} links no runs (add some with 'recap link ENTRY --run ID')"
        )
    return f"entry {entry['slug']}", ids


# -- linking by hand ----------------------------------------------------------------------------
def _resolve_target(conn, run, exp, bookmark) -> tuple[str, object, dict]:
    from recap.lab.records import resolve_run

    if sum(x is not None for x in (run, exp, bookmark)) != 1:
        raise InvalidInput("give exactly one of --run, --exp, --bookmark")
    if run is not None:
        run_id = resolve_run(conn, run)
        return "run", run_id, {"run": run_id}
    if exp is not None:
        row = conn.execute("SELECT id FROM experiment WHERE name = ?", (exp,)).fetchone()
        if row is None:
            raise NotFound(f"no experiment {exp!r} with recorded runs (see 'recap exp list')")
        return "experiment", row["id"], {"experiment": exp}
    ref = str(bookmark).strip()
    row = (
        conn.execute("SELECT id FROM bookmark WHERE id = ?", (int(ref),)).fetchone()
        if ref.isdigit()
        else None
    )
    if row is None:
        raise NotFound(f"no bookmark {ref!r} (see 'recap bookmark list')")
    return "bookmark", row["id"], {"bookmark": row["id"]}


def link(conn, entry_ref, *, run=None, exp=None, bookmark=None, note: str | None = None) -> dict:
    """Link an entry to one run, experiment or bookmark; linking again updates the note."""
    from recap.db import transaction

    entry = _entry(conn, entry_ref)
    kind, target, label = _resolve_target(conn, run, exp, bookmark)
    with transaction(conn):
        link_id, created = linkrows.put(conn, entry["id"], kind, target, reason="manual", note=note)
    row = linkrows.find(conn, entry["id"], kind, target)
    return {
        "id": link_id,
        "entry": entry["id"],
        "slug": entry["slug"],
        **label,
        "note": row["note"],
        "created": created,
    }


def unlink(conn, entry_ref, *, run=None, exp=None, bookmark=None) -> dict:
    """Take a run, experiment or bookmark out of an entry, automatic links included.

    A bookmark or run of the week stays out (an ``excluded`` row); an experiment link is deleted.
    """
    from recap.db import transaction

    entry = _entry(conn, entry_ref)
    kind, target, label = _resolve_target(conn, run, exp, bookmark)
    shown = {(i.kind, i.id) for i in view(conn, entry).items()}
    with transaction(conn):
        existing = linkrows.find(conn, entry["id"], kind, target)
        if kind == "experiment":
            if existing is not None:
                linkrows.delete(conn, existing["id"])
        else:
            linkrows.put(conn, entry["id"], kind, target, reason="excluded", note="")
    return {
        "entry": entry["id"],
        "slug": entry["slug"],
        **label,
        "removed": (kind, target) in shown,
    }


def link_bookmark(conn, entry_ref, bookmark_id: int, when: str) -> None:
    """``bookmark add --entry``: a manual link, kept if already there."""
    entry = _entry(conn, entry_ref)
    linkrows.add_if_missing(conn, entry["id"], "bookmark", bookmark_id, reason="manual", when=when)


# -- publishing ---------------------------------------------------------------------------------
def publish(conn, entry_ref, *, freeze: bool = True) -> dict:
    """Publish an entry (draft off); ``freeze`` makes it final with its links frozen as now."""
    from recap.db import transaction

    entry = _entry(conn, entry_ref)
    v = view(conn, entry)
    now = stamp()
    with transaction(conn):
        frozen = 0
        if freeze and not entry.get("final"):
            for item in [*v.bookmarks, *v.runs]:
                frozen += linkrows.add_if_missing(
                    conn, entry["id"], item.kind, item.id, reason="auto", when=now
                )
        conn.execute(
            "UPDATE entry SET draft = 0, final = ?, updated = ? WHERE id = ?",
            (1 if freeze else int(bool(entry.get("final"))), now, entry["id"]),
        )
    return {
        "id": entry["id"],
        "slug": entry["slug"],
        "draft": False,
        "final": freeze or bool(entry.get("final")),
        "frozen_links": frozen,
        "was_draft": bool(entry.get("draft")),
    }


# -- text ---------------------------------------------------------------------------------------
def expand(conn: sqlite3.Connection, entry, cfg: dict | None = None) -> str:
    """The entry's body as Markdown with its links and runs in place and empty sections left out.

    What ``recap show`` prints; the site renders the same view through ``recap.site``.
    """
    from recap.journal import render
    from recap.lab.week import runs_markdown
    from recap.links.week import links_markdown

    v = view(conn, entry, cfg)
    body = v.entry["body"] or ""
    sections = {
        render.LINKS_MARKER: links_markdown(v.bookmarks),
        render.RUNS_MARKER: runs_markdown(conn, v.runs),
    }
    for marker, text in sections.items():
        if marker in body:
            body = body.replace(marker, text.strip(), 1).replace(marker, "")
        elif text:
            body = body.rstrip() + "\n\n" + text.strip() + "\n"
    return render.drop_empty_sections(body)


def summary_counts(v: WeekView) -> dict:
    return {"bookmarks": len(v.bookmarks), "runs": len(v.runs), "experiments": len(v.experiments)}


def dumps(v: WeekView) -> str:
    return json.dumps(v.as_json(), ensure_ascii=False)


# -- status -------------------------------------------------------------------------------------
def status(conn: sqlite3.Connection, root) -> dict:
    """Bare ``recap``: this week's entry, drafts, unread links, runs since the last entry."""
    from recap import config
    from recap.journal import weeks

    week = weeks.week_of(weeks.today())
    row = conn.execute(
        "SELECT * FROM entry WHERE kind = 'weekly' AND week = ? ORDER BY id LIMIT 1", (week,)
    ).fetchone()
    out = {"week": week, "entry": None, "bookmarks": 0, "runs": 0}
    if row is not None:
        v = view(conn, row, config.load(root))
        out.update(entry=v.entry, bookmarks=len(v.bookmarks), runs=len(v.runs))
    out["drafts"] = [
        r[0] for r in conn.execute("SELECT slug FROM entry WHERE draft = 1 ORDER BY date DESC")
    ]
    out["unread"] = conn.execute(
        "SELECT count(*) FROM bookmark WHERE read_at IS NULL AND archived = 0"
    ).fetchone()[0]
    last = conn.execute("SELECT max(created) FROM entry").fetchone()[0]
    out["runs_since"] = conn.execute(
        "SELECT count(*) FROM run WHERE parent_id IS NULL AND started > ?", (last or "",)
    ).fetchone()[0]
    return out
