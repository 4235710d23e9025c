"""The weekly post on a phone: no sideways scroll of the page, text on the first screen."""

from __future__ import annotations

import pytest
from test_browser_site import POST_URL, browser, site  # noqa: F401  (module fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize(
    "path", [POST_URL, "blog/", "experiments/pets/", "experiments/runs/r-0001/"]
)
def test_390px_wide_pages_do_not_scroll_sideways(browser, site, path):  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(site + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # A wide table scrolls inside its own box, never the page.
        for box in page.locator("article table").all():
            assert box.evaluate("t => t.closest('.md-typeset__scrollwrap') !== null")
    finally:
        page.close()


def test_the_first_phone_screen_of_a_post_is_text(browser, site):  # noqa: F811
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(site + POST_URL)
        first = page.locator("article p").first
        assert "zebracorn" in first.inner_text()
        assert first.bounding_box()["y"] < 844
        assert page.locator("article .toc").count() == 0  # no inline table of contents
        # The run links to its own page.
        page.locator("article table a", has_text="r-0001").first.click()
        page.wait_for_url("**/experiments/runs/r-0001/")
        assert "Run r-0001" in page.locator("h1").inner_text()
    finally:
        page.close()
