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
from recap.site import artifacts
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
    tolerance: float = 0.0


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
    # each run's images, videos and metrics, read and copied once however many pages show them
    media_cache: dict = {}

    def media(run):
        return artifacts.collect(root, conn, run, files, media_cache)

    experiments = _experiments(root, conn, files, metric_keys, media)

    where = "WHERE hidden = 0" + ("" if include_drafts else " AND draft = 0")
    entries = conn.execute(f"SELECT * FROM entry {where} ORDER BY date, id").fetchall()
    from recap import config
    from recap import week as weekview

    cfg = config.load(root)
    post_up, post_url = _post_site(root)
    views = {e["id"]: weekview.view(conn, e, cfg) for e in entries}
    used: set[str] = set()
    media_names = _media_folders(root)
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
            cfg,
            [i.note for i in views[entry["id"]].runs],
            media,
        )
        _copy_media(root, entry["slug"], folder, files, warnings, media_names)
        text, missing = md.missing_images(
            text, lambda ref, f=folder: _resolves(docs, f, ref, files)
        )
        text = md.rebase_html_images(
            text,
            post_up(bool(_json_list(entry["categories"]))),
            post_url,
            folder,
            lambda ref, f=folder: _resolves(docs, f, ref, files),
        )
        if missing:
            warnings.append(
                f"entry {entry['slug']}: image(s) not found, left out of the post: "
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

    for run in conn.execute(
        "SELECT r.*, e.name AS experiment FROM run r JOIN experiment e ON e.id = r.experiment_id "
        "WHERE r.status != 'running' ORDER BY r.started"
    ).fetchall():
        files[_run_page_path(run["id"])] = _run_page(
            conn, run, experiments.get(run["experiment_id"]), files, metric_keys, media(run)
        ).encode()
    for line in dict.fromkeys(x for m in media_cache.values() for x in m.skipped):
        warnings.append(line)

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
    cfg,
    run_notes,
    media,
) -> str:
    created = _date(entry["date"]) or _date(entry["created"]) or date(1970, 1, 1)
    updated = _date(entry["updated"])
    if entry["source_path"] and entry["updated"] <= entry["created"]:
        updated = None  # an imported post keeps its own date until it is edited
    cats = []
    for cat in _json_list(entry["categories"]):
        if allowed is not None and cat not in allowed:
            warnings.append(
                f"entry {entry['slug']}: category {cat!r} is not in the allowed "
                "categories (mkdocs.yml); left out"
            )
        elif cat not in cats:
            cats.append(str(cat))
    meta: dict = {"title": md.attr_text(_display_title(entry, cfg)) or name, "slug": name}
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
    runs = [{**dict(r), "link_note": n} for r, n in zip(runs, run_notes, strict=False)]
    # Runs land under the entry's section of their project ([sections] in recap.toml).
    sections = cfg.get("sections") or {}
    titles = md.section_titles(body)
    rest = []
    placed: dict[str, list] = {}
    for r in runs:
        title = next((t for t in titles if sections.get(t) == r.get("project")), None)
        if title is None:
            rest.append(r)
        else:
            placed.setdefault(title, []).append(r)
    for title, group in placed.items():
        block = _runs_block(conn, group, experiments, files, folder, metric_keys, media)
        body = md.append_to_section(body, title, block)
    section = _runs_section(
        conn,
        rest,
        linked_exps,
        experiments,
        files,
        folder,
        metric_keys,
        media,
        heading=not md._heading_before(body, RUNS_MARKER, "run"),
    )
    body = md.place(body, RUNS_MARKER, section)
    # Sections the user left empty are not published; Material's sidebar is the one contents.
    body = drop_empty_sections(body)
    body = md.add_excerpt_break(body)
    return md.front_matter(meta) + body.strip("\n") + "\n"


def _display_title(entry, cfg) -> str:
    """Weekly posts that share a title ("Weekly Recap") stay distinct: the week or the date."""
    title = entry["title"] or ""
    style = (cfg or {}).get("weekly_subtitle", "week")
    usual = str((cfg or {}).get("entry_title") or "Weekly Recap").strip().lower()
    if style == "none" or title.strip().lower() != usual:
        return title
    if style == "date" or not entry["week"] or entry["kind"] != "weekly":
        day = _date(entry["date"])
        extra = f"{day.day} {day:%b %Y}" if day else entry["date"]
    else:
        extra = entry["week"]
    return title if extra in title else f"{title} · {extra}"


