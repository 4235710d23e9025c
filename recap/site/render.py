"""The database rendered into ``docs/``: a post per entry, experiment pages, the links page.

:func:`render` computes every generated file, then :func:`recap.site.manifest.sync` writes only
what changed, never touching a file recap did not write (``docs/.recap-manifest.json`` says which
ones it did). Drafts and hidden entries are left out unless ``include_drafts`` (``site serve``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from recap import paths
from recap.journal.render import LINKS_MARKER, RUNS_MARKER, drop_empty_sections
from recap.site import markdown as md
from recap.site.manifest import Deferred, SyncResult, sync

POSTS = "blog/posts"
EXPERIMENTS = "experiments"
LINKS_PAGE = "links.md"
TAGS_PAGE = "tags.md"
AUTHORS_FILE = "blog/.authors.yml"
AUTHOR_ID = "author"
LATEST_RUNS = 10
PLOTTED_RUNS = 5


@dataclass
class RenderResult(SyncResult):
    posts: int = 0
    redirects: dict[str, str] = field(default_factory=dict)


@dataclass
class _Experiment:
    id: int
    name: str
    page: str  # path of its page, relative to docs/
    primary: str
    direction: str
    question: str
    description: str
    project: str


def render(
    root: Path, conn: sqlite3.Connection, *, include_drafts: bool = False, progress=None
) -> RenderResult:
    """Write the generated Markdown (and plots, copied images) into ``root/docs``."""
    docs = paths.docs_dir(root)
    files: dict[str, bytes | Deferred] = {}
    warnings: list[str] = []
    redirects: dict[str, str] = {}

    allowed = _allowed_categories(root)
    author = _author(root, docs)
    if author:
        files[AUTHORS_FILE] = author.encode()
    metric_keys = _metric_fingerprints(conn)
    experiments = _experiments(root, conn, files, metric_keys)

    where = "WHERE hidden = 0" + ("" if include_drafts else " AND draft = 0")
    entries = conn.execute(f"SELECT * FROM entry {where} ORDER BY date, id").fetchall()
    from recap import config
    from recap import week as weekview

    cfg = config.load(root)
    views = {e["id"]: weekview.view(conn, e, cfg) for e in entries}
    used: set[str] = set()
    track = progress(len(entries)) if progress and len(entries) > 50 else None
    for entry in entries:
        name = md.safe_name(entry["slug"], f"entry-{entry['id']}")
        if name in used:
            name = f"{name}-{entry['id']}"
        used.add(name)
        folder = f"{POSTS}/{name}"
        post_path = f"{folder}/{name}.md"
        text = _post(
            conn,
            entry,
            name,
            [{**i.row, "link_note": i.note} for i in views[entry["id"]].bookmarks],
            [i.row for i in views[entry["id"]].runs],
            [experiments[i.id] for i in views[entry["id"]].experiments if i.id in experiments],
            experiments,
            allowed,
            warnings,
            bool(author),
            files,
            folder,
            metric_keys,
        )
        _copy_media(root, entry["slug"], folder, files, warnings)
        text, missing = md.missing_images(
            text, lambda ref, f=folder: _resolves(docs, f, ref, files)
        )
        if missing:
            warnings.append(
                f"entry {entry['slug']}: image(s) not found, shown as a note: "
                + ", ".join(missing)
                + f" (put them in media/{entry['slug']}/)"
            )
        files[post_path] = text.encode()
        for alias in _json_list(entry["aliases"]) + (
            [entry["permalink"]] if entry["permalink"] else []
        ):
            key = _redirect_key(str(alias))
            if key is None:
                warnings.append(
                    f"entry {entry['slug']}: alias {alias!r} is not a usable path; no redirect made"
                )
            elif key != post_path:
                redirects.setdefault(key, post_path)
        if track:
            track()

    if any(_json_list(e["tags"]) for e in entries):
        files[TAGS_PAGE] = (
            md.front_matter({"title": "Tags"})
            + "# Tags\n\nPosts by tag.\n\n<!-- material/tags -->\n"
        ).encode()
    if conn.execute("SELECT 1 FROM bookmark LIMIT 1").fetchone():
        files[LINKS_PAGE] = _links_page(conn).encode()

    for key in [k for k in redirects if k in files or (docs / k).exists()]:
        warnings.append(f"alias {key} is a page of the site; no redirect made over it")
        del redirects[key]
    result = RenderResult(**vars(sync(docs, files)), posts=len(entries), redirects=redirects)
    result.warnings[:0] = warnings
    return result


# -- posts -------------------------------------------------------------------------------------


def _post(
    conn,
    entry,
    name,
    bookmarks,
    runs,
    linked_exps,
    experiments,
    allowed,
    warnings,
    with_author,
    files,
    folder,
    metric_keys,
) -> str:
    created = _date(entry["date"]) or _date(entry["created"]) or date(1970, 1, 1)
    updated = _date(entry["updated"])
    cats = []
    for cat in _json_list(entry["categories"]):
        if allowed is not None and cat not in allowed:
            warnings.append(
                f"entry {entry['slug']}: category {cat!r} is not in the allowed "
                "categories (mkdocs.yml); left out"
            )
        elif cat not in cats:
            cats.append(str(cat))
    meta: dict = {"title": md.attr_text(entry["title"]) or name, "slug": name}
    meta["date"] = {"created": created}
    if updated and updated > created:
        meta["date"]["updated"] = updated
    if cats:
        meta["categories"] = cats
    tags = [md.attr_text(str(t)) for t in _json_list(entry["tags"]) if str(t).strip()]
    if tags:
        meta["tags"] = tags
    if entry["description"]:
        meta["description"] = md.attr_text(entry["description"])
    if with_author:
        meta["authors"] = [AUTHOR_ID]
    if entry["draft"]:
        meta["draft"] = True
    if entry["search_exclude"]:
        meta["search"] = {"exclude": True}

    body = md.strip_scripts(entry["body"] or "").replace("\r\n", "\n")
    links = md.links_section(bookmarks, heading=not md._heading_before(body, LINKS_MARKER, "link"))
    body = md.place(body, LINKS_MARKER, links)
    section = _runs_section(
        conn,
        runs,
        linked_exps,
        experiments,
        files,
        folder,
        metric_keys,
        heading=not md._heading_before(body, RUNS_MARKER, "run"),
    )
    body = md.place(body, RUNS_MARKER, section)
    # Sections the user left empty are not published; Material's sidebar is the one contents.
    body = drop_empty_sections(body)
    body = md.add_excerpt_break(body)
    return md.front_matter(meta) + body.strip("\n") + "\n"


def _runs_section(
    conn, runs, linked_exps, experiments, files, folder, metric_keys, *, heading: bool
) -> str:
    if not runs and not linked_exps:
        return ""
    out = ["## Runs", ""] if heading else []
    if runs:
        out += [
            "| Experiment | Run | Status | Key params | Primary metric |",
            "|---|---|---|---|---|",
        ]
        for r in runs:
            exp = experiments.get(r["experiment_id"])
            out.append(
                "| "
                + " | ".join(
                    [
                        _exp_link(exp, "../../../"),
                        md.inline(r["id"], 80),
                        md.inline(r["status"]),
                        md.params_text(md.json_dict(r["params"])),
                        _primary_text(r, exp),
                    ]
                )
                + " |"
            )
        out.append("")
        for r in runs:
            rid = md.inline(r["id"], 80)
            out += [f"#### Run {rid}", ""]
            flags = md.flags_block(r["id"], md.json_dict(r["summary"]))
            if flags:
                out += [flags]
            plot = _run_plot(conn, r, files, folder, metric_keys)
            if plot:
                out += [f"![Training curves of run {rid}]({plot})", ""]
            cmd = md.rerun_command(r["id"])
            if cmd:
                out += ["Rerun it:", "", "```bash", cmd, "```", ""]
    if linked_exps:
        out += ["Experiments: " + ", ".join(_exp_link(e, "../../../") for e in linked_exps), ""]
    return "\n".join(out)


def _exp_link(exp: _Experiment | None, prefix: str) -> str:
    if exp is None:
        return "?"
    return f"[{md.inline(exp.name, 80)}]({prefix}{exp.page})"


def _primary_text(run, exp: _Experiment | None) -> str:
    summary = md.json_dict(run["summary"])
    key = exp.primary if exp else ""
    if not key:
        numeric = [k for k, v in summary.items() if isinstance(v, int | float)]
        key = numeric[0] if numeric else ""
    value = summary.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return md.inline(f"{key} = {md.fmt_value(value)}", 80)


def _run_plot(conn, run, files, folder, metric_keys) -> str | None:
    """A deferred PNG of the run's metrics next to the post; drawn only when its data changed."""
    keys = metric_keys.get(run["id"])
    if not keys:
        return None
    fname = f"curves-{md.safe_name(run['id'], 'run')}.png"

    files[f"{folder}/{fname}"] = Deferred(
        _fingerprint(run["id"], keys), lambda: _run_series(conn, run["id"])
    )
    return fname


