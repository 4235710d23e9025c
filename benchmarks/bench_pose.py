"""Pose benchmarks: training throughput of the core vs a plain PyTorch loop, and exported-model
latency on the CPU (onnxruntime vs torch eager).

1. Training images/s (validation excluded), SimpleBaseline-style resnet18 + deconvolution head at
   256 x 192 (heat maps 64 x 48, 17 joints), batch 64 on a GPU: the core (the pose task's
   batches with flips, its Gaussian heat-map loss, the core's fastai learner and one-cycle fit,
   reporting through a run context) against a plain loop over the same model, device-resident
   crops, flips, loss, AdamW and one-cycle schedule. fp32, and channels_last + bf16 autocast.
   Target: core/plain >= 0.95.
2. Latency on the CPU, batch 1: onnxruntime vs torch eager for the exported network (heat maps
   out, decode outside) of the tiny preset (small CNN, 48 x 64) and the full one (resnet18,
   192 x 256), barracuda (opset 9) and sentis (opset 15) profiles. Target: onnxruntime >= 1.5x.
   The session is the one a user's reference makes (default graph optimisation, ORT_ENABLE_ALL,
   the same threads as torch). Both profiles write the same graph once onnxruntime has optimised
   it; the deconvolutions go out in phase form (``recap.ml.pose.models.onnx_form``), and
   ``--compare-form`` times the graph torch writes as it is (ConvTranspose) beside it.

    taskset -c 0 python benchmarks/bench_pose.py --device cpu --skip-train --threads 1 \
        --latency-sizes full --compare-form                # one quiet core

    python benchmarks/bench_pose.py --device cuda          # one H200: a few minutes
    python benchmarks/bench_pose.py --device cpu --quick   # 2 CPU cores: small sizes, a minute

Needs torch, torchvision, numpy, fastai and onnxruntime (no timm, no pycocotools). Random
pixels and joints: the arithmetic does not depend on them. Prints a table and one JSON line;
results also go to build/bench/pose-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIG = {
    "cuda": {
        "n": 4096,
        "w": 192,
        "h": 256,
        "arch": "resnet18",
        "bs": 64,
        "epochs": 4,
        "repeats": 3,
    },
    "cpu": {"n": 256, "w": 48, "h": 64, "arch": "small", "bs": 32, "epochs": 3, "repeats": 2},
}
LATENCY = {
    "tiny": {"arch": "small", "w": 48, "h": 64, "width": 24, "depth": 2, "head_channels": 48},
    "full": {"arch": "resnet18", "w": 192, "h": 256, "width": 32, "depth": 3, "head_channels": 256},
}
LR = 1e-3


class Collector:
    """A stand-in run context that keeps what the core's callback reports."""

    def __init__(self):
        self.metrics = []

    def log_metrics(self, values, step=None, epoch=None):
        self.metrics += [(k, float(v)) for k, v in values.items()]


def record(arch: str, w: int, h: int, width=32, depth=3, head_channels=256) -> dict:
    return {
        "name": "pose",
        "backbone": arch,
        "width": width,
        "depth": depth,
        "head": "deconv",
        "head_channels": head_channels,
        "heatmap_stride": 4,
        "input_size": [w, h],
        "k": 17,
    }


def fake_data(cfg, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (cfg["n"], 3, cfg["h"], cfg["w"]), dtype=torch.uint8, generator=g)
    j = torch.rand(cfg["n"], 17, 3, generator=g)
    j[..., 0] *= cfg["w"]
    j[..., 1] *= cfg["h"]
    j[..., 2] = 2
    return x, j


def core_epochs(x, j, cfg, device, precision, channels_last) -> list[float]:
    import torch
    from fastai.data.core import DataLoaders

    from recap.ml import train
    from recap.ml.pose import models, torch_ops
    from recap.ml.pose.skeleton import Skeleton
    from recap.ml.pose.train import PoseBatches, px_error_metric

    torch.manual_seed(0)
    rec = record(cfg["arch"], cfg["w"], cfg["h"])
    perm = Skeleton.coco().flip_perm
    mean, std = [0.5] * 3, [0.25] * 3
    loaders = [
        PoseBatches(x, j, mean, std, cfg["bs"], True, perm, 0),
        PoseBatches(x[: cfg["bs"]], j[: cfg["bs"]], mean, std, cfg["bs"], False),
    ]
    dls = DataLoaders(*loaders, device=torch.device(device))
    ctx = Collector()
    learn = train.make_learner(
        dls,
        models.build(rec),
        loss_func=torch_ops.HeatmapLoss((cfg["w"], cfg["h"]), sigma=2.0),
        metrics=[px_error_metric(rec)],
        ctx=ctx,
        lr=LR,
        precision=precision,
        channels_last=channels_last,
    )
    train.fit(learn, cfg["epochs"], LR)
    return [v for k, v in ctx.metrics if k == "images_per_s"]


