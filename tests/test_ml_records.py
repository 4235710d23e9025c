"""Run records say what ran: the cache key covers the code, and ``exp export`` is a lab job that a
SIGKILL cannot half-do."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"


def _toy(log_root: Path) -> None:
    shutil.copytree(EXPERIMENTS / "toy-regression", log_root / "experiments" / "toy-regression")


def test_editing_the_ml_core_makes_the_next_identical_run_a_cache_miss(
    cli, db, log_root, tmp_path, monkeypatch
):
    from recap.lab import spec as specmod

    core = tmp_path / "core"
    shutil.copytree(specmod.core_dir(), core, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(specmod, "core_dir", lambda: core)
    _toy(log_root)
    first = cli("exp", "run", "toy-regression", "--json")
    assert first.exit_code == 0, first.output
    again = cli("exp", "run", "toy-regression", "--json")
    assert json.loads(again.stdout)["cached"] is True
    # one edited line in one core module: the same command runs again
    pipeline = core / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\n# an edit\n")
    third = cli("exp", "run", "toy-regression", "--json")
    assert third.exit_code == 0, third.output
    out = json.loads(third.stdout)
    assert out["cached"] is False and out["id"] != json.loads(first.stdout)["id"]
    keys = [r[0] for r in db.execute("SELECT cache_key FROM run ORDER BY started")]
    assert len(keys) == 2 and keys[0] != keys[1]
    env = json.loads(
        db.execute("SELECT environment FROM run WHERE id = ?", (out["id"],)).fetchone()[0]
    )
    assert env["code_hash"] == specmod.code_hash(
        specmod.load_spec(log_root / "experiments" / "toy-regression"), log_root
    )


def test_the_code_hash_covers_the_family_file_and_local_modules(log_root):
    from recap.lab.spec import code_hash, load_spec

    exp = log_root / "experiments"
    shutil.copytree(EXPERIMENTS / "fastai-unity-classify", exp / "fastai-unity-classify")
    shutil.copy(EXPERIMENTS / "fastai-unity-family.toml", exp)
    spec = load_spec(exp / "fastai-unity-classify")
    base = code_hash(spec, log_root)
    family = exp / "fastai-unity-family.toml"
    family.write_text(family.read_text() + "\n# edited\n")
    assert code_hash(spec, log_root) != base
    # a helper module beside the log root that the experiment imports
    _toy(log_root)
    toy = exp / "toy-regression"
    (log_root / "myhelpers.py").write_text("SCALE = 1\n")
    (toy / "main.py").write_text("import json\nimport myhelpers\n" + (toy / "main.py").read_text())
    spec = load_spec(toy)
    before = code_hash(spec, log_root)
    (log_root / "myhelpers.py").write_text("SCALE = 2\n")
    assert code_hash(spec, log_root) != before
    from recap.lab.spec import local_modules

    assert local_modules(spec, log_root) == [(log_root / "myhelpers.py").resolve()]


@pytest.mark.slow
def test_exp_export_killed_with_sigkill_leaves_the_run_intact(db, log_root, recap_proc):
    pytest.importorskip("fastai")
    from recap.fsutil import sha256_file
    from recap.lab.context import RunContext
    from recap.ml.pipeline import run

    run_id = "20260101-000000-abcdef"
    out = log_root / "runs" / "fastai-unity-classify" / run_id
    params = {"preset": "tiny", "epochs": 1, "n_images": 64, "size": 16, "targets": "sentis"}
    folder = EXPERIMENTS / "fastai-unity-classify"
    with RunContext.standalone(out, params, folder=folder) as ctx:
        run(ctx)
    db.execute("INSERT INTO experiment (name, folder) VALUES ('fastai-unity-classify', 'x')")
    db.execute(
        "INSERT INTO run (id, experiment_id, status, params, seed, started, summary) VALUES "
        "(?, 1, 'succeeded', '{}', 0, '2026-01-01T00:00:00Z', '{\"accuracy\": 0.5}')",
        (run_id,),
    )
    db.commit()
    before_row = dict(db.execute("SELECT * FROM run WHERE id = ?", (run_id,)).fetchone())
    before_files = {
        p.relative_to(out).as_posix(): sha256_file(p) for p in out.rglob("*") if p.is_file()
    }

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "recap", "exp", "export", run_id, "--target", "barracuda"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    building = []
    while time.monotonic() < deadline and proc.poll() is None and not building:
        building = [p for p in out.glob(".export-barracuda.*") if p.is_dir()]
        time.sleep(0.05)
    assert building, "the export never started building its bundle"
    proc.send_signal(signal.SIGKILL)  # the whole `recap exp export`, mid-export
    proc.wait()
    # its child follows it (parent-death signal) and removes its half-built folder
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(p.exists() for p in building):
        time.sleep(0.1)
    log = out / "export-barracuda.log"  # what the child said, should it not have cleaned up
    assert not any(p.exists() for p in building), log.read_text() if log.exists() else "no log"
    assert not (out / "export-barracuda").exists()
    # the run's record and files are as they were
    assert dict(db.execute("SELECT * FROM run WHERE id = ?", (run_id,)).fetchone()) == before_row
    assert db.execute("SELECT count(*) FROM artifact").fetchone()[0] == 0
    for rel, digest in before_files.items():
        if rel != "events.jsonl":  # the job appends its events; the run's own lines stay
            assert sha256_file(out / rel) == digest, rel
    # and the next export works
    r = recap_proc("exp", "export", run_id[-6:], "--target", "barracuda", env=env, timeout=300)
    assert r.exit_code == 0, r.output
    assert "exported barracuda, opset 9" in r.stdout and ": ok)" in r.stdout
    rows = [r[0] for r in db.execute("SELECT path FROM artifact ORDER BY path")]
    assert "export-barracuda/model.onnx" in rows and "export-barracuda/parity.json" in rows
