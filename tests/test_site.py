"""The site: entries, bookmarks and runs rendered into docs/, and the MkDocs build."""

from __future__ import annotations

import contextlib
import json
import struct
import zlib
from pathlib import Path

import pytest

from recap import db as recap_db

NOW = "2021-01-25T10:00:00.000Z"
POST = "docs/blog/posts/weekly-recap-2021-w03/weekly-recap-2021-w03.md"
IMPORTED = "docs/blog/posts/weekly-recap/weekly-recap.md"

HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '<b id="injected">bold</b>',
    "[click](javascript:window.__pwned=3)",
    "# Heading {: #injected2 onclick=alert(1) }",
    "<!-- more --> --- title: x",
]


def tiny_png() -> bytes:
    """A valid 2x2 PNG without any imaging library."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def add_entry(
    conn,
    slug,
    title,
    body,
    *,
    date="2021-01-24",
    tags=(),
    categories=("recap",),
    aliases=(),
    draft=0,
    hidden=0,
    description="",
    toc=1,
    kind="weekly",
) -> int:
    cur = conn.execute(
        "INSERT INTO entry (slug, title, kind, week, date, description, body, categories, tags, "
        "aliases, draft, hidden, toc, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            slug,
            title,
            kind,
            "2021-W03",
            date,
            description,
            body,
            json.dumps(list(categories)),
            json.dumps(list(tags)),
            json.dumps(list(aliases)),
            draft,
            hidden,
            toc,
            NOW,
            NOW,
        ),
    )
    return cur.lastrowid


def add_bookmark(conn, url, title, *, tags=(), note="", added=NOW, entry_id=None) -> int:
    cur = conn.execute(
        "INSERT INTO bookmark (url, url_key, title, note, tags, added, updated) "
        "VALUES (?,?,?,?,?,?,?)",
        (url, url, title, note, json.dumps(list(tags)), added, added),
    )
    if entry_id:
        conn.execute(
            "INSERT INTO link (entry_id, bookmark_id, created) VALUES (?,?,?)",
            (entry_id, cur.lastrowid, NOW),
        )
    return cur.lastrowid


def seed(root: Path, *, hostile: bool = False) -> None:
    """A small log: a weekly entry with links and a flagged run, an imported post with an image
    and an alias, a draft, a hidden post, an experiment with a README and a metric."""
    conn = recap_db.connect(root / "recap.db")
    body = (
        "## Introduction\n\nThis week the zebracorn model learned to count.\n\n"
        "## Style Transfer\n\nMore tuning.\n\n<!-- recap:links -->\n\n<!-- recap:runs -->\n\n"
        "## Conclusion\n\nMore next week.\n"
    )
    tags = ["unity", "fastai"] + (['<b id="injected3">tag</b>'] if hostile else [])
    week = add_entry(
        conn,
        "weekly-recap-2021-w03",
        "Weekly Recap 3",
        body,
        tags=tags,
        description="What I did in week 3.",
    )
    add_bookmark(
        conn,
        "https://docs.fast.ai/tutorial.vision.html",
        "fastai vision tutorial",
        tags=["fastai", "ml"],
        note="keypoints scale to [-1, 1]",
        entry_id=week,
    )
    add_bookmark(
        conn, "https://www.unity.com/barracuda", "Barracuda docs", tags=["unity"], entry_id=week
    )
    conn.execute("UPDATE link SET note = 'read the layer list' WHERE bookmark_id = 2")
    add_bookmark(conn, "https://example.org/untagged", "", entry_id=week)
    add_bookmark(conn, "https://example.org/not-linked", "Only on the links page", tags=["misc"])
    if hostile:
        for i, title in enumerate(HOSTILE):
            add_bookmark(
                conn, f"https://evil.example/{i}", title, tags=[title], note=title, entry_id=week
            )
        add_bookmark(conn, "javascript:window.__pwned=4", "js url", tags=["evil"], entry_id=week)
    conn.execute(
        "INSERT INTO experiment (name, folder, project, description) VALUES "
        "('pets', 'experiments/pets', 'fastai-unity', 'Pet breeds classifier')"
    )
    folder = root / "experiments" / "pets"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(
        "# pets\n\nDoes a resnet18 beat the mean baseline?\n\nSee [the config](experiment.toml)"
        " and ![a sample](samples/cat.png), or [fastai](https://docs.fast.ai/).\n\n"
        "## Params\n\n| param | meaning |\n|---|---|\n| `lr` | the learning rate |\n\n"
        "```\n# a comment in code, not a heading\n```\n"
    )
    (folder / "experiment.toml").write_text("[metric]\nprimary = 'accuracy'\ndirection = 'max'\n")
    conn.execute(
        "INSERT INTO run (id, experiment_id, status, params, summary, started) VALUES "
        "('r-0001', 1, 'finished', ?, ?, ?)",
        (
            json.dumps({"lr": 0.01, "bs": 8, "arch": "resnet18"}),
            json.dumps({"accuracy": 0.912, "flags": {"sanity": "not better than the mean"}}),
            NOW,
        ),
    )
    conn.execute(
        "INSERT INTO link (entry_id, run_id, created) VALUES (?, 'r-0001', ?)", (week, NOW)
    )
    conn.execute(
        "INSERT INTO link (entry_id, experiment_id, created) VALUES (?, 1, ?)", (week, NOW)
    )
    for step in range(6):
        for key, value in (("accuracy", 0.5 + step / 15), ("loss", 1.2 - step / 6)):
            conn.execute(
                "INSERT INTO metric (run_id, key, step, value, time) VALUES ('r-0001', ?, ?, ?, ?)",
                (key, step, value, NOW),
            )
    imported = (
        "## Introduction\n\nIt's been a couple weeks.\n\n## Style Transfer Updates\n\n"
        "![](./images/slow_style_transfer.png)\n\n"
        "<!-- Cloudflare Web Analytics --><script defer src='https://static.cloudflare"
        "insights.com/beacon.min.js'></script><!-- End Cloudflare Web Analytics -->\n"
    )
    add_entry(
        conn,
        "weekly-recap",
        "Weekly Recap",
        imported,
        date="2021-01-10",
        aliases=["/Weekly-Recap-1/", "/blog/"],
        kind="imported",
        toc=0,
        description="A summary of what I've been working on.",
    )
    media = root / "media" / "weekly-recap" / "images"
    media.mkdir(parents=True, exist_ok=True)
    (media / "slow_style_transfer.png").write_bytes(tiny_png())
    add_entry(conn, "secret-draft", "Secret draft", "Draftword text.", draft=1)
    add_entry(conn, "hidden-post", "Hidden post", "Hiddenword text.", hidden=1)
    conn.close()


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def render(cli):
    r = cli("site", "build", "--render-only")
    assert r.exit_code == 0, r.output
    return r


def test_post_has_front_matter_links_runs_and_plot(log_root, cli):
    seed(log_root)
    r = render(cli)
    assert "rendered 2 posts" in r.stdout
    text = read(log_root, POST)
    front, body = text.split("---\n", 2)[1:]
    assert 'slug: "weekly-recap-2021-w03"' in front
    assert "  created: 2021-01-24\n" in front  # zero-padded
    assert '  - "recap"' in front and '  - "unity"' in front
    assert 'description: "What I did in week 3."' in front
    # The excerpt is the introduction's first paragraph, without a bare "Introduction" heading;
    # Material's sidebar is the one table of contents.
    intro, rest = body.split("<!-- more -->")
    assert intro.strip() == "This week the zebracorn model learned to count."
    assert rest.lstrip().startswith("## Style Transfer") and "[TOC]" not in body
    # Links grouped by (first) tag, untagged last, with domain and note escaped.
    links = body[body.index("## Links") : body.index("## Runs")]
    assert links.index("### fastai") < links.index("### unity") < links.index("### Other")
    assert "[fastai vision tutorial](<https://docs.fast.ai/tutorial.vision.html>)" in links
    assert "(unity\\.com) — read the layer list" in links
    assert "keypoints scale to \\[\\-1, 1\\]" in links
    # The run table, the flag, the plot and the rerun command.
    runs = body[body.index("## Runs") :]
    # One table per experiment: the run links to its own page; primary metric with its direction.
    assert "| Run | Key params | accuracy (higher is better) | Parity | Flags |" in runs
    assert (
        "| [r\\-0001](../../../experiments/runs/r-0001.md) (finished) | defaults | 0\\.912 | — | sanity |"
        in runs
    )
    assert '!!! warning "Run r-0001 was flagged"' in runs
    assert "**sanity**: not better than the mean" in runs
    assert "![Training curves of run r\\-0001](curves-r-0001.png)" in runs
    assert "recap rerun r-0001" in runs
    assert "Experiments: [pets](../../../experiments/pets.md)" in runs
    png = log_root / "docs/blog/posts/weekly-recap-2021-w03/curves-r-0001.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Sections land at the markers, before the conclusion.
    assert body.index("## Runs") < body.index("## Conclusion")


def test_imported_post_keeps_images_drops_scripts_and_redirects(log_root, cli):
    seed(log_root)
    render(cli)
    text = read(log_root, IMPORTED)
    assert "<script" not in text and "cloudflareinsights" not in text
    assert "![](./images/slow_style_transfer.png)" in text
    assert "[TOC]" not in text  # toc: false
    copied = log_root / "docs/blog/posts/weekly-recap/images/slow_style_transfer.png"
    assert (
        copied.read_bytes()
        == (log_root / "media/weekly-recap/images/slow_style_transfer.png").read_bytes()
    )


def test_missing_image_is_left_out_with_a_warning(log_root, cli):
    conn = recap_db.connect(log_root / "recap.db")
    add_entry(
        conn,
        "old",
        "Old",
        'Text.\n\n![](./images/gone.png)\n\n<img src="pic.png" />\n\n'
        "![remote](https://example.org/x.png)\n",
    )
    conn.close()
    r = render(cli)
    assert "entry old: image(s) not found" in r.stderr and "./images/gone.png" in r.stderr
    text = read(log_root, "docs/blog/posts/old/old.md")
    assert "gone.png" not in text and "pic.png" not in text and "image not found" not in text
    assert "![remote](https://example.org/x.png)" in text


def test_drafts_and_hidden_stay_out(log_root, cli):
    seed(log_root)
    render(cli)
    posts = sorted(p.name for p in (log_root / "docs/blog/posts").iterdir())
    assert posts == ["weekly-recap", "weekly-recap-2021-w03"]


def test_experiment_and_links_pages(log_root, cli):
    seed(log_root)
    render(cli)
    page = read(log_root, "docs/experiments/pets.md")
    assert "## Question" in page and "Does a resnet18 beat the mean baseline?" in page
    # the README's lead on top, its sections (a params table) after the runs and outputs
    order = ["## Question", "Does a resnet18", "## Latest runs", "## Metric",
             "## About this experiment", "### Params", "| `lr` | the learning rate |",
             "# a comment in code", "## How to rerun"]  # fmt: skip
    at = [page.index(x) for x in order]
    assert at == sorted(at), dict(zip(order, at, strict=True))
    assert "See the config (experiment\\.toml) and , or" in page and "cat.png" not in page
    assert "[fastai](https://docs.fast.ai/)" in page
    # the README title is not repeated (the other line is inside its code block)
    assert [x for x in page.splitlines() if x.startswith("# ")] == [
        "# pets",
        "# a comment in code, not a heading",
    ]
    assert "![accuracy of the latest runs](pets/accuracy.png)" in page
    assert (log_root / "docs/experiments/pets/accuracy.png").stat().st_size > 0
    assert "recap exp run pets" in page and "recap rerun r-0001" in page
    assert "[r\\-0001](../experiments/runs/r-0001.md)" in page
    # A page per run: params, results, environment, the exact rerun command.
    run = read(log_root, "docs/experiments/runs/r-0001.md")
    assert "# Run r\\-0001" in run and "| lr | 0\\.01 |" in run and "| accuracy | 0\\.912 |" in run
    assert "## Environment" in run and "recap rerun r-0001" in run
    assert "![Training curves of run r\\-0001](r-0001-curves.png)" in run
    assert "[pets](pets.md)" in read(log_root, "docs/experiments/index.md")
    links = read(log_root, "docs/links.md")
    assert "## misc" in links and "Only on the links page" in links
    # A bookmark shows under each of its tags on the links page.
    assert links.count("fastai vision tutorial") == 2


def test_second_render_writes_nothing(log_root, cli):
    seed(log_root)
    render(cli)
    docs = log_root / "docs"
    before = {p: p.stat().st_mtime_ns for p in docs.rglob("*") if p.is_file()}
    r = render(cli)
    assert "0 files written, 0 removed" in r.stdout
    after = {p: p.stat().st_mtime_ns for p in docs.rglob("*") if p.is_file()}
    assert after == before


def test_changed_entry_rewrites_only_its_post(log_root, cli):
    seed(log_root)
    render(cli)
    conn = recap_db.connect(log_root / "recap.db")
    conn.execute("UPDATE entry SET body = body || '\nOne more line.' WHERE slug = 'weekly-recap'")
    conn.close()
    r = render(cli)
    assert "1 files written" in r.stdout
    assert "One more line." in read(log_root, IMPORTED)


def test_hand_written_page_is_never_overwritten(log_root, cli):
    (log_root / "docs/links.md").write_text("# My own links\n")
    seed(log_root)
    r = render(cli)
    assert "docs/links.md was not written by recap" in r.stderr
    assert read(log_root, "docs/links.md") == "# My own links\n"
    manifest = json.loads(read(log_root, "docs/.recap-manifest.json"))
    assert "links.md" not in manifest["files"]


def test_generated_file_edited_by_hand_is_kept(log_root, cli):
    seed(log_root)
    render(cli)
    (log_root / IMPORTED).write_text("edited by hand\n")
    conn = recap_db.connect(log_root / "recap.db")
    conn.execute("UPDATE entry SET title = 'New title' WHERE slug = 'weekly-recap'")
    conn.close()
    r = render(cli)
    assert "changed by hand" in r.stderr
    assert read(log_root, IMPORTED) == "edited by hand\n"


def test_deleted_entry_loses_its_files(log_root, cli):
    seed(log_root)
    render(cli)
    folder = log_root / "docs/blog/posts/weekly-recap-2021-w03"
    assert (folder / "curves-r-0001.png").exists()
    conn = recap_db.connect(log_root / "recap.db")
    conn.execute("DELETE FROM entry WHERE slug = 'weekly-recap-2021-w03'")
    conn.close()
    r = render(cli)
    assert "3 removed" in r.stdout  # the post, its plot, and the tags page (no tags left)
    assert not folder.exists()
    assert (log_root / IMPORTED).exists()


def test_hostile_text_is_inert(log_root, cli):
    seed(log_root, hostile=True)
    render(cli)
    for rel in (POST, "docs/links.md"):
        text = read(log_root, rel)
        body = text.split("---\n", 2)[2]
        assert "<script" not in text and "<img" not in text and "<b " not in text
        assert "](javascript" not in text and "(<javascript" not in text
        assert body.count("<!-- more -->") <= 1
        assert "{:" not in text.replace("\\{:", "")
        for line in body.splitlines():
            assert not line.startswith("# Heading") and not line.startswith("---")
    # A javascript: URL is never linked: its title is plain text.
    assert "\n- js url\n" in read(log_root, POST)


def test_slug_and_names_cannot_escape(log_root, cli):
    conn = recap_db.connect(log_root / "recap.db")
    add_entry(conn, "../../../../escape", 'Title "quoted" <b>', "Body.\n")
    add_entry(conn, "/etc/passwd", "Two", "Body.\n")
    add_entry(
        conn, "three", "Three\n---\nhide: false\n---", "Body.\n", description='x"\nslug: evil'
    )
    conn.execute("INSERT INTO experiment (name, folder) VALUES ('../../../x', '../../..')")
    conn.close()
    render(cli)
    outside = [p for p in log_root.parent.rglob("*") if log_root not in p.parents and p != log_root]
    assert outside == []
    posts = sorted(p.name for p in (log_root / "docs/blog/posts").iterdir())
    assert posts == ["escape", "etc-passwd", "three"]
    three = read(log_root, "docs/blog/posts/three/three.md").split("---\n")
    assert three[1].splitlines() == [
        'title: "Three --- hide: false ---"',
        'slug: "three"',
        "date:",
        "  created: 2021-01-24",
        "  updated: 2021-01-25",
        "categories:",
        '  - "recap"',
        'description: "x&quot; slug: evil"',
    ]
    text = read(log_root, "docs/blog/posts/escape/escape.md")
    assert 'title: "Title &quot;quoted&quot; &lt;b&gt;"' in text
    assert (log_root / "docs/experiments/x.md").exists()


def test_missing_markers_append_sections(log_root, cli):
    conn = recap_db.connect(log_root / "recap.db")
    entry = add_entry(conn, "plain", "Plain", "Just a paragraph.\n\nAnd another.\n")
    add_bookmark(conn, "https://example.org/x", "X marks", tags=["t"], entry_id=entry)
    conn.close()
    render(cli)
    text = read(log_root, "docs/blog/posts/plain/plain.md")
    assert text.index("And another.") < text.index("## Links") < text.index("X marks")
    # No headings: the excerpt break goes after the first paragraph.
    assert text.index("Just a paragraph.") < text.index("<!-- more -->") < text.index("And another")


def test_unknown_category_is_left_out_with_a_warning(log_root, cli):
    conn = recap_db.connect(log_root / "recap.db")
    add_entry(conn, "odd", "Odd", "Body.\n", categories=["recap", "gardening"])
    conn.close()
    r = render(cli)
    assert "category 'gardening' is not in the allowed categories" in r.stderr
    assert '"gardening"' not in read(log_root, "docs/blog/posts/odd/odd.md")


@pytest.mark.slow
def test_site_build_makes_strict_site_with_redirects(log_root, cli):
    seed(log_root)
    with open(log_root / "recap.toml", "a") as fh:
        fh.write('author = "Jane <b>Doe</b>"\n')
    r = cli("site", "build")
    assert r.exit_code == 0, r.output
    assert "alias blog/index.md is a page of the site" in r.stderr
    site = log_root / "site"
    assert "site built in" in r.stdout
    post = site / "blog/2021/01/24/weekly-recap-2021-w03/index.html"
    assert "zebracorn" in post.read_text()
    redirect = (site / "Weekly-Recap-1/index.html").read_text()
    assert "blog/2021/01/10/weekly-recap/" in redirect
    assert (site / "blog/weekly-recap/images/slow_style_transfer.png").exists()
    assert not list(site.rglob("*secret-draft*")) and not list(site.rglob("*hidden-post*"))
    assert "Draftword" not in (site / "search/search_index.json").read_text()
    assert (site / "feed_rss_created.xml").exists() and (site / "tags/index.html").exists()
    assert "Jane &lt;b&gt;Doe&lt;/b&gt;" in post.read_text()


@pytest.mark.slow
def test_broken_link_fails_the_strict_build(log_root, cli):
    conn = recap_db.connect(log_root / "recap.db")
    add_entry(conn, "broken", "Broken", "See [this](missing-page.md).\n")
    conn.close()
    r = cli("site", "build")
    assert r.exit_code == 1
    assert "error: mkdocs build --strict failed" in r.stderr
    assert "missing-page.md" in r.stderr


@pytest.mark.slow
def test_deploy_dry_run_pushes_nothing(log_root, cli):
    seed(log_root)
    r = cli("site", "deploy", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would push" in r.stdout and "gh-pages" in r.stdout and "(dry run)" in r.stdout
    assert not (log_root / ".git").exists()


@pytest.mark.slow
def test_serve_previews_drafts(log_root):
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    seed(log_root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recap", "site", "serve", "--addr", f"127.0.0.1:{port}"],
        env={**os.environ, "RECAP_ROOT": str(log_root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/blog/2021/01/24/secret-draft/"
        deadline, page = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert page is not None, proc.stdout.read1().decode() if proc.poll() is not None else ""
        assert "Draftword" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # The draft was written for the preview; the next build takes it out again.
    assert (log_root / "docs/blog/posts/secret-draft/secret-draft.md").exists()
    from recap.site.build import render_root

    render_root(log_root, progress=False)
    assert not (log_root / "docs/blog/posts/secret-draft").exists()


@pytest.mark.slow
def test_repository_site_builds_strict(tmp_path, monkeypatch):
    """The repository's own mkdocs.yml (the repo is a log too) builds with every guide page."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        config_file=str(repo / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True
    )
    cfg.plugins.on_startup(command="build", dirty=False)
    try:
        build(cfg)
    finally:
        with contextlib.suppress(FileNotFoundError):
            cfg.plugins.on_shutdown()
    assert (tmp_path / "site/guide/site/index.html").exists()
    assert (tmp_path / "site/blog/index.html").exists()


def test_lost_manifest_adopts_identical_files_only(log_root, cli):
    seed(log_root)
    render(cli)
    (log_root / "docs/.recap-manifest.json").write_text("{not json")
    (log_root / "docs/links.md").write_text("mine now\n")
    r = render(cli)
    # Files holding exactly what recap would write are recap's again; the changed one is not.
    assert "0 files written" in r.stdout
    assert "docs/links.md was not written by recap" in r.stderr
    assert r.stderr.count("not written by recap") == 1 and "by hand" not in r.stderr
    manifest = json.loads(read(log_root, "docs/.recap-manifest.json"))
    assert POST.removeprefix("docs/") in manifest["files"] and "links.md" not in manifest["files"]
