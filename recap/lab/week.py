"""Runs for weekly entries: the week's runs for ``recap new``, the Runs section for ``show``."""

from __future__ import annotations

import json
import sqlite3


def week_bounds(week: str) -> tuple[str, str]:
    """The ISO week's [Monday, next Monday) as date texts comparable with run.started."""
    from recap.journal import weeks

    monday, next_monday = weeks.week_bounds(week)
    return monday.isoformat(), next_monday.isoformat()


def week_run_ids(conn: sqlite3.Connection, week: str) -> list[str]:
    """Succeeded original runs (not reruns) started in ``week``, oldest first."""
    start, end = week_bounds(week)
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM run WHERE status = 'succeeded' AND parent_id IS NULL "
            "AND started >= ? AND started < ? ORDER BY started, id",
            (start, end),
        )
    ]


def _cell(value) -> str:
    """A table cell: text made inert (no pipes, no markup)."""
    from recap.markup import text

    return text(str(value), limit=120)


def _code(value: str) -> str:
    """A code span inside a table cell: readable as is, and unable to break the table."""
    value = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    return f"`{value[:200]}`"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def runs_markdown(conn: sqlite3.Connection, entry_id: int) -> str:
    """A "## Runs" section for the runs linked to an entry, with the command reproducing each."""
    from recap.lab.records import experiment_primary

    rows = conn.execute(
        "SELECT r.id, e.name, r.status, r.params, r.summary, r.seed FROM link l "
        "JOIN run r ON r.id = l.run_id JOIN experiment e ON e.id = r.experiment_id "
        "WHERE l.entry_id = ? ORDER BY r.started, r.id",
        (entry_id,),
    ).fetchall()
    if not rows:
        return ""
    primaries: dict[str, str | None] = {}
    lines = [
        "## Runs",
        "",
        "| experiment | run | status | key params | primary metric | reproduce |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["name"] not in primaries:
            primaries[r["name"]] = experiment_primary(conn, r["name"])[0]
        primary = primaries[r["name"]]
        params = json.loads(r["params"] or "{}")
        summary = json.loads(r["summary"] or "{}")
        key_params = " ".join([*(f"{k}={_fmt(v)}" for k, v in params.items()), f"seed={r['seed']}"])
        metric = _code(f"{primary} = {_fmt(summary[primary])}") if primary in summary else "-"
        lines.append(
            f"| {_cell(r['name'])} | `{r['id']}` | {r['status']} | {_code(key_params)} "
            f"| {metric} | `recap rerun {r['id']}` |"
        )
    return "\n".join(lines) + "\n"
