"""Parallel renders on one machine: one Blender per process, a progress count over all of them.

``python -m recap.blender.workers JOB.json`` renders the indices the job names and writes its
records beside them; the parent polls how many images exist and reports progress.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def render_parallel(params, seed, indices, out_dir, device, workers, progress=None) -> dict:
    from recap.errors import RecapError

    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    jobs, procs = [], []
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for k in range(workers):
        part = indices[k::workers]
        if not part:
            continue
        job = out_dir / f".worker-{k}.json"
        job.write_text(
            json.dumps(
                {
                    "params": params,
                    "seed": seed,
                    "indices": part,
                    "out_dir": str(out_dir),
                    "device": device,
                    "result": str(out_dir / f".worker-{k}.result.json"),
                }
            ),
            encoding="utf-8",
        )
        jobs.append(job)
        log = open(out_dir / f".worker-{k}.log", "wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "recap.blender.workers", str(job)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        log.close()
    names = {f"{i:05d}.png" for i in indices}
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
            if progress:
                done = sum(1 for f in os.listdir(out_dir / "images") if f in names)
                progress(min(done, len(indices) - 1), len(indices))
    except BaseException:
        for p in procs:
            p.kill()
        raise
    failed = [k for k, p in enumerate(procs) if p.returncode != 0]
    if failed:
        raise RecapError(f"render worker(s) {failed} failed; see {out_dir}/.worker-*.log")
    records, timing, chosen = [], {}, "CPU"
    for job in jobs:
        res = json.loads(Path(json.loads(job.read_text())["result"]).read_text())
        records += res["records"]
        chosen = res["device"]
        for key, value in res["timing"].items():
            timing[key] = timing.get(key, 0.0) + value
    for f in out_dir.glob(".worker-*"):
        f.unlink()
    if progress:
        progress(len(indices), len(indices))
    return {
        "records": sorted(records, key=lambda r: r["index"]),
        "device": chosen,
        "timing": timing,
    }


def main(job_path: str) -> int:
    from recap.blender.dataset import render_indices

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    res = render_indices(
        job["params"], job["seed"], job["indices"], Path(job["out_dir"]), job["device"]
    )
    Path(job["result"]).write_text(json.dumps(res), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
