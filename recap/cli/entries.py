"""Top-level commands about the log and its entries: init, new, list, show, edit, search, import."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from recap.cli.output import print_json, print_table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new log (made if missing).")],
    title: Annotated[str, typer.Option(help="The site's title.")] = "Research log",
):
    """Make a new log root: mkdocs.yml, docs/, experiments/, recap.toml and the database."""
    from recap.logroot import init_root

    root, made = init_root(folder, title=title)
    typer.echo(f"log root {root}: " + (f"made {', '.join(made)}" if made else "already complete"))


def _read_body(body_file: Path | None) -> str | None:
    if body_file is not None:
        from recap.errors import InvalidInput

        try:
            data = sys.stdin.buffer.read() if str(body_file) == "-" else body_file.read_bytes()
        except FileNotFoundError:
            raise InvalidInput(f"no such body file: {body_file}") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise InvalidInput(f"cannot read body file {body_file}: {exc.strerror}") from None
        # A body is UTF-8 text; a binary file (an image, an archive) is refused, not mangled.
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            raise InvalidInput(f"body file {body_file} is not UTF-8 text (a binary file?)")
        return text
    if not sys.stdin.isatty():
        import select

        try:  # piped text is the body; an idle or closed stdin is not
            ready, _, _ = select.select([sys.stdin], [], [], 0.05)
        except (ValueError, OSError, TypeError):
            ready = [sys.stdin]
        if ready:
            text = sys.stdin.read()
            return text if text.strip() else None
    return None


def new(
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2021-W03.")] = None,
    date: Annotated[str | None, typer.Option(help="A day of the week, e.g. 2021-01-24.")] = None,
    title: Annotated[str | None, typer.Option(help="Title (default from recap.toml).")] = None,
    no_edit: Annotated[bool, typer.Option("--no-edit", help="Do not open $EDITOR.")] = False,
    body_file: Annotated[
        Path | None, typer.Option("--body-file", help="Take the body from a file ('-': stdin).")
    ] = None,
    json_: JsonOpt = False,
):
    """Create (or open) the weekly entry, pre-filled with the week's links and runs."""
    from recap import db, paths
    from recap.journal import entries, weeks

    day = weeks.parse_date(date) if date else None
    body = _read_body(body_file)
    conn = db.connect()
    entry, created, linked = entries.new_entry(
        conn, paths.log_root(), week=week, day=day, title=title, body=body
    )
    if not (no_edit or body is not None or json_):
        _edit(conn, entry["id"])
        entry = entries.to_dict(entries.get_entry(conn, entry["id"]))
    if json_:
        print_json({**entry, "created_now": created, "linked": linked})
        return
    verb = "created" if created else "opened existing"
    extra = ""
    if created and (linked["bookmarks"] or linked["runs"]):
        extra = f"; linked {linked['bookmarks']} bookmark(s), {linked['runs']} run(s)"
    where = f"({entry['week']}, {entry['date']})"
    typer.echo(f"{verb} entry {entry['id']} {entry['slug']} {where}{extra}")


def _edit(conn, entry_id: int) -> bool:
    from recap.journal import entries
    from recap.journal.editor import edit_text

    entry = entries.to_dict(entries.get_entry(conn, entry_id))
    return entries.update_from_document(conn, entry_id, edit_text(entries.to_document(entry)))


def list_cmd(
    week: Annotated[str | None, typer.Option(help="Only this ISO week, e.g. 2021-W03.")] = None,
    since: Annotated[str | None, typer.Option(help="Only entries on or after this date.")] = None,
    category: Annotated[str | None, typer.Option(help="Only entries in this category.")] = None,
    json_: JsonOpt = False,
):
    """List entries, newest first."""
    from recap import db
    from recap.journal import entries, weeks

    rows = entries.list_entries(
        db.connect(),
        week=week,
        since=weeks.parse_date(since) if since else None,
        category=category,
        body=False,  # never shown here: do not read them
    )
    if json_:
        print_json(rows)
        return
    print_table(
        ["id", "date", "week", "slug", "title", "categories"],
        [
            [
                r["id"],
                r["date"],
                r["week"],
                r["slug"],
                r["title"] + (" (draft)" if r["draft"] else ""),
                ",".join(r["categories"]),
            ]
            for r in rows
        ],
        empty="no entries",
    )


def show(
    entry: Annotated[str, typer.Argument(help="Entry id or slug.")],
    json_: JsonOpt = False,
):
    """Show an entry with its links and runs filled in."""
    from recap import db
    from recap.journal import entries

    conn = db.connect()
    item = entries.to_dict(entries.get_entry(conn, entry))
    text = entries.expand(conn, item)
    if json_:
        print_json({**item, "rendered": text, "linked": entries.linked(conn, item["id"])})
        return
    typer.echo(f"# {item['title']}\n")
    typer.echo(
        f"{item['date']} · {item['week']} · {item['slug']} · "
        f"{', '.join(item['categories']) or 'no category'}"
    )
    if item["description"]:
        typer.echo(f"\n{item['description']}")
    typer.echo("\n" + text.rstrip())


def edit(entry: Annotated[str, typer.Argument(help="Entry id or slug.")]):
    """Edit an entry (front matter and body) in $EDITOR."""
    from recap import db
    from recap.journal import entries

    conn = db.connect()
    row = entries.get_entry(conn, entry)
    changed = _edit(conn, row["id"])
    typer.echo(f"{'saved' if changed else 'no change to'} entry {row['id']} {row['slug']}")


def search(
    query: Annotated[str, typer.Argument(help='FTS5 query: words, "phrases", OR, prefix*.')],
    limit: Annotated[int, typer.Option(help="At most this many results.")] = 20,
    json_: JsonOpt = False,
):
    """Full-text search over entries, best match first."""
    from recap import db
    from recap.journal import entries

    rows = entries.search(db.connect(), query, limit=limit)
    if json_:
        print_json(rows)
        return
    if not rows:
        typer.echo("no matches")
    for r in rows:
        typer.echo(f"{r['id']:>4}  {r['date']}  {r['slug']}  {r['title']}\n      {r['snippet']}")


def import_cmd(
    paths_: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Post files or folders of posts.")
    ],
    json_: JsonOpt = False,
):
    """Import Jekyll/fastpages, Quarto or MkDocs posts (re-importing updates them)."""
    from recap import db
    from recap.journal.importer import import_posts

    reports = import_posts(db.connect(), paths_)
    if json_:
        print_json(reports)
        return
    for r in reports:
        typer.echo(f"{r['action']} entry {r['id']} {r['slug']} ({r['date']}): {r['title']}")
        typer.echo(f"  mapped: {', '.join(r['mapped']) or 'nothing'}")
        if r["dropped"]:
            typer.echo(f"  dropped: {'; '.join(r['dropped'])}")
        if r["images_copied"]:
            typer.echo(f"  images copied: {r['images_copied']}")
        if r["images_missing"]:
            typer.echo(f"  images not found next to the post: {', '.join(r['images_missing'])}")
    added = sum(r["action"] == "added" for r in reports)
    typer.echo(f"{len(reports)} post(s): {added} added, {len(reports) - added} updated")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("new")(new)
    app.command("list")(list_cmd)
    app.command("show")(show)
    app.command("edit")(edit)
    app.command("search")(search)
    app.command("import")(import_cmd)
