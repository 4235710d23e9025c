"""`recap stylize RUN INPUT...`: stylise images, folders and videos with a finished style run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("stylize")(stylize_cmd)


def stylize_cmd(
    run: Annotated[str, typer.Argument(help="A style run id (or a unique prefix or suffix).")],
    inputs: Annotated[
        list[Path], typer.Argument(help="Images, videos or folders of them.", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default: the run folder's stylized/)."),
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="Resize inputs to WIDTHxHEIGHT first.")
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="torch | onnx | compiled")] = "torch",
    json_: Annotated[bool, typer.Option("--json", help="Print the outputs as JSON.")] = False,
):
    """Stylise images, folders and videos with a style run's model."""
    from recap.errors import InvalidInput, require

    if backend not in ("torch", "onnx", "compiled"):
        raise InvalidInput(f"unknown backend {backend!r}: use torch, onnx or compiled")
    for module in ("torch", "onnxruntime", "av"):
        require(module, "ml")
    from recap import db
    from recap.cli.bookmark import _progress
    from recap.lab.records import resolve_run, run_row
    from recap.lab.runner import run_dir_of
    from recap.ml.style.experiment import size_of
    from recap.ml.style.stylize import stylize

    conn = db.connect()
    rec = run_row(conn, resolve_run(conn, run))
    run_dir = run_dir_of(rec)
    dest = out or run_dir / "stylized"
    wh = size_of(size) if size else None
    update, bar = _progress(f"stylizing with {rec['id']}")
    with bar:
        records = stylize(run_dir, inputs, dest, wh, backend, progress=update)
    if json_:
        from recap.cli.output import print_json

        print_json({"run": rec["id"], "backend": backend, "outputs": records})
        return
    for r in records:
        what = f"{r['frames']} frames" if r["kind"] == "video" else "image"
        typer.echo(f"{r['output']}  ({what}, {r['width']}x{r['height']})")
    typer.echo(f"{len(records)} output(s) in {dest}")
