"""`recap feed ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Feeds whose items become unread bookmarks.", no_args_is_help=True)
