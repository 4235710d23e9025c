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


@app.command("build")
def build_cmd(
    render_only: Annotated[
        bool, typer.Option("--render-only", help="Write docs/ but do not run mkdocs build.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Render the log into docs/ and run mkdocs build --strict."""
    from recap.site.build import build

    res = build(render_only=render_only)
    if json_:
        from recap.cli.output import print_json

        r = res.render
        print_json(
            {
                "posts": r.posts,
                "written": r.written,
                "removed": r.removed,
                "unchanged": r.unchanged,
                "warnings": [*r.skipped, *r.warnings],
                "site_dir": str(res.site_dir) if res.site_dir else None,
                "render_s": round(res.render_s, 3),
                "build_s": round(res.build_s, 3),
            }
        )
        return
    _report_render(res.render)
    if res.site_dir is not None:
        typer.echo(
            f"site built in {res.site_dir} (render {res.render_s:.1f} s, "
            f"mkdocs {res.build_s:.1f} s)"
        )


@app.command("serve")
def serve_cmd(
    addr: Annotated[str, typer.Option("--addr", help="Address to serve on.")] = "127.0.0.1:8000",
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
):
    """Live preview of the site (drafts shown) until Ctrl-C."""
    from recap.site.build import serve

    typer.echo(f"serving on http://{addr}/ (drafts shown; Ctrl-C stops)", err=True)
    serve(dev_addr=addr, open_browser=open_browser)


@app.command("deploy")
def deploy_cmd(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and say what would be pushed; push nothing.")
    ] = False,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch to push to.")] = None,
    remote: Annotated[str | None, typer.Option("--remote", help="Git remote to push to.")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Force the push.")] = False,
):
    """Build, then push the site to a branch with mkdocs gh-deploy."""
    from recap.site.build import deploy

    plan = deploy(
        dry_run=dry_run, message=message, remote_branch=branch, remote_name=remote, force=force
    )
    what = f"{plan.site_dir} ({plan.files} files, {plan.size / 1e6:.1f} MB)"
    if plan.pushed:
        typer.echo(f"pushed {what} to branch {plan.branch} of {plan.remote}")
    else:
        typer.echo(f"would push {what} to branch {plan.branch} of {plan.remote} (dry run)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="site")
