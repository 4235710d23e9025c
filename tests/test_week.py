"""The week's view: an entry's links and runs are live until published (recap.week)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from test_lab_support import add_toy

from recap.site.render import render

W03 = datetime(2021, 1, 20, 10, tzinfo=UTC)  # a Wednesday of 2021-W03


def bookmark(db, url, when=W03, **cols):
    """A bookmark as `bookmark add` would store it, captured at ``when``."""
    from recap import db as recap_db
    from recap.links.store import add_bookmark

    conn = recap_db.connect()
    bid = add_bookmark(conn, url, offline=True, now=when)["id"]
    for k, v in cols.items():
        conn.execute(f"UPDATE bookmark SET {k} = ? WHERE id = ?", (v, bid))
    conn.commit()
    return bid


def post(log_root, db):
    """The generated Markdown of the W03 post (``site build`` without mkdocs)."""
    from recap import db as recap_db

    render(log_root, recap_db.connect(), include_drafts=True)
    return (log_root / "docs/blog/posts/weekly-recap-2021-w03/weekly-recap-2021-w03.md").read_text()


def shown(cli):
    r = cli("show", "weekly-recap-2021-w03")
    assert r.exit_code == 0, r.output
    return r.stdout


def test_a_bookmark_captured_after_new_appears_and_unlink_removes_it(cli, db, log_root):
    assert cli("new", "--week", "2021-W03", "--no-edit").exit_code == 0
    assert db.execute("SELECT count(*) FROM link").fetchone()[0] == 0  # nothing written once
    bid = bookmark(db, "https://docs.fast.ai/tutorial.vision.html", title="Vision tutorial")
    out = shown(cli)
    assert "[Vision tutorial](<https://docs.fast.ai/tutorial.vision.html>) (docs.fast.ai)" in out
    assert (
        f"- bookmark {bid} https://docs.fast.ai/tutorial.vision.html: captured by hand in 2021-W03"
        in out
    )
    assert "Vision tutorial" in post(log_root, db)

    r = cli("unlink", "weekly-recap-2021-w03", "--bookmark", str(bid))
    assert r.exit_code == 0 and r.stdout.startswith("unlinked: entry weekly-recap-2021-w03")
    assert "Vision tutorial" not in shown(cli) and "Vision tutorial" not in post(log_root, db)
    assert [tuple(r) for r in db.execute("SELECT bookmark_id, reason FROM link")] == [
        (bid, "excluded")
    ]
    # Linking it by hand brings it back, with the note in the post and in show.
    r = cli("link", "weekly-recap-2021-w03", "--bookmark", str(bid), "--note", "read the layers")
    assert r.exit_code == 0
    assert "read the layers" in shown(cli) and "read the layers" in post(log_root, db)
    assert "captured by hand in 2021-W03, and linked by hand; note: read the layers" in shown(cli)


def test_archiving_or_deleting_a_bookmark_takes_it_out(cli, db, log_root):
    cli("new", "--week", "2021-W03", "--no-edit")
    a = bookmark(db, "https://a.example/one", title="Alpha link")
    b = bookmark(db, "https://b.example/two", title="Beta link")
    cli("link", "1", "--bookmark", str(b))  # by hand too
    assert "Alpha link" in shown(cli) and "Beta link" in shown(cli)
    db.execute("UPDATE bookmark SET archived = 1 WHERE id = ?", (a,))
    db.commit()
    assert "Alpha link" not in shown(cli)
    assert cli("bookmark", "rm", str(b)).exit_code == 0
    assert "Beta link" not in shown(cli) and "Beta link" not in post(log_root, db)


def test_autolink_rules_come_from_recap_toml(cli, db, log_root):
    cli("new", "--week", "2021-W03", "--no-edit")
    cli("feed", "--help")
    db.execute("INSERT INTO feed (url, added) VALUES ('https://f.example/rss', 'x')")
    db.commit()
    bookmark(db, "https://hand.example/", title="By hand")
    bookmark(db, "https://other-week.example/", when=datetime(2021, 1, 27, tzinfo=UTC), title="W04")
    bookmark(db, "https://import.example/", title="Imported", source="import:netscape")
    bookmark(
        db, "https://f.example/unread", title="Unread item", feed_id=1, source="feed", read_at=None
    )
    bookmark(
        db,
        "https://f.example/read",
        title="Read item",
        feed_id=1,
        source="feed",
        read_at="2021-01-21T08:00:00.000Z",
    )
    out = shown(cli)
    assert "By hand" in out and "Read item" in out  # the defaults
    assert not [t for t in ("W04", "Imported", "Unread item") if t in out], out
    assert "feed item read in 2021-W03" in out
    with open(log_root / "recap.toml", "a") as fh:
        fh.write('\n[autolink]\nbookmarks = ["cli", "import"]\nfeed = "none"\nruns = "none"\n')
    out = shown(cli)
    assert "Imported" in out and "By hand" in out and "Read item" not in out
    with open(log_root / "recap.toml", "a") as fh:
        fh.write("\n[sections]\n")
    (log_root / "recap.toml").write_text('[autolink]\nbookmarks = ["browser"]\n')
    r = cli("show", "1")
    assert r.exit_code == 2 and "autolink.bookmarks: unknown source(s) browser" in r.stderr


def test_a_run_finished_later_appears_and_publish_freezes_the_week(cli, db, log_root):
    add_toy(log_root)
    cli("new", "--week", "2021-W03", "--no-edit")
    run = json.loads(cli("exp", "run", "toy-regression", "--json").stdout)
    db.execute("UPDATE run SET started = '2021-01-20T09:00:00.000Z'")
    db.commit()
    out = shown(cli)
    assert f"`recap rerun {run['id']}`" in out and "run in 2021-W03 (succeeded)" in out
    hand = bookmark(db, "https://hand.example/", title="Before publishing")

    r = cli("publish", "weekly-recap-2021-w03")
    assert r.exit_code == 0 and "final: 2 automatic link(s) frozen" in r.stdout
    row = db.execute("SELECT draft, final FROM entry").fetchone()
    assert tuple(row) == (0, 1)
    # A capture after publishing does not rewrite the published week.
    bookmark(db, "https://late.example/", title="Captured later")
    out = shown(cli)
    assert "Before publishing" in out and "Captured later" not in out
    assert "frozen when published" in out and "· final ·" in out
    # rerun ENTRY replays the runs the entry shows.
    rr = json.loads(cli("rerun", "weekly-recap-2021-w03", "--json").stdout)
    assert [r["original"] for r in rr["runs"]] == [run["id"]]
    assert hand


def test_a_never_published_entry_is_not_on_the_site_and_empty_sections_are_left_out(
    cli, db, log_root
):
    from recap import db as recap_db

    cli("new", "--week", "2021-W03", "--no-edit")
    render(log_root, recap_db.connect())
    assert not list((log_root / "docs/blog/posts").glob("*/*.md"))  # a draft: not published
    cli(
        "new",
        "--week",
        "2021-W04",
        "--body-file",
        "-",
        input="## Introduction\n\nWe shipped it.\n\n## Style Transfer\n\n## Blender\n\nNew rig.\n"
        "\n<!-- recap:links -->\n\n<!-- recap:runs -->\n\n## Conclusion\n\n",
    )
    assert cli("publish", "weekly-recap-2021-w04").exit_code == 0
    render(log_root, recap_db.connect())
    text = (log_root / "docs/blog/posts/weekly-recap-2021-w04/weekly-recap-2021-w04.md").read_text()
    assert "## Blender" in text and "New rig." in text
    assert "## Style Transfer" not in text and "## Conclusion" not in text
    assert "## Links" not in text and "## Runs" not in text and "[TOC]" not in text
    out = cli("show", "weekly-recap-2021-w04").stdout
    assert "## Style Transfer" not in out and "## Blender" in out


@pytest.mark.parametrize("kind", ["run", "exp"])
def test_unlink_and_link_errors_are_one_line(cli, kind):
    cli("new", "--week", "2021-W03", "--no-edit")
    r = cli("unlink", "1", f"--{kind}", "nope")
    assert r.exit_code == 2 and r.stderr.startswith("error: no ")


def _fake_run(db, run_id, project, params, summary, started="2021-01-20T09:00:00.000Z"):
    exp = db.execute("SELECT id FROM experiment WHERE name = ?", (project + "-exp",)).fetchone()
    if exp is None:
        exp_id = db.execute(
            "INSERT INTO experiment (name, folder, project) VALUES (?, ?, ?)",
            (project + "-exp", f"experiments/{project}-exp", project),
        ).lastrowid
    else:
        exp_id = exp[0]
    db.execute(
        "INSERT INTO run (id, experiment_id, status, params, summary, seed, started) "
        "VALUES (?, ?, 'succeeded', ?, ?, 0, ?)",
        (run_id, exp_id, json.dumps(params), json.dumps(summary), started),
    )
    db.commit()


def test_posts_group_runs_under_project_sections_with_what_differs_and_parity(cli, db, log_root):
    folder = log_root / "experiments/fastai-unity-exp"
    folder.mkdir(parents=True)
    (folder / "experiment.toml").write_text(
        'name = "fastai-unity-exp"\nproject = "fastai-unity"\nentry = "main.py:run"\n'
        '[params.preset]\ntype = "str"\ndefault = "tiny"\nhelp = "size"\n'
        '[params.epochs]\ntype = "int"\ndefault = 0\nhelp = "epochs; 0: the preset\'s value"\n'
        '[params.lr]\ntype = "float"\ndefault = 0.01\nhelp = "lr"\n'
        '[metric]\nprimary = "accuracy"\ndirection = "max"\ntolerance = 0.01\n'
    )
    (folder / "main.py").write_text("def run(ctx):\n    pass\n")
    common = {"preset": "tiny", "epochs": 0, "batch": 8}
    _fake_run(
        db,
        "r-a",
        "fastai-unity",
        {**common, "lr": 0.01},
        {"accuracy": 0.9, "parity_ok": 1, "parity_max_raw_diff_onnx": 3e-7},
    )
    _fake_run(
        db,
        "r-b",
        "fastai-unity",
        {**common, "lr": 0.1},
        {
            "accuracy": 0.7,
            "parity_ok": 0,
            "parity_max_raw_diff_onnx": 0.2,
            "flags": {"sanity": "always the same spot"},
        },
    )
    _fake_run(db, "r-c", "style-transfer", {"style": "mosaic"}, {"loss": 1.5})
    cli(
        "new",
        "--week",
        "2021-W03",
        "--body-file",
        "-",
        input="## Introduction\n\nA week of exports.\n\n## fastai to Unity\n\nTwo learning rates.\n"
        "\n<!-- recap:links -->\n\n<!-- recap:runs -->\n\n## Conclusion\n\nDone.\n",
    )
    text = post(log_root, db)
    front = text.split("---\n")[1]
    assert 'title: "Weekly Recap · 2021-W03"' in front  # distinct on the index and in RSS
    unity = text[text.index("## fastai to Unity") : text.index("## Runs")]
    assert "Two learning rates." in unity
    assert "| Run | Key params | accuracy (higher is better) | Parity | Flags |" in unity
    # Key params: the headline (preset) and what differs (lr); never "epochs=0", never batch.
    assert "| preset=tiny, lr=0\\.01, seed=0 | 0\\.9 | ok \\(max diff 3e\\-07\\) | — |" in unity
    assert (
        "| preset=tiny, lr=0\\.1, seed=0 | 0\\.7 | FAILED \\(max diff 0\\.2\\) | sanity |" in unity
    )
    assert "epochs" not in unity and "batch" not in unity
    assert "(../../../experiments/runs/r-a.md)" in unity
    rest = text[text.index("## Runs") :]
    assert "r\\-c" in rest and "r\\-a" not in rest  # no "Style Transfer" section: the Runs one
    assert text.index("A week of exports.") < text.index("<!-- more -->") < text.index("## fastai")
    assert (log_root / "docs/experiments/runs/r-b.md").exists()
    # recap show has the same key params, readable.
    out = cli("show", "2021-W03").stdout
    assert (
        "| preset=tiny, lr=0.1, seed=0 | accuracy = 0.7 (higher is better) | FAILED (max diff 0.2) | sanity |"
        in out
    )


def test_weekly_subtitle_setting_and_imported_dates(cli, db, log_root):
    from recap import db as recap_db

    cli("new", "--week", "2021-W03", "--body-file", "-", input="Hello.\n")
    toml = log_root / "recap.toml"
    toml.write_text(
        toml.read_text().replace('weekly_subtitle = "week"', 'weekly_subtitle = "date"')
    )
    assert 'title: "Weekly Recap · 24 Jan 2021"' in post(log_root, db)
    posts = log_root / "posts"
    posts.mkdir()
    (posts / "2021-01-10-weekly-recap.md").write_text(
        "---\ntitle: Weekly Recap\n---\n\nAn old week.\n"
    )
    assert cli("import", str(posts)).exit_code == 0
    render(log_root, recap_db.connect())
    old = (log_root / "docs/blog/posts/weekly-recap/weekly-recap.md").read_text()
    assert 'title: "Weekly Recap · 10 Jan 2021"' in old
    assert "updated:" not in old  # imported and never edited: its own date only
