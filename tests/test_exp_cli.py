"""`recap exp list | runs | show | compare`, `recap link`, the week's runs and the curve PNG."""

from __future__ import annotations

import json

import pytest
from test_lab_support import add_toy, make_exp

from recap.timeutil import stamp


def run_toy(cli, *args) -> dict:
    r = cli("exp", "run", "toy-regression", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def make_entry(db, slug="2021-w03", week="2021-W03") -> int:
    cur = db.execute(
        "INSERT INTO entry (slug, title, week, date, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
        (slug, "Weekly Recap", week, "2021-01-24", stamp(), stamp()),
    )
    db.commit()
    return cur.lastrowid


def test_list_shows_last_run_and_primary(cli, db, log_root):
    r = cli("exp", "list")
    assert r.exit_code == 0 and "no experiments" in r.stdout
    add_toy(log_root)
    r = cli("exp", "list")
    assert "toy-regression" in r.stdout and "never run" in r.stdout and "toy" in r.stdout
    rec = run_toy(cli)
    listed = json.loads(cli("exp", "list", "--json").stdout)
    assert listed == [
        {
            "name": "toy-regression",
            "project": "toy",
            "description": "Fit a line to seeded noisy points with gradient descent",
            "entry": "main.py:run",
            "primary": "val_mse",
            "direction": "min",
            "last_run": rec["id"],
            "last_status": "succeeded",
            "last_started": rec["started"],
            "last_primary": rec["summary"]["val_mse"],
        }
    ]
    r = cli("exp", "list")
    assert rec["id"] in r.stdout and "succeeded" in r.stdout and "val_mse 0.0" in r.stdout


def test_list_reports_a_bad_spec_but_lists_the_rest(cli, db, log_root):
    add_toy(log_root)
    bad = make_exp(log_root, "broken", "pass\n")
    (bad / "experiment.toml").write_text(
        (bad / "experiment.toml").read_text().replace('project = "test"', "project = 3")
    )
    r = cli("exp", "list")
    assert r.exit_code == 2
    assert "toy-regression" in r.stdout
    assert f"{bad / 'experiment.toml'}: project: expected str" in r.stderr


def test_runs_and_show(cli, db, log_root):
    add_toy(log_root)
    a = run_toy(cli)
    b = run_toy(cli, "-p", "epochs=1")  # one step: the fit is far off, so the run flags it
    r = cli("exp", "runs")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "experiment", "status"]
    assert lines[2].startswith(b["id"]) and lines[3].startswith(a["id"])  # newest first
    assert "epochs=1" in lines[2] and "val_mse=" in lines[2]
    listed = json.loads(cli("exp", "runs", "toy-regression", "--json").stdout)
    assert [x["id"] for x in listed] == [b["id"], a["id"]]
    assert cli("exp", "runs", "nope").exit_code == 2

    show = cli("exp", "show", b["id"])
    assert show.exit_code == 0
    assert f"run {b['id']}" in show.stdout and "status    succeeded" in show.stdout
    assert "epochs=1" in show.stdout and "val_mse = " in show.stdout
    assert "FLAG slope_off: fitted slope" in show.stdout
    assert "fit.json  result" in show.stdout and "train_mse: 1," in show.stdout
    # The flag is part of the stored record, not only of the output.
    summary = json.loads(
        db.execute("SELECT summary FROM run WHERE id = ?", (b["id"],)).fetchone()[0]
    )
    assert summary["flags"]["slope_off"].startswith("fitted slope")
    # A unique suffix (the random tail) is enough to name a run.
    tail = a["id"].rsplit("-", 1)[1]
    rec = json.loads(cli("exp", "show", tail, "--json").stdout)
    assert rec["id"] == a["id"] and rec["metrics"]["val_mse"]["count"] == 100
    assert rec["artifacts"][0]["path"] == "fit.json" and rec["flags"] == {}
    r = cli("exp", "show", "nope")
    assert r.exit_code == 2 and "no run 'nope'" in r.stderr


