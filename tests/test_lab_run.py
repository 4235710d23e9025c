"""`recap exp run`: records, cache, failures, Ctrl-C, SIGKILL, concurrency, big logs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import pytest
from test_lab_support import add_toy, make_exp, run_dirs, spawn, wait_for


def runs(db, status=None):
    sql = "SELECT * FROM run" + (" WHERE status = ?" if status else "") + " ORDER BY started"
    return db.execute(sql, (status,) if status else ()).fetchall()


def test_run_records_everything(cli, db, log_root):
    add_toy(log_root)
    r = cli("exp", "run", "toy-regression", "-p", "noise=0.2", "--seed", "3", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["status"] == "succeeded" and rec["cached"] is False
    row = db.execute("SELECT * FROM run WHERE id = ?", (rec["id"],)).fetchone()
    params = json.loads(row["params"])
    # Defaults filled in and typed: an int stays an int, a float a float.
    assert params["noise"] == 0.2 and params["n_points"] == 200
    assert isinstance(params["n_points"], int) and isinstance(params["slope"], float)
    assert row["seed"] == 3 and row["status"] == "succeeded" and row["device"] == "cpu"
    assert row["ended"] and row["duration"] > 0 and row["folder_hash"] and row["cache_key"]
    assert row["git_commit"] is None  # the test log root is not a git repo
    summary = json.loads(row["summary"])
    assert summary["val_mse"] == pytest.approx(rec["summary"]["val_mse"]) and summary["val_mse"] < 1
    env = json.loads(row["environment"])
    assert env["python"] and "numpy" in env["packages"]
    # 100 epochs x (train_mse, val_mse), with steps and epochs.
    m = db.execute(
        "SELECT count(*), min(step), max(step), max(epoch) FROM metric WHERE run_id = ?",
        (rec["id"],),
    ).fetchone()
    assert tuple(m) == (200, 0, 99, 99)
    art = db.execute("SELECT * FROM artifact WHERE run_id = ?", (rec["id"],)).fetchall()
    assert [a["path"] for a in art] == ["fit.json"]
    out = log_root / "runs" / "toy-regression" / rec["id"]
    assert art[0]["size"] == (out / "fit.json").stat().st_size and len(art[0]["sha256"]) == 64
    assert json.loads((out / "fit.json").read_text())["val_mse"] == summary["val_mse"]
    assert "val_mse" in (out / "run.log").read_text()  # the child's stdout went to the log
    assert row["log_path"] == f"runs/toy-regression/{rec['id']}/run.log"
    assert (out / "experiment.toml").exists() and (out / "params.json").exists()


def test_deterministic_for_a_seed(cli, db, log_root):
    add_toy(log_root)
    a = json.loads(cli("exp", "run", "toy-regression", "--seed", "5", "--json").stdout)
    b = json.loads(cli("exp", "run", "toy-regression", "--seed", "5", "--force", "--json").stdout)
    c = json.loads(cli("exp", "run", "toy-regression", "--seed", "6", "--json").stdout)
    assert a["id"] != b["id"] and a["summary"] == b["summary"]
    assert c["summary"]["val_mse"] != a["summary"]["val_mse"]


def test_cache_hit_and_force(cli, db, log_root):
    folder = add_toy(log_root)
    first = cli("exp", "run", "toy-regression")
    assert first.exit_code == 0 and "succeeded" in first.stdout
    second = cli("exp", "run", "toy-regression", "--json")
    rec = json.loads(second.stdout)
    assert second.exit_code == 0 and rec["cached"] is True
    assert len(runs(db)) == 1 and rec["id"] == runs(db)[0]["id"]
    assert cli("exp", "run", "toy-regression").stdout.startswith("cached:")
    # --force runs again; a different param or seed is a different key.
    forced = json.loads(cli("exp", "run", "toy-regression", "--force", "--json").stdout)
    assert forced["cached"] is False and forced["id"] != rec["id"]
    assert (
        json.loads(cli("exp", "run", "toy-regression", "-p", "epochs=5", "--json").stdout)["cached"]
        is False
    )
    assert len(runs(db)) == 3
    # Any change to the folder's content invalidates the cache.
    (folder / "notes.txt").write_text("a new file\n")
    assert json.loads(cli("exp", "run", "toy-regression", "--json").stdout)["cached"] is False
    assert len(runs(db)) == 4


def test_bad_params_are_one_line_errors(cli, db, log_root):
    add_toy(log_root)
    r = cli("exp", "run", "toy-regression", "-p", "bogus=1")
    assert r.exit_code == 2 and "unknown param 'bogus'" in r.stderr and "n_points" in r.stderr
    r = cli("exp", "run", "toy-regression", "-p", "n_points=many")
    assert r.exit_code == 2 and "param n_points (int): 'many' is not a valid int" in r.stderr
    r = cli("exp", "run", "toy-regression", "-p", "init=ones")
    assert r.exit_code == 2 and "not one of ['zeros', 'random']" in r.stderr
    r = cli("exp", "run", "toy-regression", "-p", "noise")
    assert r.exit_code == 2 and "expected key=value" in r.stderr
    r = cli("exp", "run", "nope")
    assert r.exit_code == 2 and "no experiment 'nope'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert runs(db) == []


@pytest.mark.parametrize(
    "toml_edit, field",
    [
        (lambda t: 'colour = "red"\n' + t, "colour: unknown key"),
        (
            lambda t: t.replace("default = 200", 'default = "200"'),
            "params.n_points.default: expected int",
        ),
        (
            lambda t: t.replace('entry = "main.py:run"', 'entry = "train.py:run"'),
            "entry: train.py is not a file",
        ),
        (lambda t: t.replace('entry = "main.py:run"\n', ""), "entry: missing"),
        (
            lambda t: t.replace('entry = "main.py:run"', 'entry = "main.py:fit"'),
            "entry: main.py defines no function fit()",
        ),
        (lambda t: t.replace('direction = "min"', 'direction = "down"'), "metric.direction"),
    ],
)
def test_bad_spec_names_file_and_field(cli, db, log_root, toml_edit, field):
    folder = add_toy(log_root)
    spec = folder / "experiment.toml"
    text = spec.read_text()
    spec.write_text(toml_edit(text))
    r = cli("exp", "run", "toy-regression")
    assert r.exit_code == 2
    assert str(spec) in r.stderr and field in r.stderr, r.stderr
    listed = cli("exp", "list")
    assert listed.exit_code == 2 and field in listed.stderr
    assert runs(db) == []


def test_failure_records_traceback(cli, db, log_root):
    make_exp(log_root, "crash", "ctx.log_metric('loss', 1.0, step=0)\nraise ValueError('boom')\n")
    r = cli("exp", "run", "crash")
    assert r.exit_code == 1
    assert "failed" in r.stdout and "ValueError: boom" in r.stderr
    row = runs(db)[0]
    assert row["status"] == "failed" and row["ended"]
    assert "Traceback" in row["error"] and "ValueError: boom" in row["error"]
    # What it logged before dying is kept.
    assert (
        db.execute("SELECT count(*) FROM metric WHERE run_id = ?", (row["id"],)).fetchone()[0] == 1
    )
    assert "ValueError: boom" in (log_root / row["log_path"]).read_text()
    # A failed run is never served from the cache.
    assert json.loads(cli("exp", "run", "crash", "--json").stdout)["cached"] is False


def test_missing_output_fails(cli, db, log_root):
    make_exp(log_root, "lazy", "ctx.set_summary('score', 1)\n", outputs=["model.onnx"])
    r = cli("exp", "run", "lazy")
    assert r.exit_code == 1 and "model.onnx" in r.stderr
    assert runs(db)[0]["status"] == "failed"
    assert "declared outputs not produced: model.onnx" in runs(db)[0]["error"]


def child_pid_file(log_root, name: str):
    """The ``pid`` file the running child of experiment ``name`` wrote, once it holds the pid."""
    pid_file = wait_for(
        lambda: (
            run_dirs(log_root, name)
            and (run_dirs(log_root, name)[0] / "pid").exists()
            and run_dirs(log_root, name)[0] / "pid"
        ),
        what="the child's pid",
    )
    wait_for(lambda: pid_file.read_text().strip(), what="pid written")
    return pid_file


SLEEPER = """
ctx.log_metric('loss', 1.0, step=0)
open(ctx.path('pid'), 'w').write(str(os.getpid()))
time.sleep(60)
"""


@pytest.mark.parametrize("to_group", [True, False], ids=["ctrl-c", "sigint-to-recap"])
def test_interrupt_records_interrupted(db, log_root, to_group):
    make_exp(log_root, "sleepy", SLEEPER)
    proc = spawn("exp", "run", "sleepy", start_new_session=True)
    wait_for(
        lambda: run_dirs(log_root, "sleepy") and (run_dirs(log_root, "sleepy")[0] / "pid").exists(),
        what="the child to start",
    )
    t0 = time.monotonic()
    if to_group:  # what a terminal's Ctrl-C does: SIGINT to the whole foreground group
        os.killpg(proc.pid, signal.SIGINT)
    else:  # only recap itself is told; it must pass it on
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 15
    assert "interrupted" in err
    row = runs(db)[0]
    assert row["status"] == "interrupted" and row["ended"] and "interrupted" in row["error"]
    assert db.execute("SELECT count(*) FROM metric").fetchone()[0] == 1


def test_sigkilled_child_is_failed_with_clear_error(db, log_root):
    make_exp(log_root, "sleepy", SLEEPER)
    proc = spawn("exp", "run", "sleepy")
    pid_file = child_pid_file(log_root, "sleepy")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "killed by SIGKILL" in err
    row = runs(db)[0]
    assert row["status"] == "failed" and "SIGKILL" in row["error"] and row["ended"]


LOGS_THEN_HANGS = """
ctx.log_metric('loss', 1.0, step=0)
time.sleep(1.2)
ctx.log_metric('loss', 0.5, step=1)  # a second later: the buffered events are written out
open(ctx.path('pid'), 'w').write(str(os.getpid()))
time.sleep(60)
"""


def test_metrics_logged_before_a_sigkill_are_kept(db, log_root):
    """Events are buffered, but written at least every second while a run logs: a child killed
    (out of memory, kill -9) keeps what it logged up to then."""
    make_exp(log_root, "hangs", LOGS_THEN_HANGS)
    proc = spawn("exp", "run", "hangs")
    pid_file = child_pid_file(log_root, "hangs")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == 1 and runs(db)[0]["status"] == "failed"
    rows = db.execute("SELECT step, value FROM metric WHERE key = 'loss' ORDER BY step").fetchall()
    assert [tuple(r) for r in rows] == [(0, 1.0), (1, 0.5)]


def test_stale_running_row_is_marked_when_listed(cli, db, log_root):
    make_exp(log_root, "sleepy", SLEEPER)
    proc = spawn("exp", "run", "sleepy")
    pid_file = child_pid_file(log_root, "sleepy")
    assert runs(db)[0]["status"] == "running"
    proc.kill()  # the recording process itself dies without a word
    proc.wait()
    child = int(pid_file.read_text())
    # The child was told (parent-death signal) and does not linger.
    wait_for(
        lambda: (
            not os.path.exists(f"/proc/{child}")
            or open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
        ),
        timeout=20,
        what="the orphaned child to end",
    )
    r = cli("exp", "runs", "--json")
    assert r.exit_code == 0
    listed = json.loads(r.stdout)
    assert listed[0]["status"] == "failed" and "disappeared" in listed[0]["error"]
    assert runs(db)[0]["status"] == "failed"


def test_eight_runs_at_once_on_a_fresh_database(log_root):
    add_toy(log_root)
    for suffix in ("", "-wal", "-shm"):
        (log_root / f"recap.db{suffix}").unlink(missing_ok=True)
    procs = [spawn("exp", "run", "toy-regression", "--seed", i, "--json") for i in range(8)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1] for o in outs]
    ids = {json.loads(o[0])["id"] for o in outs}
    assert len(ids) == 8
    conn = sqlite3.connect(log_root / "recap.db")
    assert conn.execute("SELECT count(*) FROM run WHERE status = 'succeeded'").fetchone()[0] == 8
    assert conn.execute("SELECT count(*) FROM experiment").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM metric").fetchone()[0] == 8 * 200
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] >= 2
    conn.close()


def test_hundred_megabytes_of_output_do_not_stall(cli, db, log_root):
    make_exp(
        log_root,
        "chatty",
        """
