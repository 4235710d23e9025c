"""`recap rerun ENTRY|RUN`: replay with recorded params and seed, verdict per metric."""

from __future__ import annotations

import json

from test_lab_support import add_toy, make_exp

from recap.timeutil import stamp


def setup_entry(cli, db, log_root, *run_args):
    add_toy(log_root)
    db.execute(
        "INSERT INTO entry (slug, title, week, date, created, updated) "
        "VALUES ('w3', 'Weekly Recap', '2021-W03', '2021-01-24', ?, ?)",
        (stamp(), stamp()),
    )
    db.commit()
    rec = json.loads(cli("exp", "run", "toy-regression", *run_args, "--json").stdout)
    assert cli("link", "w3", "--run", rec["id"]).exit_code == 0
    return rec


def test_rerun_entry_reproduces(cli, db, log_root, monkeypatch):
    rec = setup_entry(cli, db, log_root, "-p", "noise=0.3", "--seed", "7")
    monkeypatch.setenv("COLUMNS", "80")  # an 80-column terminal: the ids must stay whole
    r = cli("rerun", "w3")
    assert r.exit_code == 0, r.output
    new = db.execute("SELECT * FROM run WHERE parent_id = ?", (rec["id"],)).fetchall()
    assert len(new) == 1 and new[0]["status"] == "succeeded"
    lines = r.stdout.splitlines()
    assert lines[0] == f"toy-regression run {rec['id']} -> rerun {new[0]['id']}"
    assert lines[1].split() == ["metric", "recorded", "now", "tolerance", "verdict"]
    body = [line.split() for line in lines[3:-2]]
    assert [row[0] for row in body] == ["val_mse", "intercept", "slope", "train_mse"]
    assert all(row[-1] == "ok" and row[1] == row[2] for row in body)
    assert body[0][1] == f"{rec['summary']['val_mse']:.12g}"
    assert lines[-2:] == ["", "entry w3: reproduced"]
    assert max(map(len, lines)) <= 80 and "…" not in r.stdout
    assert r.stderr == ""
    # Same recorded params and seed, never served from the cache.
    assert json.loads(new[0]["params"]) == rec["params"] and new[0]["seed"] == 7
    assert new[0]["id"] != rec["id"] and new[0]["cache_key"] == rec["cache_key"]


def test_rerun_a_run_by_id_json(cli, db, log_root):
    rec = setup_entry(cli, db, log_root)
    r = cli("rerun", rec["id"], "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["reproduced"] is True and data["target"] == f"run {rec['id']}"
    v = data["runs"][0]["verdicts"][0]
    assert v == {
        "metric": "val_mse",
        "recorded": rec["summary"]["val_mse"],
        "now": rec["summary"]["val_mse"],
        "tolerance": 1e-9,
        "verdict": "ok",
    }


def test_rerun_not_reproduced_when_folder_changed(cli, db, log_root):
    rec = setup_entry(cli, db, log_root)
    main = log_root / "experiments" / "toy-regression" / "main.py"
    main.write_text(main.read_text().replace('range(p["epochs"])', 'range(p["epochs"] + 3)'))
    r = cli("rerun", "w3")
    assert r.exit_code == 6
    assert "warning: toy-regression: the experiment folder changed since run" in r.stderr
    assert "error: entry w3: did not reproduce" in r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[3:]]
    verdicts = {row[0]: row[-1] for row in rows if row}
    assert verdicts["val_mse"] == "DIFFERS"
    new = db.execute("SELECT * FROM run WHERE parent_id = ?", (rec["id"],)).fetchone()
    assert new["status"] == "succeeded" and new["folder_hash"] != rec["folder_hash"]


def test_rerun_failing_run_is_not_reproduced(cli, db, log_root):
    rec = setup_entry(cli, db, log_root)
    main = log_root / "experiments" / "toy-regression" / "main.py"
    main.write_text(
        main.read_text().replace(
            "    p = ctx.params\n", "    p = ctx.params\n    raise OSError('disk')\n"
        )
    )
    r = cli("rerun", "w3", "--json")
    assert r.exit_code == 6
    data = json.loads(r.stdout)
    assert data["reproduced"] is False and data["runs"][0]["status"] == "failed"
    assert data["runs"][0]["verdicts"][0]["verdict"] == "failed"
    assert (
        db.execute("SELECT status FROM run WHERE parent_id = ?", (rec["id"],)).fetchone()[0]
        == "failed"
    )


def test_rerun_uses_tolerance(cli, db, log_root):
    # A noisy metric within tolerance reproduces; the strict one does not.
    make_exp(
        log_root,
        "noisy",
        "import random\nctx.set_summary('score', 1.0)\n"
        "ctx.set_summary('jitter', random.SystemRandom().random() * 1e-3)\n"
        "ctx.set_summary('note', 'text is not judged')\n",
        extra="[tolerances]\njitter = 0.01\n",
    )
    db.execute(
        "INSERT INTO entry (slug, title, date, created, updated) "
        "VALUES ('n', 'N', '2021-01-24', ?, ?)",
        (stamp(), stamp()),
    )
    db.commit()
    rec = json.loads(cli("exp", "run", "noisy", "--json").stdout)
    cli("link", "n", "--exp", "noisy")
    r = cli("rerun", "n", "--json")
    assert r.exit_code == 0, r.output
    verdicts = json.loads(r.stdout)["runs"][0]["verdicts"]
    assert [(v["metric"], v["verdict"]) for v in verdicts] == [("score", "ok"), ("jitter", "ok")]
    assert json.loads(r.stdout)["runs"][0]["original"] == rec["id"]


def test_rerun_errors(cli, db, log_root):
    add_toy(log_root)
    r = cli("rerun", "nothing")
    assert r.exit_code == 2 and "no run and no entry 'nothing'" in r.stderr
    db.execute(
        "INSERT INTO entry (slug, title, date, created, updated) "
        "VALUES ('empty', 'E', '2021-01-24', ?, ?)",
        (stamp(), stamp()),
    )
    db.commit()
    r = cli("rerun", "empty")
    assert r.exit_code == 2 and "links no runs" in r.stderr


def test_rerun_short_ref_never_guesses_a_run(cli, db, log_root):
    rec = setup_entry(cli, db, log_root)
    r = cli("rerun", rec["id"][-3:])  # no such entry, and too short to name a run
    assert r.exit_code == 2 and "no run and no entry" in r.stderr
    assert db.execute("SELECT count(*) FROM run").fetchone()[0] == 1


def test_rerun_drops_params_the_spec_no_longer_declares_in_one_warning(cli, db, log_root):
    rec = setup_entry(cli, db, log_root)
    old = {**rec["params"], "old_knob": 3, "gone": "x"}  # a record from before a spec change
    db.execute("UPDATE run SET params = ? WHERE id = ?", (json.dumps(old), rec["id"]))
    db.commit()
    r = cli("rerun", "w3")
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: toy-regression: recorded params old_knob, gone no longer declared by "
        "toy-regression; dropped"
    ]
    new = db.execute("SELECT params FROM run WHERE parent_id = ?", (rec["id"],)).fetchone()
    assert json.loads(new["params"]) == rec["params"]  # replayed without them
