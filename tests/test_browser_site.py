"""The built site in a real browser: Debian's chromium driven by Playwright, over http on 127.0.0.1.

One site is built per module (with hostile bookmark titles linked to a post) and served from a
thread; each test opens pages in a fresh browser context.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import urllib.request
from datetime import date

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
POST_URL = "blog/2021/01/24/weekly-recap-2021-w03/"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the seeded log's site once and serve it on 127.0.0.1 (a free port)."""
    from test_site import seed

    from recap.logroot import init_root
    from recap.site.build import build

    root, _ = init_root(tmp_path_factory.mktemp("browser") / "log", title="Browser log")
    seed(root, hostile=True)
    result = build(root, progress=False)
    handler = functools.partial(_QuietHandler, directory=str(result.site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian package 'chromium'; make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    context = browser.new_context()
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def test_blog_index_lists_the_posts(page, site):
    page.goto(site + "blog/")
    titles = page.locator("article h2").all_inner_texts()
    # Two posts titled "Weekly Recap" would look alike: the usual title carries its date.
    assert "Weekly Recap 3" in titles and "Weekly Recap · 10 Jan 2021" in titles
    assert not any("draft" in t.lower() or "hidden" in t.lower() for t in titles)


def test_post_shows_links_runs_and_plot(page, site):
    page.goto(site + POST_URL)
    links = page.locator("h2#links")
    assert links.count() == 1
    assert page.locator("a[href='https://docs.fast.ai/tutorial.vision.html']").count() == 1
    table = page.locator("table", has_text="r-0001")
    assert table.count() == 1 and "finished" in table.inner_text()
    assert page.locator(".admonition.warning", has_text="not better than the mean").count() == 1
    img = page.locator("img[alt^='Training curves of run']")
    img.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("el => el.naturalWidth") > 0
    assert page.locator("code", has_text="recap rerun r-0001").count() >= 1


def test_search_finds_a_word_from_a_post(page, site):
    page.goto(site)
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("zebracorn", delay=40)
    result = page.locator(".md-search-result__item", has_text="Weekly Recap 3")
    result.first.wait_for(timeout=15000)
    assert result.count() >= 1


def test_tags_page_lists_the_tags(page, site):
    page.goto(site + "tags/")
    text = page.locator("article").inner_text()
    assert "unity" in text and "fastai" in text


def test_rss_feed_parses_with_the_right_dates(site):
    import feedparser

    with urllib.request.urlopen(site + "feed_rss_created.xml", timeout=10) as resp:
        feed = feedparser.parse(resp.read())
    assert not feed.bozo, feed.bozo_exception
    dates = {e.title: date(*e.published_parsed[:3]) for e in feed.entries}
    assert dates == {
        "Weekly Recap 3": date(2021, 1, 24),
        "Weekly Recap · 10 Jan 2021": date(2021, 1, 10),
    }
    summaries = {e.title: e.summary for e in feed.entries}
    assert summaries["Weekly Recap · 10 Jan 2021"] == "A summary of what I've been working on."


def test_redirect_of_an_alias_lands_on_the_post(page, site):
    page.goto(site + "Weekly-Recap-1/")
    page.wait_for_url("**/blog/2021/01/10/weekly-recap/")
    assert page.locator("img[src*='slow_style_transfer.png']").evaluate("el => el.naturalWidth") > 0


def test_hostile_titles_run_no_script_and_add_no_element(page, site):
    shown = {
        POST_URL: '<b id="injected">bold</b>',
        "links/": '<b id="injected">bold</b>',
        "tags/": '<b id="injected3">tag</b>',
        "blog/": "Weekly Recap 3",
    }
    for path, text in shown.items():
        page.goto(site + path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__pwned") == "undefined", path
        injected = "#injected, #injected2, #injected3, [onerror], [onclick]"
        assert page.locator(injected).count() == 0, path
        assert page.locator("a[href^='javascript:']").count() == 0, path
        assert page.locator("article img[src='x']").count() == 0, path
        # The hostile text is shown as text.
        assert page.get_by_text(text).count() >= 1, path
    assert page.dialogs == []
