"""`recap site ...` and `recap publish`: the MkDocs Material site built from the log."""

from __future__ import annotations

import typer

app = typer.Typer(help="The MkDocs Material site built from the log.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="site")
