"""recap import: existing Jekyll/fastpages, Quarto and MkDocs posts, the user's own post first."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import SHARED

DATA = Path(__file__).parent / "data"
FIXTURE = SHARED / "fixtures" / "posts" / "2021-01-24-weekly-recap-1.md"


@pytest.fixture
def user_post(tmp_path):
    if not FIXTURE.exists():
        pytest.skip("the user's fixtures (../shared/fixtures) are not here")
    return FIXTURE


def test_the_users_weekly_recap_comes_in_whole(cli, db, user_post):
    r = cli("import", user_post)
    assert r.exit_code == 0, r.stderr
    assert "added entry 1 weekly-recap-1 (2021-01-24): Weekly Recap" in r.stdout
    assert "dropped: front matter 'layout'; hand-made table of contents (7 lines)" in r.stdout
    row = dict(db.execute("SELECT * FROM entry").fetchone())
    assert row["title"] == "Weekly Recap" and row["date"] == "2021-01-24"
    assert row["week"] == "2021-W03"
    assert json.loads(row["categories"]) == ["recap"]
    assert row["description"] == "A summary of what I've been working on for the past couple weeks."
    assert json.loads(row["aliases"]) == ["/Weekly-Recap-1/"]
    assert (row["toc"], row["hidden"], row["search_exclude"], row["draft"]) == (0, 0, 0, 0)
    body = row["body"]
    original = user_post.read_text(encoding="utf-8")
    # Every section, link and image reference of the original is intact.
    for heading in re.findall(r"^#{2,3} .+$", original, re.M):
        assert heading in body
    for link in re.findall(r"\]\(([^)]+)\)", original):
        if not link.startswith("#"):
            assert f"]({link})" in body
    assert "![](./images/slow_style_transfer.png)" in body and "![](./images/monkeys_2.png)" in body
    assert '<img src="https://docs.fast.ai/images/layered.png" style="zoom: 67%;" />' in body
    # The hand-made table of contents and the analytics script are gone.
    assert "* [Introduction](#introduction)" not in body
    assert "<script" not in body and "cloudflareinsights" not in body
    assert body.startswith("## Introduction")


def test_reimport_updates_never_duplicates(cli, db, user_post):
    cli("import", user_post)
    r = cli("import", user_post.parent)
    assert "updated entry 1 weekly-recap-1" in r.stdout and "0 added, 1 updated" in r.stdout
    assert db.execute("SELECT count(*) FROM entry").fetchone()[0] == 1


def test_import_a_folder_of_mixed_posts(cli, db, log_root):
    r = cli("import", DATA / "posts", "--json")
    assert r.exit_code == 0, r.stderr
    reports = {Path(x["file"]).name: x for x in json.loads(r.stdout)}
    assert set(reports) == {"2020-12-6-quarto-style.qmd", "2021-2-7-jekyll-post.md", "blender.md"}
    rows = {r["slug"]: dict(r) for r in db.execute("SELECT * FROM entry")}
    quarto = rows["quarto-style"]
    assert quarto["date"] == "2020-12-06" and quarto["title"] == "In-game style transfer, part 1"
    assert json.loads(quarto["categories"]) == ["tutorial", "style-transfer"]
    assert json.loads(quarto["tags"]) == ["unity", "pytorch"]
    assert json.loads(quarto["aliases"]) == ["/In-Game-Style-Transfer-1/"]
    assert "format" in reports["2020-12-6-quarto-style.qmd"]["dropped"][0]
    # Images next to the post are copied into the log, mirrored under media/<slug>/.
    assert (log_root / "media" / "quarto-style" / "images" / "styled.png").read_bytes() == (
        DATA / "posts" / "images" / "styled.png"
    ).read_bytes()
    assert reports["2020-12-6-quarto-style.qmd"]["images_missing"] == ["images/missing.png"]
    jekyll = rows["jekyll-post"]
    assert jekyll["date"] == "2021-02-07"  # from the unpadded Jekyll file name
    assert jekyll["permalink"] == "/barracuda-notes/"
    assert (jekyll["hidden"], jekyll["search_exclude"]) == (1, 1)
    assert jekyll["body"].startswith("## Setup")  # its two-line table of contents dropped
    mk = rows["blender-synthetic"]
    assert mk["date"] == "2021-03-01" and mk["title"] == "Blender synthetic data"
    assert not mk["body"].lstrip().startswith("# ")


def test_malformed_front_matter_writes_nothing(cli, db, log_root, tmp_path):
    folder = tmp_path / "posts"
    shutil.copytree(DATA / "posts", folder)
    shutil.copy(DATA / "bad-front-matter.md", folder / "zz-bad.md")
    r = cli("import", folder)
    assert r.exit_code == 2
    assert "zz-bad.md: malformed front matter" in r.stderr and r.stderr.count("\n") == 1
    assert db.execute("SELECT count(*) FROM entry").fetchone()[0] == 0
    assert not (log_root / "media").exists()


def test_missing_path_and_no_date(cli, db, tmp_path):
    r = cli("import", tmp_path / "nope.md")
    assert r.exit_code == 2 and "no such file or folder" in r.stderr
    undated = tmp_path / "undated.md"
    undated.write_text("---\ntitle: x\n---\nbody\n")
    r = cli("import", undated)
    assert r.exit_code == 2 and "no date in front matter or file name" in r.stderr
    assert db.execute("SELECT count(*) FROM entry").fetchone()[0] == 0


def test_imported_post_is_searchable(cli, user_post):
    cli("import", user_post)
    rows = json.loads(cli("search", "Blender", "--json").stdout)
    assert [r["slug"] for r in rows] == ["weekly-recap-1"]
