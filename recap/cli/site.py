"""`recap site ...`: the MkDocs Material site built from the log."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="The MkDocs Material site built from the log.", no_args_is_help=True)


def _report_render(result) -> None:
    for line in result.skipped:
        typer.echo(f"warning: {line}", err=True)
    for line in result.warnings:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(
        f"rendered {result.posts} posts: {len(result.written)} files written, "
        f"{len(result.removed)} removed, {result.unchanged} unchanged"
    )


def _stderr(line: str) -> None:
    typer.echo(line, err=True)


def _progress():
    """(callback, context) for site builds: a transient bar on a terminal's stderr, else nothing."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return None, contextlib.nullcontext()
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        label = "rendering posts" if stage == "render" else f"{stage} build --strict"
        if stage not in tasks:
            for other in tasks.values():
                bar.update(other, visible=False)
            tasks[stage] = bar.add_task(label, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return update, bar


def _build_json(res) -> dict:
    r = res.render
    out = {
        "posts": r.posts,
        "docs": {
            "written": r.written,
            "removed": r.removed,
            "unchanged": r.unchanged,
            "warnings": [*r.skipped, *r.warnings],
        },
        "render_s": round(res.render_s, 4),
    }
    if res.site_dir is not None:
        out["site"] = {
            "dir": str(res.site_dir),
            "skipped": res.skipped,
            "written": res.site_written,
            "removed": res.site_removed,
            "unchanged": res.site_unchanged,
            "pages_converted": res.pages_converted,
            "pages_reused": res.pages_reused,
        }
        out["build_s"] = round(res.build_s, 4)
    return out


@app.command("build")
def build_cmd(
    render_only: Annotated[
        bool, typer.Option("--render-only", help="Write docs/ but do not run mkdocs build.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Run mkdocs even when nothing changed since the last build."),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")] = False,
):
    """Render the log into docs/ and run mkdocs build --strict (only when something changed)."""
    from recap.cli.output import print_json
    from recap.site.build import build

    progress, bar = _progress()
    with bar:
        res = build(render_only=render_only, force=force, progress=progress, on_message=_stderr)
    if json_:
        print_json(_build_json(res))
        return
    _report_render(res.render)
    if res.site_dir is None:
        return
    if res.skipped:
        typer.echo(
            f"site in {res.site_dir} is up to date: nothing changed, mkdocs not run "
            f"(render {res.render_s:.1f} s; --force rebuilds)"
        )
        return
    typer.echo(
        f"site built in {res.site_dir} (render {res.render_s:.1f} s, "
        f"mkdocs {res.build_s:.1f} s): {len(res.site_written)} files written, "
        f"{len(res.site_removed)} removed, {res.site_unchanged} unchanged"
    )


@app.command("serve")
def serve_cmd(
    addr: Annotated[str, typer.Option("--addr", help="Address to serve on.")] = "127.0.0.1:8000",
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
):
    """Live preview of the site (drafts shown), following the database, until Ctrl-C."""
    from recap.site.build import serve

    typer.echo(f"serving on http://{addr}/ (drafts shown; Ctrl-C stops)", err=True)
    serve(dev_addr=addr, open_browser=open_browser, on_message=_stderr)


@app.command("deploy")
def deploy_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and say what would be pushed; push nothing.")
    ] = False,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch to push to.")] = None,
    remote: Annotated[str | None, typer.Option("--remote", help="Git remote to push to.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Force the push.")] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print what was (or would be) pushed.")
    ] = False,
):
    """Build, then push the site to a branch with mkdocs gh-deploy."""
    from recap.cli.output import print_json
    from recap.site.build import deploy

    plan = deploy(
        dry_run=dry_run,
        message=message,
        remote_branch=branch,
        remote_name=remote,
        force=force,
        on_message=_stderr,
    )
    if json_:
        print_json(
            {
                "site_dir": str(plan.site_dir),
                "files": plan.files,
                "bytes": plan.size,
                "remote": plan.remote,
                "branch": plan.branch,
                "pushed": plan.pushed,
                "dry_run": dry_run,
            }
        )
        return
    what = f"{plan.site_dir} ({plan.files} files, {plan.size / 1e6:.1f} MB)"
    if plan.pushed:
        typer.echo(f"pushed {what} to branch {plan.branch} of {plan.remote}")
    else:
        typer.echo(f"would push {what} to branch {plan.branch} of {plan.remote} (dry run)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="site")
