"""The recap command line: one Typer app, one module per noun group.

This is the only exit point: library code raises typed errors (``recap.errors``); :func:`main`
turns them into one line on stderr and an exit code, and ``--debug`` shows the traceback instead.
Nothing heavy is imported here: every command imports what it needs inside its function.
"""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from recap import __version__

app = typer.Typer(
    name="recap",
    help="A research log and link tracker: weekly entries, bookmarks, experiments, and the site.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: rendering it through rich costs ~200 ms per call
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def _version(value: bool):
    if value:
        typer.echo(f"recap {__version__}")
        raise typer.Exit()


@app.callback()
def _root_options(
    root: Annotated[
        Path | None,
        typer.Option(
            "--root", help="The log root (else RECAP_ROOT, else found walking up).", envvar=None
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
):
    """A research log and link tracker: weekly entries, bookmarks, experiments, and the site."""
    from recap import paths

    _state["debug"] = debug or bool(os.environ.get("RECAP_DEBUG"))
    paths.set_root_override(root)


def _register() -> None:
    from recap.cli import bookmark, db, entries, exp, feed, site

    entries.register(app)
    app.add_typer(bookmark.app, name="bookmark")
    app.add_typer(feed.app, name="feed")
    exp.register(app)
    site.register(app)
    app.add_typer(db.app, name="db")
    from recap.cli import data as data_cli

    app.add_typer(data_cli.app, name="data")
    for group in app.registered_groups:
        group.typer_instance.rich_markup_mode = None


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import sqlite3

    from recap.errors import RecapError

    _state["debug"] = "--debug" in (argv or sys.argv) or bool(os.environ.get("RECAP_DEBUG"))
    try:
        app(args=argv, prog_name="recap")
    except RecapError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except sqlite3.Error as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: database: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if _state["debug"]:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
