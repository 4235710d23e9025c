"""`recap feed ...` commands."""

from typing import Annotated

import typer

from recap.cli.output import print_json, print_table

app = typer.Typer(help="Feeds whose items become unread bookmarks.", no_args_is_help=True)


def _conn():
    from recap.db import connect

    return connect()


@app.command("add")
def add_cmd(
    ref: Annotated[str, typer.Argument(help="Feed URL, or a local feed file.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag for its items.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Subscribe to a feed (RSS or Atom); its items become unread bookmarks on 'feed pull'."""
    from recap.links.feeds import add_feed

    row, created = add_feed(_conn(), ref, tags=tag or [])
    if json_:
        print_json({**dict(row), "created": created})
        return
    typer.echo(f"{'added' if created else 'already subscribed'} feed {row['id']}: {row['url']}")


@app.command("list")
def list_cmd(json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """List feeds with their last pull, error and item counts."""
    from recap.links.feeds import list_feeds

    feeds = list_feeds(_conn())
    if json_:
        print_json(feeds)
        return
    print_table(
        ["id", "title", "url", "items", "unread", "last pull", "error"],
        [
            (
                f["id"],
                f["title"] or "-",
                f["url"],
                f["items"],
                f["unread"],
                (f["last_pull"] or "never")[:16],
                f["last_error"] or "",
            )
            for f in feeds
        ],
        empty="no feeds (add one with 'recap feed add URL')",
        detail=(2, 6),  # on a narrow terminal: the URL and the last error whole under the feed
    )


@app.command("rm")
def rm_cmd(
    ref: Annotated[str, typer.Argument(help="Feed id or URL.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Unsubscribe from a feed (its bookmarks stay)."""
    from recap.links.feeds import remove_feed

    row = remove_feed(_conn(), ref)
    if json_:
        print_json({"removed": {"id": row["id"], "url": row["url"], "title": row["title"]}})
        return
    typer.echo(f"removed feed {row['id']}: {row['url']}")


@app.command("pull")
def pull_cmd(
    refs: Annotated[list[str] | None, typer.Argument(help="Only these feeds (id or URL).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Fetch every feed concurrently; new items become unread bookmarks."""
    from recap.cli.bookmark import _progress
    from recap.errors import PartialFailure
    from recap.links.feeds import pull

    update, bar = _progress("pulling feeds")
    with bar:
        results = pull(_conn(), refs=refs, progress=update)
    failed = [r for r in results if r["status"] in ("failed", "broken")]
    if json_:
        print_json(results)
    else:
        for r in results:
            if r["status"] == "failed":
                continue
            extra = f", skipped {len(r['skipped'])}" if r["skipped"] else ""
            typer.echo(
                f"{r['title'] or r['url']}: {r['status']}, {r['added']} new, "
                f"{r['merged']} already saved{extra}"
            )
    for r in failed:
        typer.echo(f"warning: feed {r['feed']} {r['url']}: {r['error']}", err=True)
    if not results and not json_:
        typer.echo("no feeds (add one with 'recap feed add URL')")
    if failed:
        raise PartialFailure(f"{len(failed)} of {len(results)} feeds failed")
