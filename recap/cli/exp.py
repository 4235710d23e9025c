"""`recap exp ...`, `recap link` and `recap rerun`: experiments, runs and their links to entries."""

from __future__ import annotations

import typer

app = typer.Typer(help="Experiments and their recorded runs.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    from recap.cli import exp_export

    exp_export.register(app)
    root.add_typer(app, name="exp")