def test_show_plot_writes_png(cli, db, log_root, tmp_path):
    add_toy(log_root)
    rec = run_toy(cli)
    png = tmp_path / "curves.png"
    r = cli("exp", "show", rec["id"], "--plot", png)
    assert r.exit_code == 0 and f"curves: {png}" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_curve_png_none_without_metrics(cli, db, log_root, tmp_path):
    from recap.lab.plots import curve_png

    make_exp(log_root, "quiet", "ctx.set_summary('score', 1.0)\n")
    rec = json.loads(cli("exp", "run", "quiet", "--json").stdout)
    assert curve_png(db, rec["id"], tmp_path / "x.png") is None
    assert not (tmp_path / "x.png").exists()


def test_compare_marks_differences(cli, db, log_root):
    add_toy(log_root)
    a = run_toy(cli)
    b = run_toy(cli, "-p", "noise=0.5")
    r = cli("exp", "compare", a["id"], b["id"])
    assert r.exit_code == 0
    rows = {tuple(line.split()[:3]): line for line in r.stdout.splitlines()}
    assert ("*", "params", "noise") in rows and "0.1" in rows[("*", "params", "noise")]
    assert ("*", "summary", "val_mse") in rows
    assert ("params", "n_points", "200") in rows  # same value: shown, not marked
    data = json.loads(cli("exp", "compare", a["id"], b["id"], "--json").stdout)
    assert data["runs"] == [a["id"], b["id"]]
    env = [x for x in data["rows"] if x["section"] == "environment"]
    assert env and not any(x["differs"] for x in env if x["key"] == "python")
    noise = next(x for x in data["rows"] if x["key"] == "noise")
    assert noise["values"] == [0.1, 0.5] and noise["differs"]
    assert cli("exp", "compare", a["id"]).exit_code == 2


def test_link_run_exp_bookmark(cli, db, log_root):
    add_toy(log_root)
    rec = run_toy(cli)
    entry_id = make_entry(db)
    r = cli("link", "2021-w03", "--run", rec["id"], "--note", "the baseline")
    assert r.exit_code == 0 and f"linked entry 2021-w03 -> run {rec['id']}" in r.stdout
    r = cli("link", str(entry_id), "--run", rec["id"], "--note", "better note")
    assert "updated link" in r.stdout
    assert cli("link", "2021-w03", "--exp", "toy-regression").exit_code == 0
    db.execute(
        "INSERT INTO bookmark (url, url_key, added, updated) VALUES (?, ?, ?, ?)",
        ("https://example.org/a", "example.org/a", stamp(), stamp()),
    )
    db.commit()
    assert cli("link", "2021-w03", "--bookmark", "1", "--json").exit_code == 0
    links = db.execute(
        "SELECT run_id, experiment_id, bookmark_id, note FROM link WHERE entry_id = ? ORDER BY id",
        (entry_id,),
    ).fetchall()
    assert [tuple(x) for x in links] == [
        (rec["id"], None, None, "better note"),
        (None, 1, None, ""),
        (None, None, 1, ""),
    ]
    # Errors: nothing linked, one line each.
    for args, msg in [
        (("2021-w03",), "exactly one of"),
        (("2021-w03", "--run", rec["id"], "--exp", "toy-regression"), "exactly one of"),
        (("nope", "--run", rec["id"]), "no entry"),
        (("2021-w03", "--run", "nope"), "no run"),
        (("2021-w03", "--exp", "nope"), "no experiment"),
        (("2021-w03", "--bookmark", "99"), "no bookmark"),
    ]:
        r = cli("link", *args)
        assert r.exit_code == 2 and msg in r.stderr, (args, r.stderr)
    assert db.execute("SELECT count(*) FROM link").fetchone()[0] == 3


