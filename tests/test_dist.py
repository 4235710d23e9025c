"""Runs over several processes (``recap exp run --processes N``): torchrun on the CPU with gloo.

For real: the ranks are separate processes started by torchrun, exchanging gradients and
metrics over gloo. What the user relies on is asserted: one run and one set of files, metrics
reduced (equal to one process evaluating the same weights), parity, the world size in the
record and the cache key, and that a rank which dies, fails or is interrupted ends every rank
within seconds and is recorded with its error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from test_lab_support import make_exp, run_dirs, spawn, wait_for

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"

pytest.importorskip("torch")


# --- the launcher's pieces, without processes ----------------------------------------------------


def test_launch_command_is_torchrun_one_process_per_device(tmp_path):
    from recap.lab.launch import Launch

    job = tmp_path / ".job.json"
    cmd = Launch(processes=2).command(job)
    assert cmd[1:3] == ["-m", "recap.lab.launch"]
    assert "--nproc-per-node=2" in cmd and "--standalone" in cmd and "--max-restarts=0" in cmd
    assert cmd[-3:] == ["-m", "recap.lab.child", str(job)]
    multi = Launch(4, nodes=2, node_rank=1, main_address="n0", main_port=29400).command(job)
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=n0", "--master-port=29400"} <= set(multi)
    assert "--standalone" not in multi
    assert Launch(processes=1).key() is None  # a plain run's cache still applies
    assert Launch(processes=2, lr_rule="linear").key() == {"world_size": 2, "lr_rule": "linear"}
    assert Launch(gpus=True).distributed and not Launch().distributed
    # a rerun replays the recorded world size and LR rule (on this machine)
    rec = {"distributed": {"world_size": 4, "nodes": 2, "backend": "nccl", "lr_rule": "sqrt"}}
    again = Launch.replay(rec)
    assert (again.world_size, again.nodes, again.gpus, again.lr_rule) == (4, 1, True, "sqrt")
    assert Launch.replay({"python": "3.11"}) is None


def test_launch_options_are_checked(cli, log_root):
    make_exp(log_root, "noop", "ctx.set_summary('score', 1)")
    r = cli("exp", "run", "noop", "--processes", "2", "--lr-rule", "cubic")
    assert r.exit_code != 0 and "--lr-rule 'cubic'" in r.output
    r = cli("exp", "run", "noop", "--nodes", "2")
    assert r.exit_code != 0 and "--main-address" in r.output
    if not Path("/proc/driver/nvidia/gpus").is_dir():
        r = cli("exp", "run", "noop", "--gpus", "2")
        assert r.exit_code != 0 and "--gpus: no NVIDIA GPU" in r.output


def test_lr_rules():
    from recap.lab.launch import lr_for

    assert lr_for(1e-3, 4, "none") == 1e-3
    assert lr_for(1e-3, 4, "linear") == pytest.approx(4e-3)
    assert lr_for(1e-3, 4, "sqrt") == pytest.approx(2e-3)


def test_failure_names_the_cause_not_its_consequences(tmp_path):
    import os

    from recap.lab.launch import RANKS_DIR, failure

    log = (
        "Failures:\n[1]:\n  time      : 2026-12-04_17:19:22\n  host      : localhost\n"
        "  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 12)  (SIGKILL)\n"
        "  error_file: <N/A>\n  traceback : Signal 9 (SIGKILL) received by PID 12\n"
        "------------------------------------------------------------\n"
        "Root Cause (first observed failure):\n[0]:\n  time      : 2026-12-04_17:19:22\n"
        "  rank      : 0 (local_rank: 0)\n  exitcode  : 1 (pid: 11)\n  error_file: <N/A>\n"
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html\n"
        "============================================================\n"
    )
    ranks = tmp_path / RANKS_DIR
    ranks.mkdir()
    peer = "RuntimeError: [pair.cc:545] Read error: Connection reset by peer. GLHF\n"
    (ranks / "error-0.txt").write_text(peer)
    # torchrun saw rank 0 first, but rank 0 only lost its peer: rank 1's SIGKILL is the cause
    assert failure(tmp_path, log) == "rank 1 failed: Signal 9 (SIGKILL) received by PID 12"
    # a rank that raised is the cause, with its traceback, even when torchrun names another
    (ranks / "error-1.txt").write_text("ValueError: boom\n")
    os.utime(ranks / "error-1.txt", (1, 1))  # written before rank 0's
    assert failure(tmp_path, log) == (
        "rank 1 failed: Signal 9 (SIGKILL) received by PID 12\nValueError: boom\n"
    )
    # no launcher summary (it was killed): still the real error, not the consequence
    assert failure(tmp_path, "") == "rank 1 failed:\nValueError: boom\n"
    (ranks / "error-1.txt").unlink()
    assert failure(tmp_path, "").startswith("rank 0 failed: see the log\nRuntimeError")


def test_sync_batchnorm_is_turned_back_for_export():
    """On GPUs the trainer converts BatchNorm to SyncBatchNorm; the exported model has the
    original 1d/2d layers back, the same tensors, and computes the same."""
    import torch

    from recap.ml import distributed, models

    model = models.build(models.vision_record("resnet18", 3)).eval()  # BatchNorm2d and 1d
    types = distributed.batchnorm_types(model)
    assert {torch.nn.BatchNorm1d, torch.nn.BatchNorm2d} <= set(types.values())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    first = next(n for n in types)
    weight = model.get_submodule(first).weight
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(synced.get_submodule(first), torch.nn.SyncBatchNorm)
    back = distributed.revert_sync_batchnorm(synced, types).eval()
    assert distributed.batchnorm_types(back) == types
    assert back.get_submodule(first).weight is weight
    with torch.no_grad():
        assert torch.equal(back(x), ref)


# --- real processes -------------------------------------------------------------------------------

# each rank joins the group, then all-reduces until stopped (rank 0 says when the group is up)
SPIN = """
import torch, torch.distributed as td
from recap.ml import distributed
d = distributed.setup(ctx, "cpu")
x = torch.ones(1)
td.all_reduce(x)
if ctx.rank == 1 and ctx.params.get("fail"):
    raise ValueError("boom on rank 1")
