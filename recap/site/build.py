"""``recap site build | serve | deploy``: render the database, then hand the folder to MkDocs.

MkDocs runs in-process through its Python API (the same calls as ``mkdocs build --strict``), so the
aliases of entries can be added to mkdocs-redirects' ``redirect_maps`` without recap editing the
user's mkdocs.yml. A plain ``mkdocs build`` works too; it just makes no alias redirects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recap import paths
from recap.errors import InvalidInput, RecapError, require
from recap.site.render import EXPERIMENTS, RenderResult, render

# the per-run pages (gitignore syntax, relative to docs/): kept out of the navigation
RUN_PAGES = f"/{EXPERIMENTS}/runs/"

# progress(stage, done, total): stage is "render" (posts done of total) or "mkdocs" (0, None when
# MkDocs starts). The library never prints: the CLI draws whatever it likes from these calls.
Progress = Callable[[str, int, int | None], None]
# on_message(line): a warning or error MkDocs logged (and, while serving, its info lines).
OnMessage = Callable[[str], None]


@dataclass
class BuildResult:
    render: RenderResult
    site_dir: Path | None
    render_s: float
    build_s: float
    skipped: bool = False  # nothing MkDocs reads changed: it did not run, site/ was not touched
    site_written: list[str] = field(default_factory=list)
    site_removed: list[str] = field(default_factory=list)
    site_unchanged: int = 0
    pages_converted: int = 0  # Markdown conversions done (the rest came from the cache)
    pages_reused: int = 0


def _render_progress(progress: Progress | None):
    """render()'s progress protocol (start(total) -> track()) on top of a Progress callback."""
    if not progress:
        return None

    def start(total: int):
        done = [0]
        progress("render", 0, total)

        def track():
            done[0] += 1
            progress("render", done[0], total)

        return track

    return start


def render_root(
    root: Path, *, include_drafts: bool = False, progress: Progress | None = None
) -> RenderResult:
    from recap import db

    conn = db.connect(paths.db_path(root))
    try:
        return render(
            root, conn, include_drafts=include_drafts, progress=_render_progress(progress)
        )
    finally:
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
    # A page per run is reached from the run tables, not from the sidebar (hundreds of runs).
    import pathspec

    runs = pathspec.GitIgnoreSpec.from_lines([RUN_PAGES])
    cfg["not_in_nav"] = runs + cfg["not_in_nav"] if cfg["not_in_nav"] else runs
    plugin = next((p for name, p in cfg.plugins.items() if name.endswith("redirects")), None)
    if plugin is not None:
        maps = dict(redirects)
        maps.update(plugin.config.get("redirect_maps") or {})  # the user's own entries win
        plugin.config["redirect_maps"] = maps
    elif redirects:
        logging.getLogger("mkdocs").info("no redirects plugin in mkdocs.yml: aliases not served")
    return cfg


