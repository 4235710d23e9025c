"""The lab: recording 1,000 metric values (vs MLflow on a SQLite store) and a cached rerun.

    PEERS_BIN=/tmp/peers-venv/bin python benchmarks/bench_lab.py [--quick]

1. 1,000 ``ctx.log_metric`` calls plus their batched write into the run's Metric rows (what
   ``recap exp run`` does), against one MLflow ``log_batch`` on a SQLite tracking store (the
   headline: both sides batch) and, for reference, MLflow's ``log_metric`` loop (MLflow runs in the
   peers venv). Targets: <= 0.05 s and <= 0.5x ``log_batch``.
2. ``recap exp run toy-regression`` served from the run cache, as a whole process: <= 1 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RECAP, REPO, peer, report, save, time_cmd, time_fn  # noqa: E402

N = 1000

MLFLOW_SCRIPT = r"""
import json, statistics, sys, time, logging, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

store, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mlflow.set_tracking_uri(f"sqlite:///{store}")
client = MlflowClient()
exp = client.create_experiment("bench")

def loop():
    run = client.create_run(exp)
    rid = run.info.run_id
    t0 = time.perf_counter()
    for i in range(n):
        client.log_metric(rid, "loss", 1.0 / (i + 1), step=i)
    return time.perf_counter() - t0

def batch():
    run = client.create_run(exp)
    rid = run.info.run_id
    t0 = time.perf_counter()
    now = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1), now, i) for i in range(n)])
    return time.perf_counter() - t0

loop(); batch()  # warm-up: the first calls pay for lazy imports and the schema
print(json.dumps({"loop": statistics.median(loop() for _ in range(runs)),
                  "batch": statistics.median(batch() for _ in range(max(runs, 5)))}))
"""


def bench_metrics(quick: bool) -> list[dict]:
    from recap import db
    from recap.lab.context import RunContext
    from recap.lab.runner import Recorder

    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    conn = db.connect(tmp / "recap.db")
    conn.execute("INSERT INTO experiment (name, folder) VALUES ('bench', 'experiments/bench')")
    counter = iter(range(10**6))

    def one():
        i = next(counter)
        run_id = f"run-{i}"
        conn.execute(
            "INSERT INTO run (id, experiment_id, started) VALUES (?, 1, '2021-01-01')", (run_id,)
        )
        out = tmp / run_id
        ctx = RunContext({}, out, run_id=run_id)
        for step in range(N):
            ctx.log_metric("loss", 1.0 / (step + 1), step=step)
        ctx.close()
        rec = Recorder(conn, run_id, out)
        assert rec.pump() == N

    ours = time_fn(one, runs=7)
    n_rows = conn.execute("SELECT count(*) FROM metric").fetchone()[0]
    assert n_rows == N * 8, n_rows
    conn.close()

    runs = 1 if quick else 3
    store = tmp / "mlflow.db"
    proc = subprocess.run(
        [peer("python"), "-c", MLFLOW_SCRIPT, str(store), str(N), str(runs)],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=1800,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"},
    )
    if proc.returncode != 0:
        sys.exit(f"mlflow benchmark failed:\n{proc.stderr[-3000:]}")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(tmp, ignore_errors=True)
    # The headline is MLflow's own batched API (the fair comparison: recap batches its writes
    # too); the per-call loop is what a training script calling log_metric pays, for reference.
    return [
        report(
            f"record {N} metric values vs mlflow log_batch (headline)",
            ours,
            theirs["batch"],
            "<= 0.05 s and <= 0.5x log_batch",
            peer_name="mlflow log_batch",
        ),
        report(
            f"record {N} metric values vs mlflow log_metric loop (reference)",
            ours,
            theirs["loop"],
            "reference",
            peer_name="mlflow log_metric loop",
        ),
    ]


def bench_cached_rerun() -> list[dict]:
    from recap.logroot import init_root

    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    root, _ = init_root(tmp / "log", title="bench")
    shutil.copytree(
        REPO / "experiments" / "toy-regression", root / "experiments" / "toy-regression"
    )
    # Bytecode caching on, as in any installed package (the warm-up run writes it).
    env = {"RECAP_ROOT": str(root), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": ""}
    cmd = [*RECAP, "exp", "run", "toy-regression"]
    subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True)
    cached = time_cmd(cmd, runs=7, env=env)
    cached_cpu = _cpu_median(cmd, env)
    fresh = time_cmd([*cmd, "--force"], runs=5, env=env)
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True)
    assert out.stdout.startswith("cached:"), out.stdout
    shutil.rmtree(tmp, ignore_errors=True)
    return [
        report("cached rerun of toy-regression (whole process)", cached, None, "<= 1 s"),
        # CPU time as well: wall time on a shared, loaded machine says more about the neighbours.
        report("cached rerun of toy-regression, CPU time (user + sys)", cached_cpu, None, "<= 1 s"),
        report(
            "fresh run of toy-regression with --force (whole process)", fresh, None, "for reference"
        ),
    ]


def _cpu_median(cmd, env: dict, runs: int = 7) -> float:
    import resource
    import statistics

    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def main() -> None:
    quick = "--quick" in sys.argv
    load = os.getloadavg()[0]
    print(f"load average at start {load:.1f}", flush=True)
    results = bench_metrics(quick) + bench_cached_rerun()
    results.append({"name": "load average", "value": load})
    save(results, "lab")
    print(json.dumps({"bench": "lab", "results": results}))


if __name__ == "__main__":
    main()
