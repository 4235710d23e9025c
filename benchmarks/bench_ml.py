"""ML core benchmarks: exported-model latency and training throughput, medians, side by side.

1. Latency on the CPU, batch 1: onnxruntime vs torch eager for each task's exported model
   (barracuda and sentis targets, tiny and full small CNNs, and ``--arch`` at ``--size`` when it
   is not ``small``). Target: onnxruntime >= 1.5x faster.
2. Training throughput (training images/s, validation excluded) of the core (fastai learner +
   the run-context callback over TensorBatches) vs a plain PyTorch loop over the same model,
   decoded images, batch size and optimiser, in fp32 and in channels_last + bf16 autocast, for
   ``--arch`` (small, resnet18, resnet34, a timm name) at ``--size``.
   Target: core/plain >= 1.0. The plain loop cuts batches the fastest way (device tensors by a
   permutation); the idiomatic torch DataLoader figure is printed beside it.

    python benchmarks/bench_ml.py --device cpu      # 2 CPU cores: about 2 minutes
    python benchmarks/bench_ml.py --device cuda     # one H200: a few minutes
    python benchmarks/bench_ml.py --device cuda --arch resnet18 --size 128 --skip-latency
    python benchmarks/bench_ml.py --overhead        # per-batch host overhead, CPU: 1-2 minutes

Latency uses untrained weights: the arithmetic does not depend on their values. Results go to
build/bench/ml-<device>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import save, time_fn  # noqa: E402

CONFIG = {
    "cpu": {
        "n_images": 640,
        "size": 32,
        "width": 16,
        "depth": 3,
        "batch_size": 64,
        "epochs": 3,
        "repeats": 3,
    },
    "cuda": {
        "n_images": 16384,
        "size": 64,
        "width": 32,
        "depth": 4,
        "batch_size": 256,
        "epochs": 4,
        "repeats": 3,
    },
    # --overhead: a model so small that a step is almost all per-batch host work (Python,
    # callbacks, launches), which is what bounds the small CNN on a GPU; CPU only, one thread
    "overhead": {
        "n_images": 4096,
        "size": 8,
        "width": 4,
        "depth": 1,
        "batch_size": 16,
        "epochs": 3,
        "repeats": 3,
    },
}
ARCHS = {
    "tiny": {"size": 32, "width": 16, "depth": 3},
    "full": {"size": 64, "width": 32, "depth": 4},
}


class Collector:
    """A stand-in run context that keeps what the callback reports."""

    def __init__(self):
        self.metrics: list[tuple[str, float, int | None]] = []

    def log_metrics(self, values, step=None, epoch=None):
        self.metrics += [(k, float(v), epoch) for k, v in values.items()]


def _task_model(task_name: str, arch: str, size: int, width: int, depth: int):
    """(task, Prepared, model record) for an untrained model of ``arch`` at ``size``."""
    from recap.ml import models
    from recap.ml.tasks import get_task
    from recap.ml.tasks.base import Prepared

    task = get_task(task_name)
    prep = Prepared(
        task_name,
        (size, size),
        [0.5] * 3,
        [0.25] * 3,
        ["a", "b", "c"] if task_name != "keypoint" else [],
        {"n_points": 1, "threshold": 0.5},
    )
    if arch == "small":
        record = task.small(prep, {"width": width, "depth": depth})
    else:
        record = models.vision_record(arch, task.n_out(prep), y_range=task.y_range)
    return task, prep, record


def latency(results: list[dict], quick: bool, arch: str, size: int) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image

    from recap.ml import bundle, models
    from recap.ml.targets import get_target

    threads = torch.get_num_threads()
    print(f"\n-- latency, CPU, batch 1, {threads} threads (onnxruntime vs torch eager)", flush=True)
    cases = [
        (t, name, a) for t in ("classify", "multilabel", "keypoint") for name, a in ARCHS.items()
    ]
    if arch != "small":
        cases.append(("classify", f"{arch}@{size}", {"size": size, "width": 0, "depth": 0}))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for task_name, arch_name, a in cases:
            net = arch if "@" in arch_name else "small"
            task, prep, record = _task_model(task_name, net, a["size"], a["width"], a["depth"])
            torch.manual_seed(0)
            model = bundle.cpu_eval(models.build(record))
            Image.new("RGB", (a["size"], a["size"])).save(tmp / "g.png")
            meta = bundle.model_meta(task, prep)
            for profile in ("barracuda", "sentis"):
                dest = tmp / f"{task_name}-{arch_name}-{profile}"
                target = get_target(profile)
                bundle.export_bundle(task, target, model, prep, meta, dest, tmp / "g.png")
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                sess = ort.InferenceSession(
                    str(dest / "model.onnx"), opts, providers=["CPUExecutionProvider"]
                )
                x = (
                    np.random.default_rng(0)
                    .standard_normal((1, 3, a["size"], a["size"]))
                    .astype(np.float32)
                )
                xt = torch.from_numpy(x)
                calls = 20 if quick else 50

                def run_ort(sess=sess, x=x, calls=calls):
                    for _ in range(calls):
                        sess.run(None, {"input": x})

                def run_torch(model=model, xt=xt, calls=calls):
                    with torch.inference_mode():
                        for _ in range(calls):
                            model(xt)

                t_ort = time_fn(run_ort, runs=5 if quick else 7) / calls
                t_torch = time_fn(run_torch, runs=5 if quick else 7) / calls
                speedup = t_torch / t_ort
                name = f"latency {task_name} {arch_name} {profile}"
                print(
                    f"{name}: onnxruntime {t_ort * 1e3:.3f} ms, torch eager "
                    f"{t_torch * 1e3:.3f} ms, onnxruntime {speedup:.2f}x faster "
                    f"(target >= 1.5x)",
                    flush=True,
                )
                results.append(
                    {
                        "name": name,
                        "onnxruntime_s": t_ort,
                        "torch_s": t_torch,
                        "speedup": speedup,
                        "target": ">= 1.5",
                    }
                )


def _plain_epochs(
    x, y, prep, record, cfg, device, precision, channels_last, loader: bool
) -> list[float]:
    """A plain PyTorch loop over the same decoded images: Adam, one-cycle, cross-entropy.

    ``loader=True``: the idiomatic torch DataLoader over a TensorDataset (per-item collate);
    ``loader=False``: batches cut from device-resident tensors by a random permutation (the
    fastest plain loop, and what the core's TensorBatches does).
    """
    import torch

    from recap.ml import models

    dev = torch.device(device)
    torch.manual_seed(0)
    model = models.build(record).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    mean = torch.tensor(prep.mean, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, device=dev).view(1, 3, 1, 1)
    bs = cfg["batch_size"]
    if loader:
        batches = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y), batch_size=bs, shuffle=True, drop_last=True
        )
    else:
        xd, yd = x.to(dev), y.to(dev)

        def batches_fn():
            order = torch.randperm(len(xd), device=dev)
            for i in range(len(xd) // bs):
                idx = order[i * bs : (i + 1) * bs]
                yield xd[idx], yd[idx]

    steps = len(x) // bs
    opt = torch.optim.AdamW(
        model.parameters(), lr=3e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01
    )  # what the core uses
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=cfg["epochs"] * steps)
    loss_fn = torch.nn.CrossEntropyLoss()
    speeds = []
    for _ in range(cfg["epochs"]):
        model.train()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, n = time.perf_counter(), 0
        for xb, yb in batches if loader else batches_fn():
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            xb = (xb.float() / 255 - mean) / std
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(xb)
            loss = loss_fn(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            n += len(xb)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        speeds.append(n / (time.perf_counter() - t0))
    return speeds


def _core_epochs(df, task, prep, record, cfg, device, precision, channels_last) -> list[float]:
    """The core's path: the task's DataLoaders, its loss and metrics, recap's learner and fit."""
    import torch

    from recap.ml import models, train

    torch.manual_seed(0)
    params = {"batch_size": cfg["batch_size"]}
    dls = task.dataloaders(df, prep, params, device, 0)
    ctx = Collector()
    learn = train.make_learner(
        dls,
        models.build(record),
        task.loss(prep, params),
        task.metrics(prep, params),
        ctx=ctx,
        lr=3e-3,
        precision=precision,
        channels_last=channels_last,
    )
    train.fit(learn, cfg["epochs"], 3e-3)
    return [v for k, v, _ in ctx.metrics if k == "images_per_s"]


def throughput(
    results: list[dict],
    device: str,
    quick: bool,
    overhead: bool = False,
    arch: str = "small",
    size: int = 0,
) -> None:
    import torch

    from recap.ml import data, train

    cfg = dict(CONFIG["overhead" if overhead else device])
    if size:
        cfg["size"] = size
    if quick:
        cfg.update(n_images=cfg["n_images"] // 2, epochs=2, repeats=1)
    torch.use_deterministic_algorithms(False)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # speed, not bitwise reruns, is measured here
    print(
        f"\n-- training throughput on {device}, {arch} ({cfg['n_images']} {cfg['size']}px images, "
        f"batch {cfg['batch_size']}, {cfg['epochs']} epochs, median after the first)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        df = data.make_shapes(Path(tmp), cfg["n_images"], cfg["size"], seed=0)
        task, prep, record = _task_model("classify", arch, cfg["size"], cfg["width"], cfg["depth"])
        prep.labels = sorted(set(df["label"]))
        prep.mean, prep.std = train.channel_stats(
            df[df["split"] == "train"]["file"][:256], prep.size
        )
        record["n_out"] = len(prep.labels)
        rows = df[df["split"] == "train"]
        x, y = train.decode_images(rows["file"], prep.size), task.targets(rows, prep)
        for precision, cl in (("fp32", False), ("bf16", True)):
            variant = "fp32" if precision == "fp32" else "channels_last+bf16"
            args = (prep, record, cfg, device, precision, cl)
            # interleaved repeats: a shared machine's load drifts, so neither side gets the
            # quiet minute; the first epoch of each fit is warm-up and left out
            core_s, plain_s = [], []
            for _ in range(cfg["repeats"]):
                core_s += _core_epochs(df, task, *args)[1:]
                plain_s += _plain_epochs(x, y, *args, loader=False)[1:]
            core, plain = statistics.median(core_s), statistics.median(plain_s)
            plain_dl = statistics.median(_plain_epochs(x, y, *args, loader=True)[1:])
            name = f"train {'overhead ' if overhead else ''}{device} {arch}@{cfg['size']} {variant}"
            # host time a batch costs beyond the plain loop's
            extra_us = (1 / core - 1 / plain) * cfg["batch_size"] * 1e6
            extra = f"; core costs {extra_us:+.0f} us a batch more" if overhead else ""
            print(
                f"{name}: core {core:.0f} img/s, plain loop {plain:.0f} img/s "
                f"(torch DataLoader {plain_dl:.0f}), core/plain {core / plain:.2f} "
                f"(target >= 1.0){extra}",
                flush=True,
            )
            results.append(
                {
                    "name": name,
                    "core_images_per_s": core,
                    "plain_images_per_s": plain,
                    "plain_dataloader_images_per_s": plain_dl,
                    "ratio": core / plain,
                    "target": ">= 1.0",
                    "config": {**cfg, "arch": arch},
                    **({"extra_us_per_batch": extra_us} if overhead else {}),
                }
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="fewer images, epochs and repeats")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument(
        "--overhead",
        action="store_true",
        help="only per-batch overhead: a tiny model on 8px images, CPU, one thread "
        "(shows without a GPU what bounds the small CNN on one)",
    )
    ap.add_argument(
        "--arch",
        default="small",
        help="small (the core's CNN), resnet18, resnet34 or a timm name (fastai's head)",
    )
    ap.add_argument("--size", type=int, default=0, help="image size (0: the device's default)")
    ap.add_argument(
        "--images", type=int, default=0, help="training images (0: the device's default)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch and onnxruntime alike (0: torch's default)",
    )
    args = ap.parse_args()
    try:
        import fastai  # noqa: F401
        import onnxruntime  # noqa: F401
        import torch
    except ImportError:
        sys.exit("bench_ml needs the ml extra: pip install 'recap[ml]'")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    results: list[dict] = []
    if args.overhead:
        torch.set_num_threads(1)
        throughput(results, "cpu", args.quick, overhead=True)
        save(results, "ml-overhead")
        return
    if args.images:
        for cfg in CONFIG.values():
            cfg["n_images"] = args.images
    if not args.skip_latency:
        latency(results, args.quick, args.arch, args.size or 64)
    if not args.skip_train:
        throughput(results, args.device, args.quick, arch=args.arch, size=args.size)
    save(results, f"ml-{args.device}" + (f"-{args.arch}" if args.arch != "small" else ""))


if __name__ == "__main__":
    main()
