"""Runs as a weekly entry reports them: which params matter, parity and sanity, the table.

``recap.week`` decides which runs an entry shows; :func:`runs_markdown` writes them for ``recap
show``, and :func:`key_param_names` / :func:`parity_text` are shared with the site's tables.
"""

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


def _json(raw) -> dict:
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _spec(conn, experiment: str):
    from recap.lab.spec import load_spec
    from recap.paths import log_root

    row = conn.execute("SELECT folder FROM experiment WHERE name = ?", (experiment,)).fetchone()
    if row is None:
        return None
    from pathlib import Path

    folder = Path(row["folder"])
    try:
        return load_spec(folder if folder.is_absolute() else log_root() / folder)
    except Exception:
        return None


def _unresolved(spec, key: str, value) -> bool:
    """A placeholder such as ``epochs=0`` meaning "the preset's value": not worth showing."""
    if spec is None or key not in spec.params:
        return False
    p = spec.params[key]
    return value == p.default and "preset" in (p.help or "") and value in (0, 0.0, "")


def key_param_names(conn, experiment: str, runs: list[dict]) -> list[str]:
    """The params worth a column: the experiment's headline params, then those that differ.

    Headline params are ``spec.headline`` when the spec declares them, else ``preset`` if it
    has one. Values that only say "the preset decides" are skipped.
    """
    spec = _spec(conn, experiment)
    params = [_json(r["params"]) for r in runs]
    headline = list(getattr(spec, "headline", None) or [])
    if not headline and spec is not None and "preset" in spec.params:
        headline = ["preset"]
    keys: list[str] = [
        k
        for k in headline
        if any(k in p for p in params) and not all(_unresolved(spec, k, p.get(k)) for p in params)
    ]
    for p in params:
        for k in p:
            if k in keys:
                continue
            values = {json.dumps(q.get(k), sort_keys=True) for q in params}
            if len(values) > 1 and not all(_unresolved(spec, k, q.get(k)) for q in params):
                keys.append(k)
    return keys


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def params_label(params: dict, keys: list[str]) -> str:
    return ", ".join(f"{k}={fmt(params[k])}" for k in keys if k in params)


def parity_text(summary: dict) -> str:
    """'ok (max diff 3e-07)', 'FAILED (...)' or '' for runs that export nothing."""
    if "parity_ok" not in summary:
        return ""
    diffs = [
        v
        for k, v in summary.items()
        if k.startswith("parity_max_")
        and k != "parity_max_input_diff"
        and isinstance(v, int | float)
    ]
    worst = f" (max diff {max(diffs):.2g})" if diffs else ""
    return ("ok" if summary["parity_ok"] else "FAILED") + worst


def flags_text(summary: dict) -> str:
    flags = summary.get("flags")
    return ", ".join(str(k) for k in flags) if isinstance(flags, dict) and flags else ""


def primary_text(summary: dict, primary: str | None, direction: str) -> str:
    if not primary or not isinstance(summary.get(primary), int | float):
        return "-"
    arrow = "lower is better" if direction == "min" else "higher is better"
    return f"{primary} = {fmt(summary[primary])} ({arrow})"


def _plain(value) -> str:
    return " ".join(str(value).replace("|", "/").replace("`", "'").split())


def runs_markdown(conn: sqlite3.Connection, items) -> str:
    """A "## Runs" section: one table per experiment, with the command reproducing each run."""
    from recap.lab.records import experiment_primary

    if not items:
        return ""
    by_exp: dict[str, list[dict]] = {}
    for i in items:
        by_exp.setdefault(i.row["experiment"], []).append({**i.row, "_note": i.note})
    lines = ["## Runs", ""]
    for name, runs in by_exp.items():
        primary, direction = experiment_primary(conn, name)
        keys = key_param_names(conn, name, runs)
        lines += [
            f"### {_plain(name)}",
            "",
            "| run | key params | primary metric | parity | flags | reproduce |",
            "|---|---|---|---|---|---|",
        ]
        for r in runs:
            summary = _json(r["summary"])
            label = params_label(_json(r["params"]), keys) or "defaults"
            label += f", seed={r['seed']}"
            lines.append(
                f"| `{r['id']}`{'' if r['status'] == 'succeeded' else ' ' + _plain(r['status'])} "
                f"| {_plain(label)} | {_plain(primary_text(summary, primary, direction))} "
                f"| {parity_text(summary) or '-'} | {_plain(flags_text(summary)) or '-'} "
                f"| `recap rerun {r['id']}` |"
            )
        notes = [f"- `{r['id']}`: {_plain(r['_note'])}" for r in runs if r["_note"]]
        lines += [""] + (notes + [""] if notes else [])
    return "\n".join(lines).rstrip() + "\n"
