"""`recap db ...`: where the database is, its health, backups, and text dumps."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from recap.cli.output import print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

app = typer.Typer(
    help="The log's SQLite database: path, check, backup, dump, load.", no_args_is_help=True
)


@app.command("path")
def path_cmd(json_: JsonOpt = False):
    """Print the database file of this log."""
    from recap import paths

    path = paths.db_path()
    if json_:
        print_json({"path": str(path), "exists": path.exists()})
        return
    typer.echo(path)


@app.command("check")
def check_cmd(json_: JsonOpt = False):
    """Check integrity, foreign keys and the schema version."""
    from recap import db
    from recap.db.dump import check

    conn = db.connect(create=False)
    report = check(conn)
    if json_:
        print_json(report)
    else:
        typer.echo(f"integrity: {'ok' if report['ok'] else '; '.join(report['integrity'])}")
        typer.echo(f"schema: {report['schema_version']} (head {report['head']})")
        typer.echo("rows: " + ", ".join(f"{k} {v}" for k, v in report["rows"].items()))
        if report.get("bytes"):
            b = report["bytes"]
            typer.echo(
                f"size: {b['data'] / 1e6:.1f} MB of data, "
                f"{b['search_indexes'] / 1e6:.1f} MB of full-text search indexes"
            )
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("backup")
def backup_cmd(
    file: Annotated[Path, typer.Argument(help="Where to write the copy.")],
    json_: JsonOpt = False,
):
    """Copy the database with SQLite's backup API (safe while others write)."""
    from recap import db
    from recap.db.dump import backup

    backup(db.connect(create=False), file)
    if json_:
        print_json({"file": str(file), "bytes": file.stat().st_size})
        return
    typer.echo(f"backed up to {file}")


@app.command("dump")
def dump_cmd(
    file: Annotated[Path | None, typer.Argument(help="Output file (default: stdout).")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Report the dump as JSON (when writing a file).")
    ] = False,
):
    """Write a deterministic text dump that can live in git."""
    from recap import db
    from recap.db.dump import dump
    from recap.errors import InvalidInput
    from recap.fsutil import atomic_write

    if json_ and file is None:
        raise InvalidInput("--json reports a dump to a FILE; without one the dump is the output")
    conn = db.connect(create=False)
    if file is None:
        dump(conn, sys.stdout)
        return
    import io

    buf = io.StringIO()
    n = dump(conn, buf)
    atomic_write(file, buf.getvalue())
    if json_:
        print_json({"file": str(file), "rows": n})
        return
    typer.echo(f"dumped {n} rows to {file}", err=True)


@app.command("load")
def load_cmd(
    file: Annotated[Path, typer.Argument(help="A file written by 'recap db dump'.")],
    json_: JsonOpt = False,
):
    """Replace the database with the contents of a dump."""
    from recap import paths
    from recap.db.dump import load

    n = load(file, paths.db_path())
    if json_:
        print_json({"file": str(file), "rows": n, "database": str(paths.db_path())})
        return
    typer.echo(f"loaded {n} rows from {file}")