def _run_series(conn, run_id: str) -> tuple:
    from recap.site.plots import curves_png

    series: dict[str, list[tuple[float, float]]] = {}
    rows = conn.execute(
        "SELECT key, step, epoch, value FROM metric WHERE run_id = ? ORDER BY key, step, id",
        (run_id,),
    )
    for i, row in enumerate(rows):
        x = (
            row["step"]
            if row["step"] is not None
            else (row["epoch"] if row["epoch"] is not None else i)
        )
        series.setdefault(str(row["key"])[:40], []).append((x, row["value"]))
    return (curves_png, series, f"run {run_id}")


def _experiment_series(conn, run_ids: list[str], key: str, name: str) -> bytes:
    from recap.site.plots import curves_png

    series: dict[str, list[tuple[float, float]]] = {}
    for run_id in run_ids:
        rows = conn.execute(
            "SELECT step, epoch, value FROM metric WHERE run_id = ? AND key = ? ORDER BY step, id",
            (run_id, key),
        ).fetchall()
        pts = [(r["step"] if r["step"] is not None else i, r["value"]) for i, r in enumerate(rows)]
        if pts:
            series[str(run_id)[:40]] = pts
    return (curves_png, series, f"{name}: {key}")


def _metric_fingerprints(conn) -> dict[str, list]:
    """Per run, a cheap summary of its metric rows: a plot is redrawn only when this changes."""
    out: dict[str, list] = {}
    for row in conn.execute(
        "SELECT run_id, key, count(*), max(id), total(value) FROM metric "
        "GROUP BY run_id, key ORDER BY run_id, key"
    ):
        out.setdefault(row[0], []).append(list(row)[1:])
    return out