def _runs_section(
    conn, runs, linked_exps, experiments, files, folder, metric_keys, media, *, heading: bool
) -> str:
    if not runs and not linked_exps:
        return ""
    out = ["## Runs", ""] if heading else []
    if runs:
        out.append(_runs_block(conn, runs, experiments, files, folder, metric_keys, media))
    if linked_exps:
        out += ["Experiments: " + ", ".join(_exp_link(e, "../../../") for e in linked_exps), ""]
    return "\n".join(out)


def _run_page_path(run_id: str) -> str:
    return f"{EXPERIMENTS}/runs/{md.safe_name(run_id, 'run')}.md"


def _runs_table(conn, runs, exp: _Experiment | None, prefix: str) -> list[str]:
    """One experiment's runs: key params (what differs + headline), primary, parity, flags."""
    from recap.lab import week as labweek

    name = exp.name if exp else ""
    keys = labweek.key_param_names(conn, name, runs) if name else []
    primary = exp.primary if exp else ""
    better = {"min": "lower is better", "max": "higher is better"}.get(exp.direction if exp else "")
    head = md.inline(primary or "primary metric") + (f" ({better})" if better else "")
    out = [f"| Run | Key params | {head} | Parity | Flags |", "|---|---|---|---|---|"]
    for r in runs:
        summary = md.json_dict(r["summary"])
        params = labweek.params_label(md.json_dict(r["params"]), keys) or "defaults"
        if r["seed"] is not None:
            params += f", seed={r['seed']}"
        status = "" if r["status"] == "succeeded" else f" ({md.inline(r['status'])})"
        value = _primary_text(r, exp).split(" = ", 1)[-1]
        out.append(
            f"| [{md.inline(r['id'], 80)}]({prefix}{_run_page_path(r['id'])}){status} "
            f"| {md.inline(params, 160)} | {value} "
            f"| {md.inline(labweek.parity_text(summary)) or '—'} "
            f"| {md.inline(labweek.flags_text(summary)) or '—'} |"
        )
    return out


def _runs_block(conn, runs, experiments, files, folder, metric_keys, media) -> str:
    """The runs of a post, one table and one plot per experiment, then how to rerun them."""
    from recap.lab import week as labweek

    out: list[str] = []
    groups: dict[int, list] = {}
    for r in runs:
        groups.setdefault(r["experiment_id"], []).append(r)
    for exp_id, group in groups.items():
        exp = experiments.get(exp_id)
        if len(groups) > 1 or exp is None:
            out += [f"#### {_exp_link(exp, '../../../')}", ""]
        out += _runs_table(conn, group, exp, "../../../") + [""]
        for r in group:
            if r.get("link_note"):
                out.append(f"- {md.inline(r['id'], 80)}: {md.inline(r['link_note'])}")
        if any(r.get("link_note") for r in group):
            out.append("")
        for r in group:
            flags = md.flags_block(r["id"], md.json_dict(r["summary"]))
            if flags:
                out += [flags]
        keys = labweek.key_param_names(conn, exp.name, group) if exp else []
        plot = _group_plot(conn, group, exp, keys, files, folder, metric_keys)
        if plot:
            what = ", ".join(md.inline(r["id"], 80) for r in group)
            out += [f"![Training curves of run {what}]({plot})", ""]
        for r in group:
            shown = artifacts.section(media(r), "../../../", limit=artifacts.IMAGES_ELSEWHERE)
            if shown:
                out += [f"Run {md.inline(r['id'], 80)}:", "", *shown]
        cmds = [md.rerun_command(r["id"]) for r in group if md.rerun_command(r["id"])]
        if cmds:
            out += ["Rerun:", "", "```bash", *cmds, "```", ""]
    return "\n".join(out)


