"""Runs' image, video and metrics artifacts on the site (real mkdocs --strict build), confined to
the run's folder; raw HTML images of imported posts pointed at their copied files."""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from pathlib import Path

import pytest
from test_site import NOW, add_entry, seed, tiny_png

from recap import db as recap_db

STYLE = "style-transfer"
STYLE_RUN = "style-transfer-20210124-aaaaaa"
BLENDER_RUN = "blender-shapes-20210124-bbbbbb"
POSE_RUN = "pose-20210124-cccccc"
METRICS = {
    "speed_fps": {"torch_256p": 41.25, "onnxruntime_256p": 63.5, "cuda_fp16_cl_720p": 812.0},
    "stability": {"warp_error_rel": 0.731, "frame_diff_rel": 0.642, "warp_error": 3.2},
    "comparable": False,
}
# a style run's many params (two pairs a row on its page), one of them hostile
STYLE_PARAMS = {f"knob_{i:02d}": i for i in range(13)} | {"style": "<img src=x onerror=alert(1)>"}
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
OUTSIDE = b"\x89PNG\r\n\x1a\n-outside-secret"


def add_run(
    conn, root: Path, exp: str, run_id: str, arts, *, summary=None, entry=None, params=None
):
    """A finished run with files in runs/<exp>/<run id>/ recorded as artifacts
    ((path, kind, bytes or None (not written), metadata))."""
    row = conn.execute("SELECT id FROM experiment WHERE name = ?", (exp,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO experiment (name, folder) VALUES (?, ?)", (exp, f"x/{exp}"))
        row = conn.execute("SELECT id FROM experiment WHERE name = ?", (exp,)).fetchone()
    conn.execute(
        "INSERT INTO run (id, experiment_id, status, params, summary, started) "
        "VALUES (?, ?, 'succeeded', ?, ?, ?)",
        (run_id, row[0], json.dumps(params or {}), json.dumps(summary or {}), NOW),
    )
    folder = root / "runs" / exp / run_id
    folder.mkdir(parents=True, exist_ok=True)
    for path, kind, data, meta in arts:
        if data is not None:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        blob = data if data is not None else b""
        conn.execute(
            "INSERT INTO artifact (run_id, path, kind, sha256, size, metadata) VALUES (?,?,?,?,?,?)",
            (run_id, path, kind, hashlib.sha256(blob).hexdigest(), len(blob), json.dumps(meta)),
        )
    if entry:
        conn.execute(
            "INSERT INTO link (entry_id, run_id, created) VALUES (?, ?, ?)", (entry, run_id, NOW)
        )
    return folder


def png(tag: bytes) -> bytes:
    """A valid PNG made distinct by a trailing chunk-free suffix (browsers ignore it)."""
    return tiny_png() + tag


def seed_media(root: Path) -> None:
    seed(root)
    conn = recap_db.connect(root / "recap.db")
    week = conn.execute("SELECT id FROM entry WHERE slug = 'weekly-recap-2021-w03'").fetchone()[0]
    outside = root / "outside.png"
    outside.write_bytes(OUTSIDE)
    flags = {
        "not_comparable": "perceptual=random: a random VGG, so this result is not comparable",
        "palette_only": "style loss fell, content loss did not: palette only",
    }
    folder = add_run(
        conn,
        root,
        STYLE,
        STYLE_RUN,
        [
            ("before-after.png", "image", png(b"before-after"), {}),
            ("loss.png", "plot", png(b"loss"), {}),
            ("stylised.mp4", "video", FAKE_MP4, {}),
            ("style-metrics.json", "metrics", json.dumps(METRICS).encode(), {}),
            ("model.pth", "weights", b"weights", {}),
            # hostile: a path out of the folder, a symlink out of it, a changed file, a fake PNG
            ("../../../outside.png", "image", None, {}),
            ("evil.png", "image", None, {}),
            ("changed.png", "image", png(b"old"), {}),
            ("notpng.png", "plot", b"<svg onload=alert(1)>", {}),
        ],
        summary={"not_comparable": 1, "flags": flags},
        entry=week,
        params={**STYLE_PARAMS},
    )
    (folder / "evil.png").symlink_to(outside)
    (folder / "changed.png").write_bytes(png(b"new"))
    conn.execute(
        "UPDATE artifact SET sha256 = ? WHERE path = 'evil.png'",
        (hashlib.sha256(OUTSIDE).hexdigest(),),
    )
    add_run(
        conn,
        root,
        "blender-shapes",
        BLENDER_RUN,
        [("contact.png", "contact-sheet", png(b"contact"), {}), ("coco.json", "coco", b"{}", {})],
        entry=week,
    )
    many = [(f"img{i}.png", "overlay", png(b"o%d" % i), {}) for i in range(6)]
    add_run(
        conn,
        root,
        "pose",
        POSE_RUN,
        [("pck.png", "image", png(b"pck"), {"what": "per-joint PCK <b>bar</b>"}), *many],
    )
    # An imported post whose raw HTML image is relative to its own folder.
    body = (
        "## Style\n\nA picture:\n\n"
        '<img src="./images/zoomed.png" style="zoom: 67%;" />\n\n'
        '```html\n<img src="./images/zoomed.png">\n```\n\n'
        'In code: `<img src="images/zoomed.png">`.\n'
    )
    add_entry(conn, "raw-html", "Raw HTML post", body, date="2021-01-17", kind="imported")
    media = root / "media" / "raw-html" / "images"
    media.mkdir(parents=True)
    (media / "zoomed.png").write_bytes(png(b"zoomed"))
    conn.close()


def _srcs(html: str) -> list[str]:
    return re.findall(r'<img[^>]*\bsrc="([^"]+)"', html)


def _resolve(site: Path, page: Path, ref: str) -> Path:
    return site / posixpath.normpath(posixpath.join(page.parent.relative_to(site).as_posix(), ref))


@pytest.fixture
def built(log_root, cli):
    seed_media(log_root)
    r = cli("site", "build")
    assert r.exit_code == 0, r.output
    return log_root, r


@pytest.mark.slow
def test_run_page_post_and_experiment_show_images_and_metrics(built):
    root, r = built
    site = root / "site"
    docs = root / "docs"
    page = site / f"experiments/runs/{STYLE_RUN}/index.html"
    html = page.read_text()
    # images: present in the page, and the file exists where the src points, same bytes
    srcs = [s for s in _srcs(html) if s.endswith(("before-after.png", "loss.png"))]
    assert len(srcs) == 2, _srcs(html)
    for src in srcs:
        assert _resolve(site, page, src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    copied = docs / f"experiments/runs/{STYLE_RUN}.files/before-after.png"
    assert (
        copied.read_bytes() == (root / "runs" / STYLE / STYLE_RUN / "before-after.png").read_bytes()
    )
    # the video is linked (not embedded) and served
    href = re.search(r'href="([^"]*stylised\.mp4)"', html).group(1)
    assert _resolve(site, page, href).read_bytes() == FAKE_MP4
    # the metrics tables
    assert "<td>onnxruntime</td>" in html and "<td>256p</td>" in html and "<td>63.5</td>" in html
    assert "<td>cuda_fp16_cl</td>" in html and "<td>812</td>" in html
    assert "<td>warp_error_rel</td>" in html and "<td>0.731</td>" in html
    assert "<td>frame_diff_rel</td>" in html and "<td>0.642</td>" in html
    # 14 params: two pairs a row, read down each pair of columns, the hostile one as text
    params = html[html.index('id="params"') : html.index('id="results"')]
    assert params.count("<th>Param</th>") == 2 and params.count("<tr>") == 1 + 7
    first = re.findall(r"<td>([^<]*)</td>", params.split("<tr>")[2])
    assert first == ["knob_00", "0", "knob_07", "7"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in params and "<img src=x" not in html
    # the style flags show as a warning
    assert "not comparable" in html and "palette_only" in html and "admonition warning" in html
    # the post: images under the run table, resolving on the built site
    post = site / "blog/2021/01/24/weekly-recap-2021-w03/index.html"
    text = post.read_text()
    for name in ("before-after.png", "contact.png"):
        src = next(s for s in _srcs(text) if s.endswith(name))
        assert _resolve(site, post, src).is_file(), src
    assert text.index("<table>") < text.index("contact.png")
    assert "<td>warp_error_rel</td>" in text
    # the experiment page shows its latest run's outputs
    exp = site / "experiments/blender-shapes/index.html"
    src = next(s for s in _srcs(exp.read_text()) if s.endswith("contact.png"))
    assert _resolve(site, exp, src).is_file()


@pytest.mark.slow
def test_hostile_artifacts_are_not_copied(built):
    root, r = built
    docs = root / "docs"
    out = docs / f"experiments/runs/{STYLE_RUN}.files"
    assert sorted(p.name for p in out.iterdir()) == [
        "before-after.png",
        "loss.png",
        "stylised.mp4",
    ]
    # nothing anywhere in docs/ or site/ holds the outside file's bytes
    for tree in (docs, root / "site"):
        for p in tree.rglob("*"):
            if p.is_file():
                assert OUTSIDE not in p.read_bytes(), p
    assert not any(p.is_symlink() for p in docs.rglob("*"))
    out_text = r.output
    assert "'../../../outside.png' not shown (not a path inside the run folder)" in out_text
    assert "'evil.png' not shown (a symlink)" in out_text
    assert "'changed.png' not shown (changed since the run recorded it)" in out_text
    assert "'notpng.png' not shown (not the file type its name says)" in out_text
    # the weights are listed in the artifact table only, never copied
    assert not list(docs.rglob("model.pth"))
    # the generated files are recap's: in the manifest
    manifest = json.loads((docs / ".recap-manifest.json").read_text())["files"]
    assert f"experiments/runs/{STYLE_RUN}.files/loss.png" in manifest


@pytest.mark.slow
def test_images_are_capped_and_captions_escaped(built):
    root, _ = built
    md_text = (root / f"docs/experiments/runs/{POSE_RUN}.md").read_text()
    assert md_text.count("![") == 4  # IMAGES_PER_RUN
    assert "(3 more images: listed under Artifacts.)" in md_text
    assert "per\\-joint PCK &lt;b&gt;bar&lt;/b&gt;" in md_text
    html = (root / f"site/experiments/runs/{POSE_RUN}/index.html").read_text()
    assert "<b>bar</b>" not in html
    exp_md = (root / "docs/experiments/pose.md").read_text()
    assert exp_md.count("![") == 2 and "(5 more images: see the run's page.)" in exp_md
    # image kinds first in a fixed order: the contact sheet, then images, overlays, plots
    names = re.findall(r"\]\(\.\./\.\./experiments/runs/[^/]+/([^)]+)\)", md_text)
    assert names[0] == "pck.png", names


@pytest.mark.slow
def test_imported_raw_html_image_loads_on_the_dated_url(built):
    root, _ = built
    site = root / "site"
    post = site / "blog/2021/01/17/raw-html/index.html"
    html = post.read_text()
    img = re.search(r'<img src="([^"]+)" style="zoom: 67%;"', html)
    assert img, html
    assert _resolve(site, post, img.group(1)).read_bytes() == png(b"zoomed")
    # code stays as written
    assert "&lt;img src=&quot;./images/zoomed.png&quot;&gt;" in html
    assert '<code>&lt;img src="images/zoomed.png"&gt;</code>' in html
    assert "onerror" not in html


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [390, 1280])
def test_images_load_in_chromium_without_overflow(built, width):
    """Every image of the run page, the post and the imported post loads (natural width > 0)
    at a phone's and a desktop's width, and no page scrolls sideways."""
    import functools
    import http.server
    import shutil
    import threading

    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium is not installed (Debian package 'chromium'; make browser)")
    from playwright.sync_api import sync_playwright

    root, _ = built

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root / "site"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    pages = {
        f"experiments/runs/{STYLE_RUN}/": 2,
        "blog/2021/01/24/weekly-recap-2021-w03/": 4,  # curves, 2 style images, contact sheet
        "blog/2021/01/17/raw-html/": 1,
        "experiments/pose/": 2,
    }
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": width, "height": 900})
            for path, least in pages.items():
                page.goto(base + path)
                page.wait_for_load_state("load")
                images = page.locator("article img")
                assert images.count() >= least, path
                states = images.evaluate_all("els => els.map(e => e.complete && e.naturalWidth)")
                assert all(states), (path, states)
                assert page.evaluate("document.scrollingElement.scrollWidth") <= width, path
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_second_build_writes_nothing_and_a_removed_run_loses_its_files(built, cli):
    root, _ = built
    r = cli("site", "build", "--render-only")
    assert r.exit_code == 0 and "0 files written, 0 removed" in r.stdout, r.output
    conn = recap_db.connect(root / "recap.db")
    for table in ("artifact", "link"):
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (BLENDER_RUN,))
    conn.execute("DELETE FROM run WHERE id = ?", (BLENDER_RUN,))
    conn.close()
    r = cli("site", "build", "--render-only")
    assert r.exit_code == 0, r.output
    assert not (root / f"docs/experiments/runs/{BLENDER_RUN}.files").exists()
    assert "contact.png" not in (root / "docs/experiments/blender-shapes.md").read_text()
