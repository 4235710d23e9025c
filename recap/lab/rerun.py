"""``recap rerun ENTRY|RUN``: replay recorded runs and say, metric by metric, if they reproduced."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from recap.errors import RecapError


def run_target(conn: sqlite3.Connection, ref: str) -> tuple[str, list[str]]:
    """(label, [run id]) for a run id or a unique prefix or suffix of one. An entry's runs are
    the week's view's to say (``recap.week.rerun_targets``, which the CLI passes as ``targets``):
    the lab never reads an entry's links."""
    from recap.lab.records import resolve_run

    ref = str(ref).strip()
    if conn.execute("SELECT 1 FROM run WHERE id = ?", (ref,)).fetchone():
        return f"run {ref}", [ref]
    run_id = resolve_run(conn, ref)
    return f"run {run_id}", [run_id]


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def verdicts(spec, recorded: dict, now: dict | None, status: str) -> list[dict]:
    """One row per checked summary key: the primary always, others when they have a tolerance."""
    keys = [spec.primary] + sorted(
        k for k in recorded if k != spec.primary and spec.tolerance_for(k) is not None
    )
    rows = []
    for key in keys:
        tol = spec.tolerance_for(key)
        old = recorded.get(key)
        new = None if now is None else now.get(key)
        if status != "succeeded":
            verdict = status
        elif key not in recorded:
            verdict = "not recorded"
        elif now is None or key not in now:
            verdict = "missing"
        elif _is_number(old) and _is_number(new):
            verdict = "ok" if abs(new - old) <= tol else "DIFFERS"
        else:
            verdict = "ok" if new == old else "DIFFERS"
        rows.append(
            {"metric": key, "recorded": old, "now": new, "tolerance": tol, "verdict": verdict}
        )
    return rows


def rerun(
    conn: sqlite3.Connection,
    ref: str,
    device: str | None = None,
    warn: Callable[[str], None] = lambda _: None,
    targets: tuple[str, list[str]] | None = None,
    watch=None,
) -> dict:
    """Replay every run ``ref`` names with its recorded params and seed; never from the cache.

    Returns {"target", "reproduced", "runs": [{"original", "rerun", "experiment", "status",
    "warnings", "verdicts": [...]}]}.
    """
    from recap.lab import spec as specmod
    from recap.lab.records import run_row
    from recap.lab.runner import run_experiment

    # ``targets``: (label, run ids) resolved by the caller (an entry's live runs: recap.week).
    target, ids = targets or run_target(conn, ref)
    results = []
    for run_id in ids:
        orig = run_row(conn, run_id)
        name = orig["experiment"]
        notes: list[str] = []

        def note(msg: str, notes=notes) -> None:
            notes.append(msg)
            warn(msg)

        if orig["status"] != "succeeded":
            note(f"{name} run {run_id} is {orig['status']}: nothing recorded to reproduce")
            continue
        try:
            folder = specmod.experiment_folder(name)
            spec = specmod.load_spec(folder)
        except RecapError as exc:
            note(f"{name} run {run_id}: cannot rerun: {exc}")
            results.append(
                {
                    "original": run_id,
                    "rerun": None,
                    "experiment": name,
                    "status": "failed",
                    "warnings": notes,
                    "verdicts": [],
                }
            )
            continue
        current = specmod.folder_hash(folder)
        if orig["folder_hash"] and current != orig["folder_hash"]:
            note(
                f"{name}: the experiment folder changed since run {run_id} "
                f"(content {orig['folder_hash'][:12]} -> {current[:12]})"
            )
        if orig["git_commit"]:
            from recap.lab.env import git_state

            now_commit = git_state(folder)["commit"]
            if now_commit != orig["git_commit"]:
                note(
                    f"{name}: the commit changed since run {run_id} "
                    f"({orig['git_commit'][:10]} -> {(now_commit or 'none')[:10]})"
                )
        from recap.lab.launch import Launch

        outcome = run_experiment(
            conn,
            name,
            params=orig["params"],
            seed=orig["seed"],
            device=device or orig["device"] or "auto",
            force=True,
            parent_id=run_id,
            lenient=True,
            watch=watch,  # the CLI's progress line per replayed run
            launch=Launch.replay(orig.get("environment")),  # the same world size and LR rule
        )
        if outcome.status == "interrupted":
            warn(f"{name}: rerun {outcome.run_id} of {run_id} interrupted")
            raise KeyboardInterrupt
        for w in outcome.warnings:
            note(f"{name}: {w}")
        new = run_row(conn, outcome.run_id)
        rows = verdicts(spec, orig["summary"], new["summary"], new["status"])
        results.append(
            {
                "original": run_id,
                "rerun": outcome.run_id,
                "experiment": name,
                "status": new["status"],
                "warnings": notes,
                "verdicts": rows,
            }
        )
    reproduced = bool(results) and all(
        r["status"] == "succeeded"
        and r["verdicts"]
        and all(v["verdict"] == "ok" for v in r["verdicts"])
        for r in results
    )
    return {"target": target, "reproduced": reproduced, "runs": results}