def test_week_run_ids(cli, db, log_root):
    from recap.lab.week import week_run_ids

    add_toy(log_root)
    a = run_toy(cli)
    b = run_toy(cli, "--seed", "1")
    make_exp(log_root, "crash", "raise RuntimeError('no')\n")
    cli("exp", "run", "crash")
    # Pretend a and the crash happened in 2021-W03 (Mon 18 Jan .. Sun 24 Jan 2021), b in W04.
    db.execute("UPDATE run SET started = '2021-01-24T23:59:59.000Z' WHERE id = ?", (a["id"],))
    db.execute("UPDATE run SET started = '2021-01-25T00:00:00.000Z' WHERE id = ?", (b["id"],))
    db.execute("UPDATE run SET started = '2021-01-20T10:00:00.000Z' WHERE status = 'failed'")
    db.commit()
    assert week_run_ids(db, "2021-W03") == [a["id"]]
    assert week_run_ids(db, "2021-W04") == [b["id"]]
    # A rerun is not one of the week's runs.
    db.execute("UPDATE run SET parent_id = ? WHERE id = ?", (a["id"], b["id"]))
    db.commit()
    assert week_run_ids(db, "2021-W04") == []
    from recap.errors import InvalidInput

    with pytest.raises(InvalidInput):
        week_run_ids(db, "2021-03")


def test_runs_markdown(cli, db, log_root):
    from recap import week
    from recap.lab.week import runs_markdown

    add_toy(log_root)
    entry_id = make_entry(db)
    assert runs_markdown(db, week.view(db, entry_id, {}).runs) == ""
    rec = run_toy(cli, "-p", "noise=0.2")
    other = run_toy(cli, "-p", "noise=0.5")
    cli("link", "2021-w03", "--run", rec["id"])
    cli("link", "2021-w03", "--run", other["id"], "--note", "the noisy one")
    md = runs_markdown(db, week.view(db, entry_id, {}).runs)
    lines = md.splitlines()
    assert lines[0] == "## Runs" and lines[2] == "### toy-regression"
    assert lines[4].startswith("| run | key params | primary metric | parity | flags | reproduce")
    row = lines[6]
    # Key params: the declared headline (noise, lr, epochs), then what differs, then the seed.
    assert f"`{rec['id']}`" in row and "| noise=0.2, lr=0.1, epochs=100, seed=0 |" in row
    assert "n_points" not in row
    assert f"val_mse = {rec['summary']['val_mse']:.4g} (lower is better)" in row
    assert f"`recap rerun {rec['id']}`" in row
    assert row.count("|") == 7
    assert f"- `{other['id']}`: the noisy one" in md
    # Param text cannot break the table.
    db.execute(
        "UPDATE run SET params = ? WHERE id = ?", (json.dumps({"noise": "a|b `c`"}), rec["id"])
    )
    db.commit()
    row = runs_markdown(db, week.view(db, entry_id, {}).runs).splitlines()[6]
    assert "noise=a/b 'c'" in row and row.count("|") == 7


def test_new_entry_prefills_the_weeks_runs_and_show_lists_them(cli, db, log_root):
    add_toy(log_root)
    rec = run_toy(cli)
    rerun = json.loads(cli("rerun", rec["id"], "--json").stdout)["runs"][0]["rerun"]
    db.execute("UPDATE run SET started = '2021-01-20T09:00:00.000Z'")
    db.commit()
    r = cli("new", "--week", "2021-W03", "--no-edit", "--json")
    assert r.exit_code == 0, r.output
    entry = json.loads(r.stdout)
    assert entry["linked"]["runs"] == 1  # the rerun is not one of the week's runs
    linked = json.loads(cli("show", entry["slug"], "--json").stdout)["linked"]["runs"]
    assert [x["id"] for x in linked] == [rec["id"]]
    shown = cli("show", entry["slug"]).stdout
    assert "## Runs" in shown and f"`recap rerun {rec['id']}`" in shown
    assert rerun not in shown