def _fingerprint(*parts) -> str:
    from recap.site.plots import PLOT_VERSION

    raw = json.dumps([PLOT_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


# -- experiments -------------------------------------------------------------------------------


def _experiments(root, conn, files, metric_keys) -> dict[int, _Experiment]:
    exps: dict[int, _Experiment] = {}
    used: set[str] = set()
    for row in conn.execute("SELECT * FROM experiment ORDER BY name"):
        name = md.safe_name(row["name"], f"experiment-{row['id']}")
        if name in used or name == "index":
            name = f"{name}-{row['id']}"
        used.add(name)
        spec, readme = _experiment_files(root, row["folder"])
        metric = spec.get("metric") if isinstance(spec.get("metric"), dict) else {}
        exps[row["id"]] = _Experiment(
            row["id"],
            row["name"],
            f"{EXPERIMENTS}/{name}.md",
            str(metric.get("primary", "")),
            str(metric.get("direction", "")),
            readme,
            row["description"],
            row["project"],
        )
    for exp in exps.values():
        files[exp.page] = _experiment_page(conn, exp, files, metric_keys).encode()
    if exps:
        files[f"{EXPERIMENTS}/index.md"] = _experiments_index(conn, exps).encode()
    return exps


def _experiment_files(root: Path, folder: str) -> tuple[dict, str]:
    try:
        base = paths.inside(root, root / folder)
    except Exception:
        return {}, ""
    spec: dict = {}
    try:
        spec = tomllib.loads((base / "experiment.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        pass
    try:
        readme = (base / "README.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        readme = ""
    return spec, readme


def _question(readme: str) -> str:
    """The README without its title, headings pushed one level down under '## Question'."""
    lines = md.strip_scripts(readme).replace("\r\n", "\n").split("\n")
    mask = md._code_mask(lines)
    out = []
    for i, line in enumerate(lines):
        if not mask[i] and line.startswith("# ") and not any(x.strip() for x in out):
            continue  # the README's own title: the page has one
        if not mask[i] and line.startswith("#"):
            line = "#" + line if line.startswith("##") else "##" + line
        out.append(line)
    return md.unlink_local("\n".join(out).strip("\n"))


def _experiment_page(conn, exp: _Experiment, files, metric_keys) -> str:
    runs = conn.execute(
        "SELECT * FROM run WHERE experiment_id = ? ORDER BY started DESC, id DESC "
        f"LIMIT {LATEST_RUNS}",
        (exp.id,),
    ).fetchall()
    out = [
        md.front_matter({"title": md.attr_text(exp.name)}).rstrip("\n"),
        "",
        f"# {md.inline(exp.name, 120)}",
        "",
    ]
    facts = []
    if exp.project:
        facts.append(f"Project: {md.inline(exp.project)}")
    if exp.primary:
        facts.append(
            f"primary metric: {md.inline(exp.primary)}"
            + (f" ({md.inline(exp.direction)})" if exp.direction else "")
        )
    if facts:
        out += ["; ".join(facts) + ".", ""]
    if exp.description:
        out += [md.inline(exp.description, 1000), ""]
    out += ["## Question", "", _question(exp.question) or "(no README.md in the folder yet)", ""]
    out += ["## Latest runs", ""]
    if runs:
        out += ["| Run | Status | Started | Key params | Primary metric |", "|---|---|---|---|---|"]
        for r in runs:
            out.append(
                "| "
                + " | ".join(
                    [
                        md.inline(r["id"], 80),
                        md.inline(r["status"]),
                        md.inline((r["started"] or "")[:16].replace("T", " ")),
                        md.params_text(md.json_dict(r["params"])),
                        _primary_text(r, exp),
                    ]
                )
                + " |"
            )
        out.append("")
        for r in runs:
            flags = md.flags_block(r["id"], md.json_dict(r["summary"]))
            if flags:
                out += [flags]
    else:
        out += ["No runs yet.", ""]
    plotted = [
        r["id"]
        for r in runs[:PLOTTED_RUNS]
        if any(k[0] == exp.primary for k in metric_keys.get(r["id"], []))
    ]
    if exp.primary and plotted:
        stem = exp.page.rsplit("/", 1)[1][:-3]
        rel = f"{EXPERIMENTS}/{stem}/{md.safe_name(exp.primary, 'metric')}.png"
        key = _fingerprint(exp.primary, [(rid, metric_keys.get(rid)) for rid in plotted])
        files[rel] = Deferred(
            key, lambda ids=plotted, k=exp.primary, n=exp.name: _experiment_series(conn, ids, k, n)
        )
        out += [
            "## Metric",
            "",
            f"![{md.inline(exp.primary)} of the latest runs]({rel.split('/', 1)[1]})",
            "",
        ]
    out += ["## How to rerun", "", "```bash"]
    if md.RUN_ID.match(exp.name):
        out.append(f"recap exp run {exp.name}")
    if runs and md.rerun_command(runs[0]["id"]):
        out.append(md.rerun_command(runs[0]["id"]) + "   # the latest run, same params and seed")
    out += ["```", ""]
    return "\n".join(out)


def _experiments_index(conn, exps: dict[int, _Experiment]) -> str:
    counts = dict(conn.execute("SELECT experiment_id, count(*) FROM run GROUP BY experiment_id"))
    out = [
        md.front_matter({"title": "Experiments"}).rstrip("\n"),
        "",
        "# Experiments",
        "",
        "| Experiment | Project | Runs | Description |",
        "|---|---|---|---|",
    ]
    for exp in sorted(exps.values(), key=lambda e: e.name.lower()):
        out.append(
            "| "
            + " | ".join(
                [
                    f"[{md.inline(exp.name, 80)}]({exp.page.rsplit('/', 1)[1]})",
                    md.inline(exp.project),
                    str(counts.get(exp.id, 0)),
                    md.inline(exp.description, 160),
                ]
            )
            + " |"
        )
    return "\n".join(out) + "\n"


# -- links page --------------------------------------------------------------------------------


def _links_page(conn) -> str:
    groups: dict[str, list[str]] = {}
    for b in conn.execute(
        "SELECT url, title, note, tags FROM bookmark ORDER BY added DESC, id DESC"
    ):
        line = md.bookmark_line(b)
        tags = sorted({str(t) for t in _json_list(b["tags"]) if str(t).strip()})
        for tag in tags or [""]:
            groups.setdefault(tag, []).append(line)
    out = [
        md.front_matter({"title": "Links"}).rstrip("\n"),
        "",
        "# Links",
        "",
        "Every bookmark, by tag, newest first.",
        "",
    ]
    for tag in sorted(groups, key=lambda t: (t == "", t.lower())):
        out += [f"## {md.inline(tag) if tag else 'Untagged'}", "", *groups[tag], ""]
    return "\n".join(out)


# -- helpers -----------------------------------------------------------------------------------


def _by_entry(rows) -> dict[int, list]:
    out: dict[int, list] = {}
    for row in rows:
        out.setdefault(row["entry_id"], []).append(row)
    return out


def _json_list(raw) -> list:
    return md._json_list(raw)


def _date(value) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def _redirect_key(alias: str) -> str | None:
    """An old URL as the page path mkdocs-redirects expects ('old/page/' -> 'old/page/index.md')."""
    alias = alias.strip().split("#", 1)[0].split("?", 1)[0]
    if "://" in alias:
        alias = "/" + alias.split("://", 1)[1].split("/", 1)[-1]
    parts = [p for p in alias.strip("/").split("/") if p]
    if not parts or any(p in (".", "..") or not md.SAFE_ALIAS.match(p) for p in parts):
        return None
    last = parts[-1]
    if alias.endswith("/") or "." not in last:
        parts.append("index.md")
    else:
        parts[-1] = last.rsplit(".", 1)[0] + ".md"
    return str(PurePosixPath(*parts))


def _resolves(docs: Path, folder: str, ref: str, files) -> bool:
    """Whether a relative reference from a post in ``folder`` lands on a file of the site."""
    import posixpath
    from urllib.parse import unquote

    target = posixpath.normpath(posixpath.join(folder, unquote(ref)))
    if target.startswith("../") or target in files:
        return target in files
    return (docs / target).is_file()


def _copy_media(root: Path, slug: str, folder: str, files, warnings) -> None:
    """An imported post's images (media/<slug>/...) copied next to the post, same relative path."""
    media = paths.media_dir(root)
    base = media / slug
    try:
        base = paths.inside(media, base)
    except Exception:
        return
    if not base.is_dir() or base == media.resolve():
        return
    for path in sorted(base.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(base).as_posix()
        if rel.endswith(".md"):
            continue  # never turn a media file into a page
        files[f"{folder}/{rel}"] = path.read_bytes()


def _allowed_categories(root: Path) -> set[str] | None:
    """The blog plugin's categories_allowed from mkdocs.yml (None: anything goes)."""
    cfg = read_mkdocs_yml(root)
    for plugin in cfg.get("plugins") or []:
        if isinstance(plugin, dict):
            for name, opts in plugin.items():
                if name in ("blog", "material/blog") and isinstance(opts, dict):
                    allowed = opts.get("categories_allowed")
                    return {str(c) for c in allowed} if allowed else None
    return None


def read_mkdocs_yml(root: Path) -> dict:
    """mkdocs.yml as plain data; custom tags (!ENV, !!python/name) read as None."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    try:
        data = yaml.load((root / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _author(root: Path, docs: Path) -> str:
    """The blog's .authors.yml for recap.toml's author (empty when none is set)."""
    from recap import config

    try:
        name = str(config.load(root).get("author") or "").strip()
    except Exception:
        return ""
    if not name:
        return ""
    initial = html_initial(name)
    avatar = (
        "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E"
        "%3Crect width='32' height='32' fill='%23607d8b'/%3E%3Ctext x='16' y='22' "
        f"font-size='18' text-anchor='middle' fill='white'%3E{initial}%3C/text%3E%3C/svg%3E"
    )
    return (
        md.front_matter(
            {
                "authors": {
                    AUTHOR_ID: {"name": md.attr_text(name), "description": "", "avatar": avatar}
                }
            }
        ).strip("-\n")
        + "\n"
    )


def html_initial(name: str) -> str:
    ch = name[:1].upper()
    return ch if ch.isalnum() and ch.isascii() else "A"