chunk = ('x' * 1023 + '\\n') * 1024
for i in range(100):
    sys.stdout.write(chunk)
    if i % 25 == 0:
        sys.stderr.write('progress %d\\n' % i)
sys.stdout.flush()
ctx.set_summary('score', 1.0)
""",
    )
    t0 = time.monotonic()
    r = cli("exp", "run", "chatty")
    assert r.exit_code == 0, r.output
    assert time.monotonic() - t0 < 60
    row = runs(db)[0]
    log = log_root / row["log_path"]
    assert row["status"] == "succeeded"
    assert log.stat().st_size >= 100 * 1024 * 1024
    with open(log, "rb") as fh:
        assert b"progress 0" in fh.read(1 << 20) + fh.read(1 << 20)
    log.unlink()  # 100 MB is not worth keeping in pytest's temp folders


def test_device_auto_is_resolved(cli, db, log_root):
    make_exp(
        log_root, "dev", "ctx.set_summary('score', 1.0)\nctx.set_summary('device', ctx.device)\n"
    )
    rec = json.loads(cli("exp", "run", "dev", "--json").stdout)
    assert rec["device"] in ("cpu", "cuda") and rec["summary"]["device"] == rec["device"]
    assert cli("exp", "run", "dev", "--device", "tpu").exit_code == 2


def test_nan_metrics_and_numpy_like_values_do_not_break_recording(cli, db, log_root):
    make_exp(
        log_root,
        "diverge",
        """
