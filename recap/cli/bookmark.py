"""`recap bookmark ...` commands."""

from pathlib import Path
from typing import Annotated

import typer

from recap.cli.output import print_json, print_table

app = typer.Typer(
    help="Bookmarks: capture, find, tidy, import, export and check links.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _conn():
    from recap.db import connect

    return connect()


def _print_rows(rows, json_: bool, empty: str = "no bookmarks") -> None:
    from recap.links.store import as_dict, tags_of

    if json_:
        print_json([as_dict(r) for r in rows])
        return
    print_table(
        ["id", "added", "title", "url", "tags"],
        [
            (r["id"], r["added"][:10], r["title"] or "-", r["url"], ",".join(tags_of(r)))
            for r in rows
        ],
        empty=empty,
        detail=(3,),  # on a narrow terminal: the URL whole under the title, not cut
    )


def _progress(label: str):
    """A rich progress bar on stderr, as a (callback, context manager) pair; silent when
    stderr is not a terminal, so logs and pipes get only the report."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return (lambda *a: None), contextlib.nullcontext()
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=None)

    def update(done, total, *_):
        bar.update(task, completed=done, total=total)

    return update, bar


@app.command("add")
def add_cmd(
    url: Annotated[
        str,
        typer.Argument(help="The link (http or https; a bare host such as docs.fast.ai: https)."),
    ],
    title: Annotated[str | None, typer.Option("--title", help="Title (else the page's).")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag (repeatable).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", "-n", help="Your comment.")] = None,
    entry: Annotated[str | None, typer.Option("--entry", help="Link it to this entry.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not fetch the page.")] = False,
    json_: JsonOpt = False,
):
    """Save a link (adding one that is already saved updates it: tags merged, date kept)."""
    import re

    from recap.links.store import add_bookmark

    if re.match(r"^[\w-]+(\.[\w-]+)+(:\d+)?(/|$)", url.strip()):  # a bare host: assume https
        url = "https://" + url.strip()
    res = add_bookmark(
        _conn(), url, title=title, tags=tag or [], note=note, entry=entry, offline=offline
    )
    if res["fetch_error"]:
        typer.echo(
            f"warning: could not fetch the page ({res['fetch_error']}); saved as given", err=True
        )
    if json_:
        print_json({"status": res["status"], **res["bookmark"]})
        return
    b = res["bookmark"]
    what = (
        "added"
        if res["status"] == "added"
        else f"updated (already saved{'; tags merged' if tag else ''})"
    )
    tags = f" [{', '.join(b['tags'])}]" if b["tags"] else ""
    typer.echo(f"{what} {b['id']}: {b['title'] or b['url']}{tags}")


DEFAULT_LIST_LIMIT = 100


def _default_limit() -> int:
    """A screenful on a terminal; off a terminal the first 100 (``--all`` streams the rest)."""
    import shutil
    import sys

    if sys.stdout.isatty():
        return max(shutil.get_terminal_size().lines - 4, 5)
    return DEFAULT_LIST_LIMIT


@app.command("list")
def list_cmd(
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only this tag.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Added on/after (date).")] = None,
    week: Annotated[str | None, typer.Option("--week", help="ISO week, e.g. 2021-W03.")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only unread.")] = False,
    broken: Annotated[bool, typer.Option("--broken", help="Only dead links.")] = False,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived.")] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="At most this many (default: a screenful, or 100 off a terminal).",
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every match, streamed (no limit, flat memory).")
    ] = False,
    json_: JsonOpt = False,
):
    """List bookmarks, newest first (a page of them; --all for every one)."""

    from recap.cli.output import stream_json, stream_table
    from recap.links.store import as_dict, iter_bookmarks, tags_of

    if all_ and limit:
        from recap.errors import InvalidInput

        raise InvalidInput("give --limit or --all, not both")
    shown = None if all_ else (limit or _default_limit())
    rows = iter_bookmarks(
        _conn(),
        tag=tag,
        since=since,
        week=week,
        unread=unread,
        broken=broken,
        archived=archived,
        limit=None if shown is None else shown + 1,  # one more says whether there are more
    )
    more = []

    def page():
        for i, row in enumerate(rows):
            if shown is not None and i == shown:
                more.append(row)
                return
            yield row

    if json_:
        stream_json(as_dict(r) for r in page())
    elif broken:
        stream_table(
            ["id", "status", "url", "checked"],
            (
                (
                    r["id"],
                    r["http_status"] or r["check_error"],
                    r["url"],
                    (r["checked_at"] or "")[:16],
                )
                for r in page()
            ),
            empty="no broken links",
        )
    else:
        stream_table(
            ["id", "added", "title", "url", "tags"],
            (
                (r["id"], r["added"][:10], r["title"] or "-", r["url"], ",".join(tags_of(r)))
                for r in page()
            ),
            empty="no bookmarks",
            detail=(3,),  # on a narrow terminal: the URL whole under the title, not cut
        )
    if more:
        typer.echo(f"(first {shown} shown; --limit N for more, --all for every one)", err=True)


@app.command("search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="Words, or an FTS5 query.")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100,
    json_: JsonOpt = False,
):
    """Full-text search over titles, descriptions, notes, URLs and tags, best first."""
    from recap.links.store import search

    shown = () if json_ else ("id", "added", "title", "url", "tags")
    _print_rows(search(_conn(), query, limit=limit, columns=shown), json_, empty="no matches")


@app.command("edit")
def edit_cmd(
    id: Annotated[str, typer.Argument(help="Bookmark id.")],
    url: Annotated[str | None, typer.Option("--url", help="New URL.")] = None,
    title: Annotated[str | None, typer.Option("--title", help="New title.")] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="New description.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", "-n", help="New note.")] = None,
    read: Annotated[bool | None, typer.Option("--read/--unread", help="Mark read/unread.")] = None,
    archive: Annotated[bool | None, typer.Option("--archive/--unarchive", help="Archive.")] = None,
    json_: JsonOpt = False,
):
    """Change a bookmark's URL, title, description, note, read or archived state."""
    from recap.links.store import as_dict, edit

    row = edit(
        _conn(),
        id,
        url=url,
        title=title,
        description=description,
        note=note,
        read=read,
        archived=archive,
    )
    if json_:
        print_json(as_dict(row))
    else:
        typer.echo(f"updated {row['id']}: {row['title'] or row['url']}")


@app.command("tag")
def tag_cmd(
    ids: Annotated[list[str], typer.Argument(help="Bookmark ids.")],
    add: Annotated[list[str] | None, typer.Option("--add", "-a", help="Tag to add.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", "-r", help="Tag to remove.")
    ] = None,
    json_: JsonOpt = False,
):
    """Add or remove tags on one or more bookmarks."""
    from recap.links.store import retag, tags_of

    rows = retag(_conn(), ids, add=add or [], remove=remove or [])
    if json_:
        print_json([{"id": row["id"], "tags": tags_of(row)} for row in rows])
        return
    for row in rows:
        typer.echo(f"{row['id']}: {', '.join(tags_of(row)) or '(no tags)'}")


@app.command("rm")
def rm_cmd(ids: Annotated[list[str], typer.Argument(help="Bookmark ids.")], json_: JsonOpt = False):
    """Delete bookmarks (ids are never reused); an entry that showed one no longer does."""
    from recap.links.store import remove

    gone = remove(_conn(), ids)
    if json_:
        print_json({"removed": gone})
        return
    typer.echo(
        f"removed {len(gone)} bookmark{'s' if len(gone) != 1 else ''}: " + ", ".join(map(str, gone))
    )


@app.command("dupes")
def dupes_cmd(
    merge: Annotated[
        bool, typer.Option("--merge", help="Merge each group into its oldest.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before merging.")] = False,
    json_: JsonOpt = False,
):
    """Near-duplicates the URL key does not merge (http/https, www, index pages), to confirm."""
    from recap.links.store import as_dict, dupes

    conn = _conn()
    groups = dupes(conn)
    if json_ and not merge:
        print_json([[as_dict(r) for r in g] for g in groups])
        return
    if not groups:
        typer.echo("no near-duplicates")
        return
    for g in groups:
        typer.echo(" = ".join(f"{r['id']} {r['url']}" for r in g))
    if merge:
        from recap.links.store import merge as merge_rows

        if not yes and not typer.confirm(f"merge these {len(groups)} groups?"):
            raise typer.Exit(1)
        for g in groups:
            kept = merge_rows(conn, g[0]["id"], [r["id"] for r in g[1:]])
            typer.echo(f"merged into {kept['id']}: {kept['url']}")


@app.command("import")
def import_cmd(
    file: Annotated[
        Path,
        typer.Argument(help="Netscape HTML, Pinboard/buku/recap JSON, buku Markdown or buku .db."),
    ],
    format: Annotated[str | None, typer.Option("--format", help="Force the format.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Add this tag to all.")
    ] = None,
    json_: JsonOpt = False,
):
    """Import bookmarks; ends with a report (read, added, merged, skipped with reasons)."""
    from recap.links.exchange import import_file

    update, bar = _progress(f"importing {file.name}")
    with bar:
        rep = import_file(_conn(), file, format, tags=tag or [], progress=update)
    if json_:
        print_json(rep)
        return
    typer.echo(
        f"{rep['file']} ({rep['format']}): read {rep['read']}, added {rep['added']}, "
        f"merged as duplicates {rep['merged']} ({rep['changed']} changed), "
        f"skipped {len(rep['skipped'])}"
    )
    for s in rep["skipped"]:
        typer.echo(f"  skipped {s['url'] or '(empty)'!s:.80}: {s['reason']}")
    for w in rep["warnings"]:
        typer.echo(f"  warning {w['url'] or '(empty)'!s:.80}: {w['reason']}")
    for c in rep["cut"]:
        typer.echo(f"  cut {c['url']!s:.80}: {c['field']} from {c['from']} to {c['to']} characters")


@app.command("export")
def export_cmd(
    file: Annotated[str, typer.Argument(help="Output file ('-' for stdout).")],
    format: Annotated[
        str | None, typer.Option("--format", help="html, json or md (default: from the suffix).")
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Report the export as JSON (when writing a file).")
    ] = False,
):
    """Export every bookmark to Netscape HTML (browsers, buku), JSON or Markdown."""
    from recap.errors import InvalidInput
    from recap.links.exchange import export

    if json_ and file == "-":
        raise InvalidInput("--json reports an export to a file; with '-' the export is the output")

    fmt = format or {".html": "html", ".htm": "html", ".json": "json", ".md": "md"}.get(
        Path(file).suffix.lower(), "html"
    )
    data, n = export(_conn(), fmt)
    if file == "-":
        typer.echo(data, nl=False)
        return
    from recap.fsutil import atomic_write

    atomic_write(Path(file), data)
    if json_:
        print_json({"file": str(file), "format": fmt, "bookmarks": n})
        return
    typer.echo(f"exported {n} bookmarks to {file} ({fmt})", err=True)


@app.command("check")
def check_cmd(
    id: Annotated[list[str] | None, typer.Option("--id", help="Only these bookmarks.")] = None,
    per_host: Annotated[int, typer.Option("--per-host", help="Requests at once per host.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 10.0,
    json_: JsonOpt = False,
):
    """Check links (HEAD, then GET): stores status and time; see 'list --broken'."""
    from recap.links.check import check_links

    update, bar = _progress("checking links")
    with bar:
        results = check_links(_conn(), ids=id, per_host=per_host, timeout=timeout, progress=update)
    bad = [r for r in results if not r["ok"]]
    if json_:
        print_json(results)
    else:
        for r in bad:
            typer.echo(f"{r['id']}: {r['status'] or r['error']} {r['url']}")
        typer.echo(f"checked {len(results)}: {len(results) - len(bad)} ok, {len(bad)} broken")