def _group_plot(conn, runs, exp, keys, files, folder, metric_keys) -> str | None:
    """A deferred PNG of these runs' curves, labelled by what differs; redrawn on new data."""
    from recap.lab import week as labweek

    runs = [r for r in runs if metric_keys.get(r["id"])][:PLOTTED_RUNS]
    if not runs:
        return None
    labels = {}
    for r in runs:
        label = labweek.params_label(md.json_dict(r["params"]), keys)
        labels[r["id"]] = label if len(runs) > 1 and label else ("" if len(runs) == 1 else r["id"])
    if len(set(labels.values())) < len(runs):
        labels = {r["id"]: (f"{labels[r['id']]} {r['id'][-6:]}").strip() for r in runs}
    stem = "-".join(md.safe_name(r["id"], "run") for r in runs)
    if len(stem) > 60:
        stem = hashlib.sha256(stem.encode()).hexdigest()[:16]
    fname = f"curves-{stem}.png"
    primary, direction = (exp.primary, exp.direction or "min") if exp else ("", "min")
    files[f"{folder}/{fname}"] = Deferred(
        _fingerprint([(r["id"], metric_keys.get(r["id"])) for r in runs], labels, primary),
        lambda: _runs_series(conn, labels, primary, direction),
    )
    return fname


def _series_of(conn, run_id: str) -> tuple[dict, str]:
    series: dict[str, list[tuple[float, float]]] = {}
    by_epoch = True
    rows = conn.execute(
        "SELECT key, step, epoch, value FROM metric WHERE run_id = ? ORDER BY key, step, id",
        (run_id,),
    ).fetchall()
    by_epoch = all(r["epoch"] is not None for r in rows) and any(r["step"] is None for r in rows)
    for i, row in enumerate(rows):
        if by_epoch:
            x = row["epoch"]
        else:
            x = (
                row["step"]
                if row["step"] is not None
                else (row["epoch"] if row["epoch"] is not None else i)
            )
        series.setdefault(str(row["key"])[:40], []).append((x, row["value"]))
    return series, "epoch" if by_epoch else "step"


def _runs_series(conn, labels: dict, primary: str, direction: str) -> tuple:
    from recap.site.plots import curves_png

    runs, xlabel = {}, "step"
    for run_id, label in labels.items():
        runs[label], xlabel = _series_of(conn, run_id)
    title = "training curves" if len(labels) > 1 else f"run {next(iter(labels))}"
    return (curves_png, {}, title, runs, primary, direction, xlabel)