if ctx.is_main:
    ctx.path("ready").write_text("1")
    ctx.set_summary("score", float(x))
while True:
    td.all_reduce(x)
    time.sleep(0.05)
"""


def test_an_entry_point_unaware_of_ranks_cannot_clobber_rank_0(cli, db, log_root):
    # it writes its own file and never wraps a model: rank 1 writes into a scratch folder
    # (removed afterwards), rank 0's file and numbers are the run's, and the record says the
    # run was not data-parallel
    body = (
        'ctx.path("out.txt").write_text(f"rank {ctx.rank}")\nctx.set_summary("score", ctx.rank)\n'
    )
    make_exp(log_root, "naive", body, outputs=["out.txt"])
    r = cli("exp", "run", "naive", "--processes", "2", "--device", "cpu", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    out = log_root / "runs" / "naive" / rec["id"]
    assert (out / "out.txt").read_text() == "rank 0" and rec["summary"]["score"] == 0
    assert "not data-parallel" in rec["flags"]["distributed"]
    assert not list((out / ".ranks").glob("rank-*"))
    assert [a["path"] for a in rec["artifacts"]] == ["out.txt"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _procs_naming(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (the run's job file)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if text.encode() in (d / "cmdline").read_bytes() and _alive(int(d.name)):
                out.append(int(d.name))
        except OSError:
            continue
    return out


def _start_spin(log_root, *extra, **kw):
    make_exp(log_root, "spin", SPIN, params='[params.fail]\ntype = "bool"\ndefault = false\n')
    proc = spawn("exp", "run", "spin", "--processes", "2", "--device", "cpu", *extra, **kw)
    run_dir = wait_for(lambda: next(iter(run_dirs(log_root, "spin")), None), 60, "the run folder")
    return proc, run_dir


def _ranks(run_dir: Path) -> dict[int, int]:
    ranks = run_dir / ".ranks"
    wait_for(lambda: all((ranks / f"pid-{r}").is_file() for r in (0, 1)), 60, "both ranks")
    return {r: int((run_dir / ".ranks" / f"pid-{r}").read_text()) for r in (0, 1)}


def test_killing_one_rank_fails_the_run_within_seconds(db, log_root):
    proc, run_dir = _start_spin(log_root)
    pids = _ranks(run_dir)
    wait_for(lambda: (run_dir / "ready").exists(), 60, "the process group")
    os.kill(pids[1], signal.SIGKILL)
    t0 = time.monotonic()
    proc.wait(timeout=60)
    took = time.monotonic() - t0
    assert took < 10, f"the run took {took:.1f} s to fail after a rank died"
    print(f"the run failed {took:.1f} s after rank 1 was killed")
    assert proc.returncode == 1
    row = db.execute("SELECT status, error, environment FROM run").fetchone()
    assert row["status"] == "failed"
    assert row["error"].startswith("rank 1 failed: Signal 9 (SIGKILL)"), row["error"]
    env = json.loads(row["environment"])
    assert env["distributed"]["world_size"] == 2 and env["distributed"]["backend"] == "gloo"
    # every rank and the launcher are gone: nothing names the run's job file any more
    assert not any(_alive(p) for p in pids.values())
    assert _procs_naming(str(run_dir / ".job.json")) == []


def test_a_rank_that_raises_fails_the_run_with_its_traceback(db, log_root):
    proc, run_dir = _start_spin(log_root, "-p", "fail=true")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    row = db.execute("SELECT status, error FROM run").fetchone()
    assert row["status"] == "failed"
    assert row["error"].startswith("rank 1 failed") and "ValueError: boom on rank 1" in row["error"]
    assert "boom on rank 1" in err  # the CLI's one line
    assert _procs_naming(str(run_dir / ".job.json")) == []


# three processes import torch: about 9 s each on 2 idle cores (25 s on a loaded box)
@pytest.mark.parametrize(
    "group", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["terminal", "parent-only"]
)
def test_ctrl_c_stops_every_rank(db, log_root, group):
    proc, run_dir = _start_spin(log_root, start_new_session=True)
    pids = _ranks(run_dir)
    wait_for(lambda: (run_dir / "ready").exists(), 60, "the process group")
    if group:  # a terminal's Ctrl-C: the recorder and the launcher (ranks have their own)
        os.killpg(proc.pid, signal.SIGINT)
    else:  # the recording parent only: it stops the launcher
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 130
    assert db.execute("SELECT status FROM run").fetchone()["status"] == "interrupted"
    wait_for(lambda: not any(_alive(p) for p in pids.values()), 5, "every rank to stop")
    assert _procs_naming(str(run_dir / ".job.json")) == []


TWO_NODES = """
from recap.ml import distributed
d = distributed.setup(ctx, "cpu")
m = distributed.reduce_mean({"r": float(d.rank)}, count=d.rank + 1)
ctx.set_summary("score", m["r"])
"""


@pytest.mark.slow
def test_two_nodes_on_one_machine_record_one_run(db, log_root):
    import socket

    make_exp(log_root, "nodes", TWO_NODES)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    common = ["--nodes", "2", "--main-address", "127.0.0.1", "--main-port", port]
    other = spawn("exp", "run", "nodes", "--device", "cpu", "--node-rank", "1", *common)
    main = spawn("exp", "run", "nodes", "--device", "cpu", "--node-rank", "0", *common, "--json")
    out, _ = main.communicate(timeout=120)
    joined, _ = other.communicate(timeout=60)
    assert main.returncode == 0 and other.returncode == 0, joined
    assert joined.strip() == "node 1: succeeded"
    rec = json.loads(out)
    # the weighted mean over both nodes' ranks: (0 x 1 + 1 x 2) / 3
    assert rec["summary"]["score"] == pytest.approx(2 / 3)
    d = rec["environment"]["distributed"]
    assert d["world_size"] == 2 and d["nodes"] == 2 and d["node_rank"] == 0
    assert db.execute("SELECT count(*) FROM run").fetchone()[0] == 1
    assert len(run_dirs(log_root, "nodes")) == 1


# --- the core over two processes ----------------------------------------------------------------


@pytest.mark.slow
def test_classify_on_two_processes(cli, db, log_root):
    exp = log_root / "experiments"
    shutil.copytree(EXPERIMENTS / "fastai-unity-classify", exp / "fastai-unity-classify")
    shutil.copy(EXPERIMENTS / "fastai-unity-family.toml", exp)
    args = ["exp", "run", "fastai-unity-classify", "--processes", "2", "--device", "cpu"]
    params = ["-p", "epochs=2", "-p", "targets=sentis"]
    r = cli(*args, *params, "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["status"] == "succeeded" and rec["summary"]["parity_ok"] == 1
    # one run, one set of files: rank 1 wrote nothing
    assert db.execute("SELECT count(*) FROM run").fetchone()[0] == 1
    out = log_root / "runs" / "fastai-unity-classify" / rec["id"]
    paths = [a["path"] for a in rec["artifacts"]]
    assert len(paths) == len(set(paths)) and "model.pth" in paths
    assert "bundle/sentis/model.onnx" in paths
    # the record: world size, backend, devices, the batch and LR rule
    d = rec["environment"]["distributed"]
    assert d["world_size"] == 2 and d["backend"] == "gloo" and len(d["devices"]) == 2
    assert d["per_device_batch"] == 32 and d["effective_batch"] == 64
    assert d["lr_rule"] == "none" and d["effective_lr"] == rec["params"]["lr"]
    meta = json.loads((out / "bundle" / "sentis" / "model.json").read_text())
    assert meta["training"]["distributed"]["world_size"] == 2
    # metrics reduced, not duplicated: one value per key and epoch
    counts = db.execute(
        "SELECT key, epoch, count(*) AS n FROM metric WHERE run_id = ? GROUP BY key, epoch",
        (rec["id"],),
    ).fetchall()
    assert {r["key"] for r in counts} >= {"train_loss", "valid_loss", "accuracy", "images_per_s"}
    assert {r["n"] for r in counts} == {1} and {r["epoch"] for r in counts} == {0, 1}
    last = {
        r["key"]: r["value"]
        for r in db.execute(
            "SELECT key, value FROM metric WHERE run_id = ? AND epoch = 1", (rec["id"],)
        )
    }
    # the reduced validation metrics equal one process evaluating the same weights
    loss, acc, n_valid = _evaluate_single_process(out, exp / "fastai-unity-classify")
    assert last["valid_loss"] == pytest.approx(loss, rel=1e-5)
    assert last["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert rec["summary"]["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert n_valid % 2 == 1  # an odd number of rows: the two shards differ in length
    # the world size is in the cache key: the same command is cached, one process is not
    from recap.lab.launch import Launch
    from recap.lab.runner import run_cache_key
    from recap.lab.spec import load_spec, parse_params

    spec = load_spec(exp / "fastai-unity-classify")
    values, _ = parse_params(spec, ["epochs=2", "targets=sentis"])
    key = db.execute("SELECT cache_key FROM run").fetchone()[0]
    assert key == run_cache_key(spec, values, 0, "cpu", log_root, Launch(2))
    assert key != run_cache_key(spec, values, 0, "cpu", log_root)
    again = json.loads(cli(*args, *params, "--json").stdout)
    assert again["cached"] is True and again["id"] == rec["id"]


def _evaluate_single_process(out: Path, folder: Path):
    """Validation loss and accuracy of the saved weights, in this one process."""
    import tempfile

    import torch

    from recap.lab.spec import load_spec
    from recap.ml import data, train
    from recap.ml.pipeline import task_of
    from recap.ml.tasks.base import Prepared

    ckpt = torch.load(out / "model.pth", weights_only=False)
    task = task_of(load_spec(folder).as_dict())
    p = json.loads((out / "config.json").read_text())
    prep = Prepared.from_dict(ckpt["prep"])
    model = task.build(ckpt["record"])
    model.load_state_dict(ckpt["state_dict"])
    with tempfile.TemporaryDirectory() as tmp:
        table = data.load_table(p, task, 0, Path(tmp), folder)  # config.json: resolved
        dls = task.dataloaders(table, prep, p, "cpu", 0)
        learn = train.make_learner(dls, model, task.loss(prep, p), task.metrics(prep, p))
        loss, acc = learn.validate()
        return float(loss), float(acc), len(table[table["split"] == "valid"])
