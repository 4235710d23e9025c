"""Top-level commands about the log and its entries: init, new, list, show, edit, search, import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recap.cli.output import print_json, print_table


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new log (made if missing).")],
    title: Annotated[str, typer.Option(help="The site's title.")] = "Research log",
):
    """Make a new log root: mkdocs.yml, docs/, experiments/, recap.toml and the database."""
    from recap.logroot import init_root

    root, made = init_root(folder, title=title)
    typer.echo(f"log root {root}: " + (f"made {', '.join(made)}" if made else "already complete"))


def register(app: typer.Typer) -> None:
    app.command("init")(init)
