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
    no_experiments: Annotated[
        bool, typer.Option("--no-experiments", help="Do not copy the shipped experiments.")
    ] = False,
    json_: JsonOpt = False,
):
    """Make a log root (mkdocs.yml, docs/, recap.toml, the database, the shipped experiments)."""
    from recap.logroot import init_root

    root, made = init_root(folder, title=title, experiments=not no_experiments)
    if json_:
        print_json({"root": str(root), "made": made})
        return
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
    """Create (or open) the week's entry as a draft; its links and runs stay live."""
    from recap import db, paths
    from recap import week as weekview
    from recap.errors import RecapError
    from recap.journal import entries, weeks

    day = weeks.parse_date(date) if date else None
    body = _read_body(body_file)
    conn = db.connect()
    entry, created = entries.new_entry(
        conn, paths.log_root(), week=week, day=day, title=title, body=body
    )
    unchanged = False
    if not (no_edit or body is not None or json_):
        try:
            unchanged = not _edit(conn, entry["id"])
        except RecapError as exc:
            raise RecapError(
                f"{exc}; entry {entry['slug']} stays a draft ('recap edit {entry['slug']}')"
            ) from None
        entry = entries.to_dict(entries.get_entry(conn, entry["id"]))
    counts = weekview.summary_counts(weekview.view(conn, entry))
    if json_:
        print_json({**entry, "created_now": created, "linked": counts})
        return
    verb = "created" if created else "opened existing"
    state = "draft " if entry["draft"] else ""
    typer.echo(
        f"{verb} {state}entry {entry['id']} {entry['slug']} ({entry['week']}, {entry['date']}); "
        f"it shows {counts['bookmarks']} bookmark(s) and {counts['runs']} run(s) of the week"
    )
    if unchanged and entry["draft"]:
        typer.echo("the template was saved unchanged: the entry stays a draft")
    if entry["draft"]:
        typer.echo(f"publish it with 'recap publish {entry['slug']}' (drafts are not on the site)")


def _preview(conn, entry: dict) -> str:
    """What the entry's markers expand to now, for the editor (not saved)."""
    from recap import week as weekview

    lines = [f"- {line}" for line in describe_links(weekview.view(conn, entry))]
    return "\n".join(lines or ["- nothing linked yet: the week's bookmarks and runs appear here"])


def describe_links(v) -> list[str]:
    """One line per thing an entry shows: what it is and why it is there."""
    out = []
    for i in v.items():
        if i.kind == "bookmark":
            label = f"bookmark {i.id} {i.row['url']}"
        elif i.kind == "run":
            label = f"run {i.id} ({i.row['experiment']})"
        else:
            label = f"experiment {i.row['name']}"
        out.append(f"{label}: {i.why}" + (f"; note: {i.note}" if i.note else ""))
    return out


def _edit(conn, entry_id: int) -> bool:
    from recap.journal import entries
    from recap.journal.editor import edit_text

    entry = entries.to_dict(entries.get_entry(conn, entry_id))
    doc = entries.to_document(entry, _preview(conn, entry))
    return entries.update_from_document(conn, entry_id, edit_text(doc))


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
        keep=(3,),  # the slug is typed back (recap show SLUG): the title gives way first
    )


def show(
    entry: Annotated[str, typer.Argument(help="Entry id or slug.")],
    json_: JsonOpt = False,
):
    """Show an entry with its live links and runs filled in, and why each is there."""
    from recap import db
    from recap import week as weekview
    from recap.cli.output import page_markdown
    from recap.journal import entries

    conn = db.connect()
    item = entries.to_dict(entries.get_entry(conn, entry))
    view = weekview.view(conn, item)
    text = weekview.expand(conn, item)
    if json_:
        print_json({**item, "rendered": text, "linked": view.as_json()})
        return
    state = "final" if item["final"] else ("draft" if item["draft"] else "published, live")
    head = [
        f"# {item['title']}",
        "",
        f"{item['date']} · {item['week'] or item['kind']} · {item['slug']} · {state} · "
        f"{', '.join(item['categories']) or 'no category'}",
    ]
    if item["description"]:
        head += ["", item["description"]]
    why = describe_links(view)
    tail = ["", "---", "", "Linked (and why):", ""] + [f"- {w}" for w in why] if why else []
    page_markdown("\n".join(head) + "\n\n" + text.rstrip() + "\n" + "\n".join(tail))


def edit(entry: Annotated[str, typer.Argument(help="Entry id or slug.")], json_: JsonOpt = False):
    """Edit an entry (front matter and body) in $EDITOR; 'draft: false' publishes it."""
    from recap import db
    from recap.journal import entries

    conn = db.connect()
    row = entries.get_entry(conn, entry)
    changed = _edit(conn, row["id"])
    if json_:
        print_json({**entries.to_dict(entries.get_entry(conn, row["id"])), "changed": changed})
        return
    typer.echo(f"{'saved' if changed else 'no change to'} entry {row['id']} {row['slug']}")


def publish(
    entry: Annotated[str, typer.Argument(help="Entry id or slug.")],
    live: Annotated[
        bool, typer.Option("--live", help="Publish but keep the links live (do not freeze).")
    ] = False,
    json_: JsonOpt = False,
):
    """Publish an entry (no longer a draft) and freeze its links and runs as they are now."""
    from recap import db
    from recap import week as weekview

    result = weekview.publish(db.connect(), entry, freeze=not live)
    if json_:
        print_json(result)
        return
    how = (
        f"final: {result['frozen_links']} automatic link(s) frozen; later captures leave it alone"
        if result["final"]
        else "live: the week's new bookmarks and runs still appear"
    )
    typer.echo(f"published entry {result['id']} {result['slug']} ({how})")


def rm(
    entry: Annotated[str, typer.Argument(help="Entry id or slug.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOpt = False,
):
    """Delete an entry (its bookmarks and runs stay); asks first unless --yes."""
    from recap import db
    from recap.journal import entries

    conn = db.connect()
    row = entries.get_entry(conn, entry)
    if not yes and not typer.confirm(f"delete entry {row['id']} {row['slug']!r}?", default=False):
        typer.echo("nothing deleted")
        raise typer.Exit(1)
    entries.delete_entry(conn, row["id"])
    if json_:
        print_json({"deleted": row["id"], "slug": row["slug"]})
        return
    typer.echo(f"deleted entry {row['id']} {row['slug']}")


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
        typer.echo(f"{r['id']:>4}  {r['date']}  {r['slug']}  {r['title']}")
        typer.echo(_snippet_lines(r["snippet"] or ""))


def _snippet_lines(snippet: str) -> str:
    """A hit's snippet for a person: recap's own markers (``<!-- recap:links -->``) left out, on
    at most two lines of the terminal's width, indented under the hit (``--json`` keeps it)."""
    import re

    from recap.cli.output import fitted, wrapped

    text = re.sub(r"<!--.*?(-->|$)", " ", snippet)  # a comment, or one the snippet cut short
    text = " ".join(text.split())
    if not fitted():
        return "      " + text
    lines = wrapped(text, "      ")
    if len(lines) > 2:
        lines = [lines[0], lines[1].rstrip("…") + "…"]
    return "\n".join(lines)


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
    app.command("publish")(publish)
    app.command("rm")(rm)
    app.command("search")(search)
    app.command("import")(import_cmd)
