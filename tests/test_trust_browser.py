"""Issue 14 item 4 in a real browser: an imported post with onerror and javascript: links builds a
site where Chromium sees no dialog and no live javascript: href, while the author's own
``<img style=...>`` still renders. Debian's chromium, driven as in test_browser_site.py."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
from conftest import SHARED
from test_browser_site import ARGS, CHROMIUM, _QuietHandler
from test_trust_import import PNG

pytestmark = pytest.mark.browser
FIXTURE = SHARED / "fixtures" / "posts" / "2021-01-24-weekly-recap-1.md"

HOSTILE = """---
title: Hostile import
date: 2021-02-07
---

Before <img src="images/ok.png" id="styled" style="zoom: 67%;" alt="ok">

<img src="images/missing.png" onerror="alert('onerror')" id="broken">

[md link](javascript:alert('md')) and <a href="javascript:alert('a')" id="alink">a link</a>

<a href="jav&#x61;script:alert('b')" onclick="alert('click')" id="blink">b link</a>

<script>alert('script')</script><iframe src="javascript:alert('frame')"></iframe>

After.
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian package 'chromium'; make browser)")
    from recap import db, paths
    from recap.journal.importer import import_posts
    from recap.logroot import init_root
    from recap.site.build import build

    base = tmp_path_factory.mktemp("trust-browser")
    root, _ = init_root(base / "log", title="Trust log")
    posts = base / "posts"
    (posts / "images").mkdir(parents=True)
    (posts / "images" / "ok.png").write_bytes(PNG)
    (posts / "2021-02-07-hostile.md").write_text(HOSTILE)
    targets = [posts / "2021-02-07-hostile.md"]
    if FIXTURE.exists():
        targets.append(FIXTURE)
    paths.set_root_override(root)
    try:
        import_posts(db.connect(root / "recap.db"), targets)
        result = build(root, progress=False)
    finally:
        paths.set_root_override(None)
    handler = functools.partial(_QuietHandler, directory=str(result.site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_imported_hostile_post_runs_nothing_and_keeps_the_authors_html(browser, site):
    context = browser.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(site + "blog/2021/02/07/hostile/")
    page.wait_for_load_state("load")
    assert page.get_by_text("After.").count() >= 1
    for sel in ("#alink", "#blink", "a:text('md link')"):
        for el in page.locator(sel).all():
            el.click(no_wait_after=True)
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("a[href^='javascript:' i]").count() == 0
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert not [h for h in hrefs if h.lower().startswith(("javascript:", "data:"))]
    assert page.locator("[onerror], [onclick], iframe, article script").count() == 0
    # The author's inline image keeps its attributes, its style takes effect, and its relative
    # src (rewritten to where the file is served from the dated post URL) loads.
    styled = page.locator("img#styled")
    assert styled.count() == 1 and styled.is_visible()
    assert styled.get_attribute("src").endswith("images/ok.png")
    assert styled.evaluate("el => el.complete && el.naturalWidth > 0")
    assert styled.evaluate("el => getComputedStyle(el).zoom") == "0.67"
    if FIXTURE.exists():  # the user's own post: its <img style="zoom: 67%;"> is still there
        page.goto(site + "blog/2021/01/24/weekly-recap-1/")
        img = page.locator("img[src='https://docs.fast.ai/images/layered.png']")
        assert img.count() == 1 and img.evaluate("el => getComputedStyle(el).zoom") == "0.67"
    assert dialogs == []
    context.close()
