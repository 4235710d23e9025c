"""`recap bookmark ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Bookmarks: capture, find, tidy, import, export and check links.", no_args_is_help=True)
