"""`recap exp export RUN --target ...`: re-export a finished run's model, as a lab job."""

from __future__ import annotations

from typing import Annotated

import typer


def register(exp_app: typer.Typer) -> None:
    """Add the export command to the `exp` group."""
    exp_app.command("export")(export_run)


def export_run(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix or suffix of one).")],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "--profile",
            help="Engine target: barracuda | sentis | latest | torchscript (see recap.ml.targets).",
        ),
    ] = "sentis",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
):
    """Re-export a finished run's model into its run folder for another engine."""
    from recap import db
    from recap.errors import RecapError, require
    from recap.lab.runner import export_run as export_job

    for module in ("torch", "onnx", "onnxruntime"):
        require(module, "ml")
    out = export_job(db.connect(), run, target)
    if out.status == "interrupted":
        typer.echo(f"{out.run_id}: export {out.target} interrupted; the run is unchanged", err=True)
        raise typer.Exit(130)
    if out.status != "succeeded":
        last = (out.error or "").strip().splitlines()[-1:] or ["(no detail)"]
        raise RecapError(f"{out.run_id}: export {out.target} failed: {last[0]}")
    report = out.report
    if as_json:
        from recap.cli.output import print_json

        print_json({"run": out.run_id, "folder": str(out.folder), **report})
        return
    verdict = "ok" if report["ok"] else "MISMATCH"
    opset = f", opset {report['opset']}" if report["opset"] else ""
    typer.echo(
        f"{out.run_id}: exported {out.target}{opset} to {out.folder} "
        f"(torch vs export max diff {report['max_raw_diff']:.2g}: {verdict})"
    )
