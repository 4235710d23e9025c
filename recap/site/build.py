"""``recap site build | serve | deploy``: render the database, then hand the folder to MkDocs.

MkDocs runs in-process through its Python API (the same calls as ``mkdocs build --strict``), so the
aliases of entries can be added to mkdocs-redirects' ``redirect_maps`` without recap editing the
user's mkdocs.yml. A plain ``mkdocs build`` works too; it just makes no alias redirects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from recap import paths
from recap.errors import InvalidInput, RecapError, require
from recap.site.render import RenderResult, render


@dataclass
class BuildResult:
    render: RenderResult
    site_dir: Path | None
    render_s: float
    build_s: float


def _progress_factory():
    """A rich progress bar on stderr for long renders (``track()`` advances it)."""
    from rich.console import Console
    from rich.progress import Progress

    state = {}

    def start(total: int):
        progress = Progress(console=Console(stderr=True), transient=True)
        progress.start()
        task = progress.add_task("rendering posts", total=total)
        state["p"] = progress

        def track():
            progress.advance(task)
            if progress.tasks[task].completed >= total:
                progress.stop()

        return track

    def stop():
        if "p" in state:
            state["p"].stop()

    return start, stop


def render_root(root: Path, *, include_drafts: bool = False, progress: bool = True) -> RenderResult:
    from recap import db

    conn = db.connect(paths.db_path(root))
    start, stop = _progress_factory() if progress else (None, lambda: None)
    try:
        return render(root, conn, include_drafts=include_drafts, progress=start)
    finally:
        stop()
        conn.close()


def _config(root: Path, redirects: dict[str, str], *, strict: bool = True, **overrides):
    """mkdocs.yml loaded, with the entries' aliases added to the redirects plugin."""
    require("mkdocs", "site")
    require("material", "site")
    # mkdocs-redirects would print a banner about MkDocs 2 on every build.
    os.environ.setdefault("DISABLE_MKDOCS_2_WARNING", "true")
    from mkdocs.config import load_config
    from mkdocs.exceptions import ConfigurationError

    config_file = root / "mkdocs.yml"
    if not config_file.exists():
        raise InvalidInput(f"no mkdocs.yml in {root}; run 'recap init {root}' to make one")
    try:
        cfg = load_config(config_file=str(config_file), strict=strict, **overrides)
    except ConfigurationError as exc:
        raise RecapError(f"mkdocs.yml: {' '.join(str(exc).split())}") from exc
    plugin = next((p for name, p in cfg.plugins.items() if name.endswith("redirects")), None)
    if plugin is not None:
        maps = dict(redirects)
        maps.update(plugin.config.get("redirect_maps") or {})  # the user's own entries win
        plugin.config["redirect_maps"] = maps
    elif redirects:
        logging.getLogger("mkdocs").info("no redirects plugin in mkdocs.yml: aliases not served")
    return cfg


@contextlib.contextmanager
def _mkdocs_logging():
    """Show MkDocs' warnings and errors (the reasons a strict build fails) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("mkdocs: %(levelname)s %(message)s"))
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def _mkdocs_build(root: Path, redirects: dict[str, str], *, strict: bool = True):
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.exceptions import Abort, BuildError, ConfigurationError, PluginError

    # Plugins (the RSS cache) resolve some paths from the working directory: use the log root.
    with _mkdocs_logging(), contextlib.chdir(root):
        cfg = _config(root, redirects, strict=strict)
        try:
            cfg.plugins.on_startup(command="build", dirty=False)
            try:
                mkdocs_build(cfg, dirty=False)
            finally:
                # The blog plugin removes its temporary folder here; gone already is fine.
                with contextlib.suppress(FileNotFoundError):
                    cfg.plugins.on_shutdown()
        except (Abort, BuildError, ConfigurationError, PluginError) as exc:
            raise RecapError(
                f"mkdocs build --strict failed: {' '.join(str(exc).split())} "
                "(the warnings above say why)"
            ) from exc
    return cfg


def build(
    root: Path | None = None,
    *,
    render_only: bool = False,
    strict: bool = True,
    progress: bool = True,
) -> BuildResult:
    """Render the database into docs/ and run ``mkdocs build --strict``."""
    root = root or paths.log_root()
    t0 = time.perf_counter()
    result = render_root(root, progress=progress)
    t1 = time.perf_counter()
    if render_only:
        return BuildResult(result, None, t1 - t0, 0.0)
    status = contextlib.nullcontext()
    if progress:
        from rich.console import Console

        status = Console(stderr=True).status("mkdocs build --strict")
    with status:
        cfg = _mkdocs_build(root, result.redirects, strict=strict)
    return BuildResult(result, Path(cfg["site_dir"]), t1 - t0, time.perf_counter() - t1)


def serve(
    root: Path | None = None, *, dev_addr: str = "127.0.0.1:8000", open_browser: bool = False
) -> None:
    """Render (drafts included) and serve a live preview until Ctrl-C."""
    root = root or paths.log_root()
    render_root(root, include_drafts=True)
    require("mkdocs", "site")
    from mkdocs.commands.serve import serve as mkdocs_serve
    from mkdocs.exceptions import Abort, ConfigurationError

    with _mkdocs_logging(), contextlib.chdir(root):
        try:
            mkdocs_serve(
                config_file=str(root / "mkdocs.yml"),
                dev_addr=dev_addr,
                livereload=True,
                open_in_browser=open_browser,
            )
        except (Abort, ConfigurationError) as exc:
            raise RecapError(f"mkdocs serve: {' '.join(str(exc).split())}") from exc


@dataclass
class DeployPlan:
    site_dir: Path
    files: int
    size: int
    remote: str
    branch: str
    pushed: bool


def deploy(
    root: Path | None = None,
    *,
    dry_run: bool = False,
    message: str | None = None,
    remote_branch: str | None = None,
    remote_name: str | None = None,
    force: bool = False,
) -> DeployPlan:
    """Build, then ``mkdocs gh-deploy`` the site to a branch (only describe it with dry_run)."""
    root = root or paths.log_root()
    result = build(root)
    cfg = _config(root, result.render.redirects)
    if remote_branch:
        cfg["remote_branch"] = remote_branch
    if remote_name:
        cfg["remote_name"] = remote_name
    site = Path(cfg["site_dir"])
    files = [p for p in site.rglob("*") if p.is_file()]
    plan = DeployPlan(
        site,
        len(files),
        sum(p.stat().st_size for p in files),
        cfg["remote_name"],
        cfg["remote_branch"],
        False,
    )
    if dry_run:
        return plan
    from mkdocs.commands.gh_deploy import gh_deploy
    from mkdocs.exceptions import Abort

    with _mkdocs_logging(), contextlib.chdir(root):
        try:
            gh_deploy(cfg, message=message, force=force, no_history=False, ignore_version=True)
        except (Abort, SystemExit) as exc:
            raise RecapError(f"mkdocs gh-deploy failed: {exc}") from exc
    plan.pushed = True
    return plan