ctx.log_metric('loss', 1.0, step=0)
ctx.log_metric('loss', float('nan'), step=1)
ctx.log_metric('loss', float('inf'), step=2)
ctx.set_summary('score', float('nan'))
ctx.set_summary('label', 'cat')
ctx.set_summary('ok', True)
""",
    )
    r = cli("exp", "run", "diverge", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["summary"]["score"] == "nan" and rec["summary"]["label"] == "cat"
    assert rec["summary"]["ok"] is True
    assert rec["flags"]["nan_metrics"].startswith("1 metric value was NaN")
    values = [x[0] for x in db.execute("SELECT value FROM metric ORDER BY step")]
    assert values == [1.0, float("inf")]


def _git(root, *args):
    import subprocess

    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


def test_git_state_is_recorded(cli, db, log_root):
    folder = add_toy(log_root)
    _git(log_root, "init", "-q")
    _git(log_root, "add", "-A")
    _git(log_root, "commit", "-qm", "first")
    head = (log_root / ".git" / "HEAD").read_text().split()[-1]
    commit = (log_root / ".git" / head).read_text().strip()
    clean = json.loads(cli("exp", "run", "toy-regression", "--json").stdout)
    assert clean["git_commit"] == commit and clean["git_dirty"] is False
    assert clean["git_diff_hash"] is None
    (folder / "main.py").write_text((folder / "main.py").read_text() + "\n# tweak\n")
    dirty = json.loads(cli("exp", "run", "toy-regression", "--json").stdout)
    assert dirty["git_commit"] == commit and dirty["git_dirty"] is True
    assert len(dirty["git_diff_hash"]) == 64
    assert dirty["folder_hash"] != clean["folder_hash"]
    # The rerun of the first run notices both the new content and the new commit.
    _git(log_root, "commit", "-qam", "tweak")
    r = cli("rerun", clean["id"])
    assert r.exit_code == 0, r.output  # a comment changes no number
    assert "the experiment folder changed since run" in r.stderr
    assert "the commit changed since run" in r.stderr


def test_cached_run_stays_light(log_root):
    """`recap exp run` is benchmarked as a whole process: a cached hit loads nothing heavy."""
    import subprocess
    import sys

    from test_lab_support import env

    add_toy(log_root)
    code = (
        "import sys\nfrom recap.cli import main\n"
        "for _ in range(2):\n"
        "    try:\n        main(['exp', 'run', 'toy-regression'])\n"
        "    except SystemExit:\n        pass\n"
        "heavy = ('sqlmodel', 'sqlalchemy', 'torch', 'numpy', 'matplotlib', 'rich', 'fastai')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "[]" and any(line.startswith("cached:") for line in lines)


def test_identical_runs_started_together_run_once(log_root):
    """Issue 14 item 10: three identical `exp run` at once make one run row; the others wait for
    it and report it as their cached result."""
    add_toy(log_root)
    procs = [spawn("exp", "run", "toy-regression", "--seed", "4", "--json") for _ in range(3)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 3, [o[1] for o in outs]
    recs = [json.loads(o[0]) for o in outs]
    assert len({r["id"] for r in recs}) == 1
    assert sorted(r["cached"] for r in recs) == [False, True, True]
    conn = sqlite3.connect(log_root / "recap.db")
    assert conn.execute("SELECT count(*) FROM run").fetchone()[0] == 1
    assert len(run_dirs(log_root, "toy-regression")) == 1
    conn.close()
