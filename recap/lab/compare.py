"""``recap exp compare``: runs side by side (params, metrics, environment), differences marked."""

from __future__ import annotations

import sqlite3

from recap.lab.records import resolve_run, run_record

SECTIONS = ("run", "params", "summary", "metrics", "environment")


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def compare_runs(conn: sqlite3.Connection, refs: list[str]) -> dict:
    """{"runs": [ids], "rows": [{"section", "key", "values": [...], "differs": bool}]}."""
    records = [run_record(conn, resolve_run(conn, ref)) for ref in refs]
    views = []
    for rec in records:
        views.append(
            {
                "run": {
                    "experiment": rec["experiment"],
                    "status": rec["status"],
                    "seed": rec["seed"],
                    "device": rec["device"],
                    "parent": rec["parent_id"],
                    "duration": rec["duration"],
                    "git_commit": rec["git_commit"],
                    "git_dirty": rec["git_dirty"],
                    "folder_hash": rec["folder_hash"],
                },
                "params": _flatten(rec["params"]),
                "summary": _flatten(rec["summary"]),
                "metrics": {f"{k}.last": v["last"] for k, v in rec["metrics"].items()},
                "environment": _flatten(rec["environment"]),
            }
        )
    rows = []
    for section in SECTIONS:
        keys: list[str] = []
        for view in views:
            keys += [k for k in view[section] if k not in keys]
        for key in keys:
            values = [view[section].get(key) for view in views]
            rows.append(
                {
                    "section": section,
                    "key": key,
                    "values": values,
                    "differs": any(v != values[0] for v in values[1:]),
                }
            )
    return {"runs": [r["id"] for r in records], "rows": rows}