class _Relay(logging.Handler):
    """Hands MkDocs' log lines to a callback (and keeps them): nothing is printed here."""

    def __init__(self, on_message: OnMessage | None, level: int):
        super().__init__(level)
        self.on_message = on_message
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("mkdocs: %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = " ".join(self.format(record).split())
        except Exception:
            return
        self.lines.append(line)
        if self.on_message:
            self.on_message(line)


@contextlib.contextmanager
def _mkdocs_messages(on_message: OnMessage | None, level: int = logging.WARNING):
    """MkDocs' warnings (the reasons a strict build fails) go to ``on_message``, not stderr;
    with a handler in place Python's last-resort printer stays quiet too."""
    relay = _Relay(on_message, level)
    logger = logging.getLogger("mkdocs")
    logger.addHandler(relay)
    old_level = logger.level
    logger.setLevel(min(level, logging.INFO))
    try:
        yield relay
    finally:
        logger.removeHandler(relay)
        logger.setLevel(old_level)


def _mkdocs_build(
    root: Path,
    redirects: dict[str, str],
    *,
    strict: bool = True,
    site_dir: Path | None = None,
    on_message: OnMessage | None = None,
):
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.exceptions import Abort, BuildError, ConfigurationError, PluginError

    overrides = {"site_dir": str(site_dir)} if site_dir else {}
    # Plugins (the RSS cache) resolve some paths from the working directory: use the log root.
    with _mkdocs_messages(on_message) as relay, contextlib.chdir(root):
        cfg = _config(root, redirects, strict=strict, **overrides)
        try:
            cfg.plugins.on_startup(command="build", dirty=False)
            try:
                mkdocs_build(cfg, dirty=False)
            finally:
                # The blog plugin removes its temporary folder here; gone already is fine.
                with contextlib.suppress(FileNotFoundError):
                    cfg.plugins.on_shutdown()
        except (Abort, BuildError, ConfigurationError, PluginError) as exc:
            why = "; ".join(relay.lines[-5:])
            raise RecapError(
                f"mkdocs build --strict failed: {' '.join(str(exc).split())}"
                + (f" ({why})" if why else "")
            ) from exc
    return cfg


def _site_dir(root: Path) -> Path:
    """site_dir of mkdocs.yml without loading MkDocs (relative to the config file)."""
    from recap.site.render import read_mkdocs_yml

    value = read_mkdocs_yml(root).get("site_dir")
    return (root / (value if isinstance(value, str) and value else "site")).resolve()


def build(
    root: Path | None = None,
    *,
    render_only: bool = False,
    strict: bool = True,
    force: bool = False,
    progress: Progress | None = None,
    on_message: OnMessage | None = None,
) -> BuildResult:
    """Render the database into docs/ and run ``mkdocs build --strict``, incrementally.

    MkDocs runs only when something it reads changed (docs/, mkdocs.yml, the theme and plugin
    versions, the aliases), into a staging folder; only files whose bytes changed are moved into
    site/. Unchanged pages reuse their cached Markdown conversion. ``force`` rebuilds anyway."""
    from recap.site import incremental as inc

    root = root or paths.log_root()
    t0 = time.perf_counter()
    result = render_root(root, progress=progress)
    t1 = time.perf_counter()
    if render_only:
        return BuildResult(result, None, t1 - t0, 0.0)
    config_file = root / "mkdocs.yml"
    if not config_file.exists():
        raise InvalidInput(f"no mkdocs.yml in {root}; run 'recap init {root}' to make one")
    site = _site_dir(root)
    state = {} if force else inc.load_state(root)
    key, config_key, digests = inc.inputs_key(
        root,
        paths.docs_dir(root),
        config_file,
        {"redirects": result.redirects, "strict": strict, "site_dir": str(site)},
        state.get("digests") or {},
    )
    if state.get("key") == key and state.get("site") == inc.site_listing(site):
        if state.get("digests") != digests:  # only stat caches moved (a touched file)
            inc.save_state(root, {**state, "digests": digests})
        return BuildResult(result, site, t1 - t0, time.perf_counter() - t1, skipped=True)

    if progress:
        progress("mkdocs", 0, None)
    cache = inc.cache_dir(root)
    cache.mkdir(parents=True, exist_ok=True)
    staging = inc.staging_dir(cache)
    memo = inc.RenderMemo(cache / "pages.pickle", config_key)
    memo.assets_key = inc.assets_key(paths.docs_dir(root), digests)
    try:
        with memo.active():
            _mkdocs_build(
                root, result.redirects, strict=strict, site_dir=staging, on_message=on_message
            )
        written, removed, unchanged = inc.sync_tree(staging, site)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    memo.save()
    inc.save_state(root, {"key": key, "digests": digests, "site": inc.site_listing(site)})
    return BuildResult(
        result,
        site,
        t1 - t0,
        time.perf_counter() - t1,
        site_written=written,
        site_removed=removed,
        site_unchanged=unchanged,
        pages_converted=memo.misses,
        pages_reused=memo.hits,
    )


def _watch_database(root: Path, stop, on_message: OnMessage | None) -> None:
    """Re-render docs/ whenever another connection commits to the database; MkDocs' own
    watcher then sees the changed pages and rebuilds the preview."""
    import sqlite3

    conn = sqlite3.connect(paths.db_path(root))
    try:
        seen = conn.execute("PRAGMA data_version").fetchone()[0]
        while not stop.wait(1.0):
            now = conn.execute("PRAGMA data_version").fetchone()[0]
            if now == seen:
                continue
            seen = now
            try:
                res = render_root(root, include_drafts=True)
            except Exception as exc:  # keep serving; say why the preview is stale
                if on_message:
                    on_message(f"recap: re-render failed: {exc}")
                continue
            if on_message and (res.written or res.removed):
                on_message(
                    f"recap: database changed; {len(res.written)} files written, "
                    f"{len(res.removed)} removed"
                )
    finally:
        conn.close()


def serve(
    root: Path | None = None,
    *,
    dev_addr: str = "127.0.0.1:8000",
    open_browser: bool = False,
    on_message: OnMessage | None = None,
) -> None:
    """Render (drafts included) and serve a live preview until Ctrl-C; the preview follows
    changes to the database (a new bookmark, an edited entry) as well as to docs/."""
    import threading

    root = root or paths.log_root()
    render_root(root, include_drafts=True)
    require("mkdocs", "site")
    from mkdocs.commands.serve import serve as mkdocs_serve
    from mkdocs.exceptions import Abort, ConfigurationError

    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_database, args=(root, stop, on_message), daemon=True, name="recap-db-watch"
    )
    watcher.start()
    with _mkdocs_messages(on_message, logging.INFO), contextlib.chdir(root):
        try:
            mkdocs_serve(
                config_file=str(root / "mkdocs.yml"),
                dev_addr=dev_addr,
                livereload=True,
                open_in_browser=open_browser,
            )
        except (Abort, ConfigurationError) as exc:
            raise RecapError(f"mkdocs serve: {' '.join(str(exc).split())}") from exc
        finally:
            stop.set()
            watcher.join(timeout=5)


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
    progress: Progress | None = None,
    on_message: OnMessage | None = None,
) -> DeployPlan:
    """Build, then ``mkdocs gh-deploy`` the site to a branch (only describe it with dry_run)."""
    root = root or paths.log_root()
    result = build(root, progress=progress, on_message=on_message)
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

    with _mkdocs_messages(on_message, logging.INFO), contextlib.chdir(root):
        try:
            gh_deploy(cfg, message=message, force=force, no_history=False, ignore_version=True)
        except (Abort, SystemExit) as exc:
            raise RecapError(f"mkdocs gh-deploy failed: {exc}") from exc
    plan.pushed = True
    return plan
