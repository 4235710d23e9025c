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
    invoke_without_command=True,  # bare `recap`: a short status of the log
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion; costs nothing at start-up
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
    ctx: typer.Context,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root", help="The log root (else RECAP_ROOT, else found walking up).", envvar=None
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Never cut table columns to the terminal's width.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
):
    """A research log and link tracker: weekly entries, bookmarks, experiments, and the site."""
    from recap import paths
    from recap.cli.output import set_wide

    _state["debug"] = debug or bool(os.environ.get("RECAP_DEBUG"))
    paths.set_root_override(root)
    set_wide(wide)
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        _status(ctx)


def _status(ctx: typer.Context) -> None:
    """This week's entry, drafts, unread links and runs since the last entry; help without a log."""
    from recap.errors import RecapError

    try:
        from recap import db, paths
        from recap import week as weekview

        root = paths.log_root()
        st = weekview.status(db.connect(), root)
        lines = _status_text(root, st)
    except RecapError as exc:
        typer.echo(ctx.get_help())
        typer.echo(f"\n{exc}")
        raise typer.Exit(0) from None
    typer.echo("\n".join(lines))
    raise typer.Exit(0)


def _status_text(root, st: dict) -> list[str]:
    e = st["entry"]
    if e is None:
        this = f"this week ({st['week']}): no entry yet - 'recap new' starts it"
    else:
        state = "final" if e["final"] else ("draft" if e["draft"] else "published, live")
        this = (
            f"this week ({st['week']}): {e['slug']} ({state}), shows {st['bookmarks']} "
            f"bookmark(s) and {st['runs']} run(s)"
        )
    drafts = ", ".join(st["drafts"][:3]) + (" ..." if len(st["drafts"]) > 3 else "")
    return [
        f"recap log {root}",
        this,
        f"drafts: {len(st['drafts'])}" + (f" ({drafts})" if drafts else ""),
        f"unread links: {st['unread']}"
        + (" ('recap bookmark list --unread')" if st["unread"] else ""),
        f"runs since the last entry: {st['runs_since']}",
        "more: recap --help",
    ]


def _register() -> None:
    from recap.cli import bookmark, db, entries, exp, feed, site, stylize

    entries.register(app)
    app.add_typer(bookmark.app, name="bookmark")
    app.add_typer(feed.app, name="feed")
    exp.register(app)
    site.register(app)
    stylize.register(app)
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