def _pairs_table(items: dict, head: str) -> list[str]:
    """A run's params or results as a Markdown table: one pair a row, or two pairs a row past 12
    (a style run has 37 params and 26 results; one a row pushed everything a screen down)."""
    cells = [(md.inline(k), md.inline(md.fmt_value(v), 200)) for k, v in items.items()]
    per = 2 if len(cells) > 12 else 1
    rows = -(-len(cells) // per)
    out = [f"| {head} | Value " * per + "|", "|---|---" * per + "|"]
    for r in range(rows):
        # column-major: each pair of columns reads down in the params' own order
        row = [cells[c * rows + r] if c * rows + r < len(cells) else ("", "") for c in range(per)]
        out.append("".join(f"| {k} | {v} " for k, v in row) + "|")
    return out


def _run_page(conn, run, exp: _Experiment | None, files, metric_keys, media) -> str:
    """A page per run: params, metrics, artifacts, environment, rerun command and history."""
    from recap.lab import week as labweek

    rid = md.inline(run["id"], 80)
    params = md.json_dict(run["params"])
    summary = md.json_dict(run["summary"])
    env = md.json_dict(run["environment"])
    out = [
        md.front_matter({"title": md.attr_text(f"Run {run['id']}")}).rstrip("\n"),
        "",
        f"# Run {rid}",
        "",
        f"Experiment {_exp_link(exp, '../../') if exp else md.inline(run['experiment'])}; "
        f"status {md.inline(run['status'])}; started {md.inline((run['started'] or '')[:16])}; "
        f"seed {md.inline(str(run['seed']))}; device {md.inline(str(run['device'] or '—'))}.",
        "",
    ]
    flags = md.flags_block(run["id"], summary)
    if flags:
        out += [flags]
    out += ["## Params", "", *_pairs_table(params, "Param")]
    results = {k: v for k, v in summary.items() if k != "flags"}
    out += ["", "## Results", "", *_pairs_table(results, "Metric")]
    parity = labweek.parity_text(summary)
    if parity:
        out += ["", f"Parity: {md.inline(parity)}."]
    out.append("")
    if metric_keys.get(run["id"]):
        fname = f"{md.safe_name(run['id'], 'run')}-curves.png"
        primary, direction = (exp.primary, exp.direction or "min") if exp else ("", "min")
        files[f"{EXPERIMENTS}/runs/{fname}"] = Deferred(
            _fingerprint(run["id"], metric_keys.get(run["id"]), primary),
            lambda: _runs_series(conn, {run["id"]: ""}, primary, direction),
        )
        out += [f"![Training curves of run {rid}]({fname})", ""]
    out += artifacts.section(media, "../../", limit=artifacts.IMAGES_PER_RUN, heading="## Outputs")
    arts = conn.execute(
        "SELECT path, kind, size, sha256 FROM artifact WHERE run_id = ? ORDER BY path",
        (run["id"],),
    ).fetchall()
    if arts:
        out += ["## Artifacts", "", "| Path | Kind | Size | sha256 |", "|---|---|---|---|"]
        out += [
            f"| {md.inline(a['path'], 120)} | {md.inline(a['kind'])} | {a['size']} B "
            f"| `{md.inline(a['sha256'][:16])}` |"
            for a in arts
        ]
        out.append("")
    out += ["## Environment", ""]
    git = f"{run['git_commit'] or '—'}" + (" (dirty)" if run["git_dirty"] else "")
    out += [f"- git: `{md.inline(git)}`"]
    for k in ("python", "torch", "cuda", "gpu", "platform"):
        if env.get(k):
            out.append(f"- {k}: {md.inline(str(env[k]), 120)}")
    out.append("")
    cmd = md.rerun_command(run["id"])
    if cmd:
        out += ["## Rerun", "", "```bash", cmd, "```", ""]
    out += _rerun_history(conn, run, exp)
    return "\n".join(out)


def _rerun_history(conn, run, exp) -> list[str]:
    reruns = conn.execute(
        "SELECT * FROM run WHERE parent_id = ? ORDER BY started", (run["id"],)
    ).fetchall()
    if not reruns:
        return []
    primary = exp.primary if exp else ""
    before = md.json_dict(run["summary"]).get(primary)
    out = [
        "## Rerun history",
        "",
        "| Rerun | Started | Status | " + md.inline(primary or "primary") + " | Verdict |",
        "|---|---|---|---|---|",
    ]
    for r in reruns:
        now = md.json_dict(r["summary"]).get(primary)
        if r["status"] != "succeeded" or not isinstance(now, int | float):
            verdict = "did not finish"
        elif isinstance(before, int | float):
            diff, tol = abs(now - before), exp.tolerance if exp else 0.0
            verdict = (
                f"reproduced (off by {diff:.2g}, tolerance {tol:g})"
                if diff <= tol
                else f"did not reproduce (off by {diff:.3g}, tolerance {tol:g})"
            )
        else:
            verdict = "—"
        out.append(
            f"| [{md.inline(r['id'], 80)}]({md.safe_name(r['id'], 'run')}.md) "
            f"| {md.inline((r['started'] or '')[:16])} | {md.inline(r['status'])} "
            f"| {md.inline(md.fmt_value(now)) if now is not None else '—'} | {verdict} |"
        )
    return out + [""]


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


def _experiment_series(conn, labels: dict, key: str, name: str, direction: str) -> tuple:
    """The primary metric of an experiment's latest runs, each labelled by what differs."""
    from recap.site.plots import curves_png

    runs: dict[str, dict] = {}
    xlabel = "step"
    for run_id, label in labels.items():
        series, xlabel = _series_of(conn, run_id)
        if key in series:
            runs[label[:40]] = {key: series[key]}
    return (curves_png, {}, f"{name}: {key}", runs, key, direction, xlabel)


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


def _experiments(root, conn, files, metric_keys, media) -> dict[int, _Experiment]:
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
            float(metric.get("tolerance", 0.0) or 0.0)
            if isinstance(metric.get("tolerance", 0.0), int | float)
            else 0.0,
        )
    for exp in exps.values():
        files[exp.page] = _experiment_page(conn, exp, files, metric_keys, media).encode()
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


def _split_readme(text: str) -> tuple[str, str]:
    """(the README's lead, its sections): the lead states the question and stays on top; the
    sections (a long params table) go after the runs, so the runs are not a screen down."""
    lines = text.split("\n")
    mask = md._code_mask(lines)
    at = next((i for i, line in enumerate(lines) if not mask[i] and line.startswith("#")), None)
    if at is None:
        return text, ""
    return "\n".join(lines[:at]).strip("\n"), "\n".join(lines[at:]).strip("\n")


