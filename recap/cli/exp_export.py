"""`recap exp export RUN --profile ...`: re-export a finished run's model (the ML core)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

PROFILES = ("barracuda", "sentis", "latest", "torchscript")


def register(exp_app: typer.Typer) -> None:
    """Add the export command to the `exp` group."""
    exp_app.command("export")(export_run)


def export_run(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix of one).")],
    profile: Annotated[
        str, typer.Option("--profile", help="barracuda | sentis | latest | torchscript")
    ] = "sentis",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Re-export a finished run's model into its run folder for another engine."""
    from recap.errors import InvalidInput

    if profile not in PROFILES:
        raise InvalidInput(f"unknown profile {profile!r}: use one of {', '.join(PROFILES)}")
    from recap import db, paths
    from recap.errors import require

    for module in ("torch", "onnx", "onnxruntime"):
        require(module, "ml")
    conn = db.connect()
    row = _find_run(conn, run)
    run_dir = paths.runs_dir() / row["experiment"] / row["id"]
    if not run_dir.is_dir() and row["log_path"]:
        # the runner may record where the run wrote; its log sits in the run folder
        run_dir = (paths.log_root() / row["log_path"]).parent
    from recap.ml.reexport import reexport

    dest, report = reexport(run_dir, profile)
    _record(conn, row["id"], run_dir, dest, profile)
    result = {"run": row["id"], "profile": profile, "folder": str(dest), **report}
    if as_json:
        from recap.cli.output import print_json

        print_json(result)
        return
    verdict = "ok" if report["ok"] else "MISMATCH"
    opset = f", opset {report['opset']}" if report["opset"] else ""
    typer.echo(
        f"{row['id']}: exported {profile}{opset} to {dest} "
        f"(torch vs export max diff {report['max_raw_diff']:.2g}: {verdict})"
    )


def _find_run(conn, ref: str):
    from recap.errors import InvalidInput, NotFound

    rows = conn.execute(
        "SELECT run.id, run.params, experiment.name AS experiment, run.log_path FROM run "
        "JOIN experiment ON experiment.id = run.experiment_id "
        "WHERE run.id = ? OR run.id LIKE ? ESCAPE '\\' ORDER BY run.id = ? DESC LIMIT 3",
        (ref, ref.replace("%", "\\%").replace("_", "\\_") + "%", ref),
    ).fetchall()
    if not rows:
        raise NotFound(f"no run {ref!r}")
    if len(rows) > 1 and rows[0][0] != ref:
        raise InvalidInput(f"run {ref!r} is ambiguous ({rows[0][0]}, {rows[1][0]}, ...)")
    return {
        "id": rows[0][0],
        "params": json.loads(rows[0][1] or "{}"),
        "experiment": rows[0][2],
        "log_path": rows[0][3],
    }


def _record(conn, run_id: str, run_dir, dest, profile: str) -> None:
    """Artifact rows for every file of the new export folder, in one transaction."""
    from recap.db import transaction
    from recap.fsutil import sha256_file
    from recap.ml.export import bundle_files

    with transaction(conn):
        for f, kind in bundle_files(dest):
            conn.execute(
                "INSERT OR REPLACE INTO artifact (run_id, path, kind, sha256, size, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    f.relative_to(run_dir).as_posix(),
                    "report" if f.name == "parity.json" else kind,
                    sha256_file(f),
                    f.stat().st_size,
                    json.dumps({"profile": profile}),
                ),
            )
