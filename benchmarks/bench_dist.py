"""Data-parallel training benchmark: the distributed wrapper's cost on one GPU, scaling on N.

Training images/s (validation excluded, as the core's callback measures it) of the core's
classify path (TensorBatches -> fastai learner -> one-cycle fit) for the small CNN and resnet18:

1. ``plain``: one process, no process group, no wrapper (what ``recap exp run`` runs);
2. ``wrapped``: world size 1 started by torchrun, the model in DistributedDataParallel through
   recap's fastai DistributedTrainer (what ``--processes N`` runs, with N = 1): the overhead of
   the wrapper alone is ``1 - wrapped / plain``; goal <= 3 %;
3. ``N gpus``: when the machine has several GPUs, torchrun with one process per GPU (2, 4, ...
   up to ``--max-gpus``), images/s summed over ranks; scaling = N-GPU / 1-GPU wrapped, goal
   >= 1.85x at 2 GPUs and >= 0.9 efficiency per added GPU.

Each figure is a separate process (a fresh CUDA context); repeats are interleaved (plain,
wrapped, plain, ...) and the median of the epochs after the first is reported. Needs torch and
fastai (Accelerate is used when installed; without it the trainer wraps with torch DDP itself).

    python benchmarks/bench_dist.py --device cuda                 # one H200: about 5 minutes
    python benchmarks/bench_dist.py --device cuda --arch small --repeats 2
    python benchmarks/bench_dist.py --device cpu --quick          # 2 CPU cores, gloo: a smoke run

Prints a table and one JSON line (``BENCH_DIST {...}``); results also go to
build/bench/dist-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIG = {
    # the family's `full` preset for the small CNN; resnet18 at 128 px (fastai's head)
    "cuda": {
        "small": {"size": 64, "width": 32, "depth": 4, "batch_size": 256, "n_images": 16384},
        "resnet18": {"size": 128, "batch_size": 256, "n_images": 8192},
        "epochs": 4,
    },
    "cpu": {
        "small": {"size": 32, "width": 16, "depth": 3, "batch_size": 64, "n_images": 1024},
        "resnet18": {"size": 32, "batch_size": 32, "n_images": 256},
        "epochs": 3,
    },
}
N_VALID = 512  # a small validation split: it runs every epoch but is not timed


def make_data(folder: Path, n_images: int, size: int) -> Path:
    """Synthetic shapes decoded once to uint8 tensors (every worker loads the same file)."""
    import torch

    from recap.ml import data, train

    df = data.make_shapes(folder / "img", n_images + N_VALID, size, seed=0)
    labels = sorted(set(df["label"]))
    index = {lab: i for i, lab in enumerate(labels)}
    x = train.decode_images(df["file"], size)
    y = torch.tensor([index[lab] for lab in df["label"]], dtype=torch.long)
    mean, std = train.channel_stats(df["file"][:256], size)
    path = folder / f"data-{size}.pt"
    torch.save({"x": x, "y": y, "labels": labels, "mean": mean, "std": std}, path)
    return path


class _Ctx:
    """A run context for the worker: rank/world from torchrun, metrics kept in memory."""

    def __init__(self):
        self.rank = int(os.environ.get("RANK", 0))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.dist = {"launcher": "torchrun", "lr_rule": "none"}
        self.is_main = self.rank == 0
        self.speeds: list[float] = []

    def log_metrics(self, values, step=None, epoch=None):
        if "images_per_s" in values:
            self.speeds.append(float(values["images_per_s"]))

    def record_distributed(self, values):
        self.distributed = values


def worker(args) -> None:
    """One measurement (plain, or one rank of a torchrun launch); rank 0 prints a JSON line."""
    import torch

    from recap.ml import distributed, models, train

    device = args.device
    ctx = _Ctx()
    wrapped = args.mode != "plain"
    if device == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    torch.use_deterministic_algorithms(False)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # speed, not bitwise reruns, is measured here
    cfg = CONFIG[device]
    a = dict(cfg[args.arch])
    if args.quick:
        a["n_images"] //= 2
    d = distributed.setup(ctx, device, {"batch_size": a["batch_size"]}, wrap_single=wrapped)
    blob = torch.load(args.data, weights_only=False)
    x, y = blob["x"], blob["y"]
    n = len(x) - N_VALID
    splits = {"train": (x[:n], y[:n]), "valid": (x[n:], y[n:])}
    dls = train.tensor_dls(splits, blob["mean"], blob["std"], a["batch_size"], device, seed=0)
    n_out = len(blob["labels"])
    if args.arch == "small":
        record = {"name": "small_cnn", "n_out": n_out, "width": a["width"], "depth": a["depth"]}
    else:
        record = models.vision_record(args.arch, n_out)
    torch.manual_seed(0)
    learn = train.make_learner(
        dls,
        models.build(record),
        train.CrossEntropyFlat(),
        [],
        ctx=ctx,
        lr=3e-3,
        precision="bf16" if device == "cuda" else "fp32",
        channels_last=device == "cuda",
        cbs=[_WrapperCheck()] if wrapped else [],
    )
    train.fit(learn, cfg["epochs"] if not args.quick else 2, 3e-3)
    check = next((cb for cb in learn.cbs if type(cb).__name__ == "WrapperCheck"), None)
    d.finish()
    if ctx.is_main:
        out = {
            "mode": args.mode,
            "arch": args.arch,
            "world_size": d.world_size,
            "wrapper": check.seen if check else None,
            "speeds": ctx.speeds,
            "config": {**a, "epochs": cfg["epochs"]},
        }
        print("WORKER " + json.dumps(out), flush=True)


def _WrapperCheck():
    from fastai.callback.core import Callback

    class WrapperCheck(Callback):
        """Notes which module trained (proof that the wrapper really was in the loop)."""

        order = 20

        def before_train(self):
            self.seen = type(self.learn.model).__name__

    return WrapperCheck()


def measure(args, mode: str, arch: str, data: Path, gpus: int) -> dict:
    """One measurement in its own process(es); the worker's JSON line."""
    me = [str(Path(__file__).resolve()), "--worker", "--mode", mode, "--arch", arch]
    me += ["--device", args.device, "--data", str(data)] + (["--quick"] if args.quick else [])
    if mode == "plain":
        cmd = [sys.executable, *me]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc-per-node={gpus}", "--max-restarts=0", *me]
    # torchrun sets OMP_NUM_THREADS=1 for several processes: the same for every figure
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": threads}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WORKER ")), None)
    if proc.returncode != 0 or line is None:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-6000:])
        raise SystemExit(f"{mode} {arch} x{gpus} failed (exit {proc.returncode})")
    out = json.loads(line[len("WORKER ") :])
    out["wall_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument("--arch", action="append", help="small and/or resnet18 (default: both)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of each figure")
    ap.add_argument("--max-gpus", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="half the images, 2 epochs")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="plain", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.arch = args.arch[0]
        worker(args)
        return

    import torch

    archs = args.arch or ["small", "resnet18"]
    n_gpu = torch.cuda.device_count() if args.device == "cuda" else 2
    if args.device == "cuda" and n_gpu == 0:
        raise SystemExit("--device cuda: no GPU visible")
    counts = [k for k in (2, 4, 8) if k <= min(n_gpu, args.max_gpus)]
    if args.device == "cpu":
        counts = [2]  # gloo on 2 processes: the path CI tests, as a smoke run
    gpu_name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(
        f"bench_dist: {args.device} ({gpu_name}, {n_gpu if args.device == 'cuda' else 0} GPUs), "
        f"torch {torch.__version__}, repeats {args.repeats}",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        for arch in archs:
            a = CONFIG[args.device][arch]
            n_img = a["n_images"] // (2 if args.quick else 1)
            data = make_data(Path(tmp), n_img, a["size"])
            speeds: dict[str, list[float]] = {"plain": [], "wrapped": []}
            wrappers = set()
            for _ in range(args.repeats):  # interleaved: a drifting machine hurts both sides
                for mode in ("plain", "wrapped"):
                    r = measure(args, mode, arch, data, 1)
                    speeds[mode] += r["speeds"][1:]
                    if r["wrapper"]:
                        wrappers.add(r["wrapper"])
            plain = statistics.median(speeds["plain"])
            wrapped = statistics.median(speeds["wrapped"])
            row = {
                "arch": arch,
                "config": {**a, "n_images": n_img},
                "plain_images_per_s": plain,
                "wrapped_images_per_s": wrapped,
                "wrapper_overhead": 1 - wrapped / plain,
                "overhead_goal": "<= 0.03",
                "wrapper_module": sorted(wrappers),
                "scaling": {},
                "unit": "GPUs" if args.device == "cuda" else "processes (gloo)",
            }
            for k in counts:
                r = [
                    measure(args, "wrapped", arch, data, k) for _ in range(max(1, args.repeats - 1))
                ]
                ips = statistics.median([s for x in r for s in x["speeds"][1:]])
                row["scaling"][str(k)] = {
                    "images_per_s": ips,
                    "speedup_vs_1_wrapped": ips / wrapped,
                    "efficiency": ips / wrapped / k,
                }
            results.append(row)
            print(_table_row(row), flush=True)
    print()
    head = f"{'arch':10} {'plain img/s':>12} {'wrapped img/s':>14} {'overhead':>9} {'<=3%':>6}"
    print(head + "  scaling")
    for row in results:
        print(_table_row(row))
    from benchmarks.common import save

    save(results, f"dist-{args.device}")
    print("BENCH_DIST " + json.dumps({"device": args.device, "gpu": gpu_name, "results": results}))


def _table_row(row: dict) -> str:
    ok = "ok" if row["wrapper_overhead"] <= 0.03 else "MISS"
    scale = ", ".join(
        f"{k} {row['unit']} {v['images_per_s']:.0f} img/s ({v['speedup_vs_1_wrapped']:.2f}x, "
        f"eff {v['efficiency']:.2f})"
        for k, v in row["scaling"].items()
    )
    return (
        f"{row['arch']:10} {row['plain_images_per_s']:12.0f} {row['wrapped_images_per_s']:14.0f} "
        f"{row['wrapper_overhead'] * 100:8.1f}% {ok:>6}  {scale or '-'}"
    )


if __name__ == "__main__":
    main()
