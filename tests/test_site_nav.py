"""Per-run pages stay out of the site's navigation, reachable from the run tables (real mkdocs)."""

from __future__ import annotations

import re

import pytest
from test_site import seed

NAV_LINK = re.compile(
    r'<a[^>]*href="([^"]*)"[^>]*class="md-nav__link[^"]*"|'
    r'<a[^>]*class="md-nav__link[^"]*"[^>]*href="([^"]*)"'
)


def nav_hrefs(html: str) -> list[str]:
    return [a or b for a, b in NAV_LINK.findall(html)]


@pytest.mark.slow
@pytest.mark.parametrize("user_pattern", [False, True])
def test_run_pages_are_built_and_linked_but_not_in_the_nav(log_root, cli, user_pattern):
    if user_pattern:
        # an older mkdocs.yml without the pattern, but a not_in_nav of the user's own
        cfg = log_root / "mkdocs.yml"
        text = cfg.read_text().replace("not_in_nav: |\n  /experiments/runs/\n", "")
        cfg.write_text(text + "not_in_nav: |\n  /notes.md\n")
        (log_root / "docs/notes.md").write_text("# Notes\n\nMine.\n")
        assert "/experiments/runs/" not in cfg.read_text()
    seed(log_root)
    r = cli("site", "build")  # strict: an unlinked or broken page would fail it
    assert r.exit_code == 0, r.output
    site = log_root / "site"
    run_page = site / "experiments/runs/r-0001/index.html"
    assert "Run r-0001" in run_page.read_text()
    exp_page = (site / "experiments/pets/index.html").read_text()
    # reachable from the experiment's run table ...
    assert re.search(r'href="\.\./runs/r-0001/"', exp_page), exp_page[:2000]
    # ... and from no sidebar: not on the experiment page, the run page or the home page
    for page in (exp_page, run_page.read_text(), (site / "index.html").read_text()):
        hrefs = nav_hrefs(page)
        assert any(h.endswith("links/") for h in hrefs), hrefs  # the sidebar was found
        assert not [h for h in hrefs if "runs/" in h], hrefs
    if user_pattern:  # the user's own pattern still applies
        assert all("notes" not in h for h in nav_hrefs(exp_page))
        assert (site / "notes/index.html").exists()