def _experiment_page(conn, exp: _Experiment, files, metric_keys, media) -> str:
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
    intro, about = _split_readme(_question(exp.question))
    out += ["## Question", "", intro or "(no README.md in the folder yet)", ""]
    out += ["## Latest runs", ""]
    if runs:
        out += _runs_table(conn, runs, exp, "../")
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
        from recap.lab import week as labweek

        shown = [r for r in runs if r["id"] in plotted]
        keys = labweek.key_param_names(conn, exp.name, shown)
        labels = {
            r["id"]: (
                labweek.params_label(md.json_dict(r["params"]), keys) + f" {r['id'][-6:]}"
            ).strip()
            for r in shown
        }
        key = _fingerprint(exp.primary, [(rid, metric_keys.get(rid)) for rid in plotted], labels)
        files[rel] = Deferred(
            key,
            lambda k=exp.primary, d=exp.direction or "min", n=exp.name, labels=labels: (
                _experiment_series(conn, labels, k, n, d)
            ),
        )
        out += [
            "## Metric",
            "",
            f"![{md.inline(exp.primary)} of the latest runs]({rel.split('/', 1)[1]})",
            "",
        ]
    latest = next((r for r in runs if r["status"] != "running"), None)
    if latest is not None:
        shown = artifacts.section(media(latest), "../", limit=artifacts.IMAGES_ELSEWHERE)
        if shown:
            link = f"[{md.inline(latest['id'], 80)}](../{_run_page_path(latest['id'])})"
            out += ["## Latest outputs", "", f"From run {link}.", "", *shown]
    if about:  # the README's own sections (its params, what a run writes) after the runs
        out += ["## About this experiment", "", about, ""]
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


def _media_folders(root: Path) -> set[str]:
    """The names under media/ (one listing, so that posts without media cost no lookups)."""
    import os

    try:
        return set(os.listdir(paths.media_dir(root)))
    except OSError:
        return set()


def _copy_media(root: Path, slug: str, folder: str, files, warnings, names: set[str]) -> None:
    """An imported post's images (media/<slug>/...) copied next to the post, same relative path."""
    if slug.split("/", 1)[0] not in names:
        return
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


def _post_site(root: Path):
    """Where a post and its files end up on the site, from the blog plugin's options:
    ``up(has_category)`` leads from a post's URL (``blog/2021/01/24/slug/``) to the site root,
    ``url(path)`` is where a file under docs/ is served (the plugin moves files of its posts
    folder, ``blog/posts/x/a.png``, up to ``blog/x/a.png``)."""
    import posixpath
    import re

    cfg = read_mkdocs_yml(root)
    opts: dict = {}
    for plugin in cfg.get("plugins") or []:
        if isinstance(plugin, dict):
            for name, value in plugin.items():
                if name in ("blog", "material/blog") and isinstance(value, dict):
                    opts = value
    blog = posixpath.normpath(str(opts.get("blog_dir") or "blog"))
    try:
        post_dir = posixpath.normpath(str(opts.get("post_dir") or "{blog}/posts").format(blog=blog))
    except (KeyError, IndexError, ValueError):
        post_dir = f"{blog}/posts"
    fmt = str(opts.get("post_url_format") or "{date}/{slug}")
    date_parts = str(opts.get("post_url_date_format") or "yyyy/MM/dd").strip("/").count("/") + 1
    dir_urls = cfg.get("use_directory_urls", True) is not False

    def up(has_category: bool) -> str:
        try:
            url = fmt.format(
                date="/".join(["d"] * date_parts),
                slug="s",
                file="f",
                categories="c" if has_category else "",
            )
        except (KeyError, IndexError, ValueError):
            url = "d/" * date_parts + "s"
        url = re.sub(r"//+", "/", url.strip("/"))
        parts = [p for p in (blog + "/" + url).split("/") if p not in ("", ".")]
        return "../" * (len(parts) if dir_urls else max(len(parts) - 1, 0))

    def url(path: str) -> str:
        if path.startswith(post_dir + "/"):
            path = posixpath.normpath(blog + "/" + path[len(post_dir) + 1 :])
        return path

    return up, url


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