def plain_epochs(x, j, cfg, device, precision, channels_last) -> list[float]:
    """The same work written as a plain PyTorch loop (the yardstick)."""
    import torch

    from recap.ml.pose import models, torch_ops
    from recap.ml.pose.skeleton import Skeleton

    dev = torch.device(device)
    torch.manual_seed(0)
    model = models.build(record(cfg["arch"], cfg["w"], cfg["h"])).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    perm = Skeleton.coco().flip_perm
    xd, jd = x.to(dev), j.to(dev)
    if channels_last:
        xd = xd.contiguous(memory_format=torch.channels_last)
    mean = torch.full((1, 3, 1, 1), 0.5, device=dev)
    std = torch.full((1, 3, 1, 1), 0.25, device=dev)
    loss_fn = torch_ops.HeatmapLoss((cfg["w"], cfg["h"]), sigma=2.0)
    bs, steps = cfg["bs"], len(x) // cfg["bs"]
    opt = torch.optim.AdamW(
        model.parameters(), lr=LR, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=cfg["epochs"] * steps)
    gen = torch.Generator().manual_seed(0)
    speeds = []
    for _ in range(cfg["epochs"]):
        model.train()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, n = time.perf_counter(), 0
        order = torch.randperm(len(x), generator=gen)
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            flip = (torch.rand(len(idx), generator=gen) < 0.5).to(dev)
            idx = idx.to(dev)
            xb = (xd[idx].float() / 255 - mean) / std
            xb, yb = torch_ops.flip_batch(xb, jd[idx], flip, perm)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(xb)
            loss = loss_fn(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n += len(idx)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        speeds.append(n / (time.perf_counter() - t0))
    return speeds


def throughput(results: list[dict], device: str, quick: bool) -> None:
    import torch

    cfg = dict(CONFIG[device])
    if quick:
        cfg.update(n=cfg["n"] // 2, epochs=2, repeats=1)
    torch.use_deterministic_algorithms(False)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    x, j = fake_data(cfg)
    print(
        f"\n-- pose training throughput on {device}: {cfg['arch']} + deconv head, "
        f"{cfg['h']}x{cfg['w']}, batch {cfg['bs']}, {cfg['n']} crops, {cfg['epochs']} epochs "
        "(median after the first)",
        flush=True,
    )
    variants = [("fp32", False)] + ([("bf16", True)] if device == "cuda" else [])
    for precision, cl in variants:
        core_s, plain_s = [], []
        for _ in range(cfg["repeats"]):  # interleaved: drifting load hits both alike
            core_s += core_epochs(x, j, cfg, device, precision, cl)[1:]
            plain_s += plain_epochs(x, j, cfg, device, precision, cl)[1:]
        core, plain = statistics.median(core_s), statistics.median(plain_s)
        name = f"pose train {device} {'fp32' if precision == 'fp32' else 'channels_last+bf16'}"
        results.append(
            {
                "name": name,
                "core_images_per_s": core,
                "plain_images_per_s": plain,
                "ratio": core / plain,
                "target": ">= 0.95",
                "config": cfg,
            }
        )
        print(f"{name}: core {core:.1f} img/s, plain {plain:.1f} img/s, ratio {core / plain:.3f}")


def latency(results: list[dict], quick: bool, which, compare_form: bool = False) -> None:
    """onnxruntime (the session a user's reference makes: default graph optimisation, the same
    threads as torch) against torch eager, batch 1. Every session and torch are timed in turn,
    round after round, so a drifting load hits them alike. ``compare_form``: also the network
    exported as it is (ConvTranspose + BatchNormalization) beside the phase form recap writes."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image

    from recap.ml import bundle as bundlemod
    from recap.ml import targets
    from recap.ml.pose.skeleton import Skeleton
    from recap.ml.tasks.base import Prepared
    from recap.ml.tasks.pose import PoseTask

    threads = torch.get_num_threads()
    print(f"\n-- latency, CPU, batch 1, {threads} threads (onnxruntime vs torch eager)", flush=True)
    task = PoseTask()
    rounds = 3 if quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in which:
            a = LATENCY[size]
            torch.manual_seed(0)
            rec = record(a["arch"], a["w"], a["h"], a["width"], a["depth"], a["head_channels"])
            model = bundlemod.cpu_eval(task.build(rec))
            info = {
                "skeleton": Skeleton.coco().to_json(),
                "head": "deconv",
                "heatmap_stride": 4,
                "sigma": 2.0,
                "decode": "argmax",
                "beta": 1.0,
                "threshold": 0.2,
                "padding": 1.25,
            }
            prep = Prepared("pose", (a["h"], a["w"]), [0.5] * 3, [0.25] * 3, info=info)
            meta = bundlemod.model_meta(task, prep, {})
            Image.new("RGB", (a["w"], a["h"])).save(tmp / "g.png")
            # a Sequential round the model hides its onnx_form: the graph torch writes as it is
            forms = [("", model)] + (
                [(" as-is", torch.nn.Sequential(model))] if compare_form else []
            )
            sessions = {}
            for profile in ("barracuda", "sentis"):
                for suffix, exported in forms:
                    dest = tmp / f"{size}-{profile}{suffix.strip()}"
                    target = targets.get_target(profile)
                    bundlemod.export_bundle(task, target, exported, prep, meta, dest, tmp / "g.png")
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = threads
                    sessions[profile + suffix] = ort.InferenceSession(
                        str(dest / "model.onnx"), opts, providers=["CPUExecutionProvider"]
                    )
            x = np.random.default_rng(0).standard_normal((1, 3, a["h"], a["w"]))
            x = x.astype(np.float32)
            xt = torch.from_numpy(x)
            calls = (10 if quick else 30) if size == "full" else (30 if quick else 100)
            runners = {name: _ort_runner(sess, x, calls) for name, sess in sessions.items()}
            runners["torch"] = _torch_runner(model, xt, calls)
            for fn in runners.values():
                fn()  # warm-up
            samples: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(rounds):
                for name, fn in runners.items():
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append((time.perf_counter() - t0) / calls)
            t_torch = statistics.median(samples["torch"])
            for name in sessions:
                t_ort = statistics.median(samples[name])
                label = f"pose latency {size} {a['arch']} {a['h']}x{a['w']} {name}"
                results.append(
                    {
                        "name": label,
                        "onnxruntime_s": t_ort,
                        "torch_s": t_torch,
                        "speedup": t_torch / t_ort,
                        "target": ">= 1.5",
                        "samples_ms": {
                            "onnxruntime": [round(v * 1e3, 2) for v in samples[name]],
                            "torch": [round(v * 1e3, 2) for v in samples["torch"]],
                        },
                    }
                )
                print(
                    f"{label}: onnxruntime {t_ort * 1e3:.2f} ms, torch eager {t_torch * 1e3:.2f} "
                    f"ms, {t_torch / t_ort:.2f}x",
                    flush=True,
                )


def _ort_runner(sess, x, calls: int):
    def run():
        for _ in range(calls):
            sess.run(None, {"input": x})

    return run


def _torch_runner(model, xt, calls: int):
    import torch

    def run():
        with torch.inference_mode():
            for _ in range(calls):
                model(xt)

    return run


def table(results: list[dict]) -> str:
    lines = [f"{'benchmark':<58} {'ours':>12} {'peer':>12} {'ratio':>7}  target"]
    for r in results:
        if "ratio" in r:
            ours, peer, ratio = r["core_images_per_s"], r["plain_images_per_s"], r["ratio"]
            cells = f"{ours:>8.1f} i/s {peer:>8.1f} i/s"
        else:
            ours, peer, ratio = r["onnxruntime_s"] * 1e3, r["torch_s"] * 1e3, r["speedup"]
            cells = f"{ours:>9.2f} ms {peer:>9.2f} ms"
        lines.append(f"{r['name']:<58} {cells} {ratio:>7.2f}  {r['target']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="fewer crops, epochs and repeats")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--latency-sizes", default="tiny,full", help="tiny, full or both")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument(
        "--compare-form",
        action="store_true",
        help="latency also of the graph torch writes as it is (ConvTranspose), for comparison",
    )
    args = ap.parse_args()
    try:
        import fastai  # noqa: F401
        import torch
    except ImportError:
        sys.exit("bench_pose needs torch, torchvision, fastai and onnxruntime")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    results: list[dict] = []
    if not args.skip_train:
        throughput(results, args.device, args.quick)
    if not args.skip_latency:
        sizes = [s for s in args.latency_sizes.split(",") if s]
        latency(results, args.quick, sizes, args.compare_form)
    print("\n" + table(results))
    out = Path(__file__).resolve().parent.parent / "build" / "bench" / f"pose-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps({"bench": "pose", "device": args.device, "results": results}))


if __name__ == "__main__":
    main()
