"""Style-transfer benchmarks: training throughput, stylising speed, CPU latency, where time goes.

1. Training, end to end from JPEG files on disk, side by side on one device:
   - ``recipe``: the pytorch/examples fast_neural_style recipe (a torchvision-style Dataset
     decoding each JPEG with PIL, Resize(256) + CenterCrop(256), DataLoader batch 4, no workers;
     TransformerNet (32,64,128) with 5 residual blocks, VGG16 loss at relu1_2/2_2/3_3/4_3, the
     content image through the same VGG up to relu4_3, Adam 1e-3, fp32 eager);
   - ``full``: the family's ``full`` preset (recap.ml.style): JPEGs decoded, resized and
     center-cropped once into the content cache (timed, included), the cache on the GPU, batch
     64, bf16 autocast, channels_last, torch.compile, content features only up to relu2_2.
   Goal: full >= 5x recipe (>= 1,200 images/s at 256 px on an H200).
2. Stylising 1280x720, batch 1, filters (32,64,128) and (8,16,32): eager fp32 vs the best of
   channels_last + fp16/bf16 + torch.compile (with CUDA graphs). Goals >= 500 and >= 1,000 fps.
   Model call on a device tensor; the "e2e" column adds the uint8 upload and pre/post-processing.
3. On the CPU: onnxruntime vs torch eager per frame at 960x540 (both filter sets).
4. Profiler: the full preset's training step by operator class (convolution, normalisation,
   gram matmul, elementwise, copies), and the fraction of the GPU's bf16 peak reached.

    python benchmarks/bench_style.py --device cuda          # on the H200: a few minutes
    python benchmarks/bench_style.py --device cpu --quick   # a smoke run on 2 CPU cores

Needs only torch, torchvision, numpy, onnxruntime and PIL (plus recap's own modules). The loss
network is randomly initialised (no weights are downloaded): the arithmetic is the same as with
ImageNet weights. Results: a table, one JSON line, and build/bench/style-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BF16_PEAK = 774e12  # measured bf16 matmul FLOP/s on the lent H200 (DESIGN.md)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# -- data -----------------------------------------------------------------------------------------
def make_jpegs(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` procedural JPEGs a bit larger than the crop, so resize + crop do real work."""
    from recap.ml.style import data

    files = []
    for i, img in enumerate(data.procedural_content(n, size, seed)):
        f = folder / f"{i:05d}.jpg"
        data.save_rgb(img, f, quality=90)
        files.append(f)
    return files


class JpegDataset:
    """What the recipe trains from: one JPEG decoded and transformed per item."""

    def __init__(self, files: list[Path], size: int):
        from torchvision import transforms

        self.files = files
        self.tf = transforms.Compose(
            [
                transforms.Resize(size),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Lambda(lambda x: x.mul(255)),
            ]
        )

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.files[i]) as img:
            return self.tf(img.convert("RGB"))


# -- 1. training ----------------------------------------------------------------------------------
def recipe_throughput(files, device: str, steps: int, warmup: int, size: int = 256) -> dict:
    import torch
    from torch.nn import functional as F

    from recap.ml.style import losses, nets

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        JpegDataset(files, size), batch_size=4, shuffle=True, drop_last=True
    )
    model = nets.TransformerNet((32, 64, 128), 5).to(device)
    vgg = losses.VGGFeatures("vgg16", losses.STYLE_LAYERS, random_init=True).to(device)
    style = torch.rand(1, 3, size, size, device=device)
    with torch.no_grad():
        grams = [losses.gram(f) for f in vgg(style).values()]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    done, t0 = 0, None
    it = iter(loader)
    for step in range(steps + warmup):
        if step == warmup:
            sync(device)
            t0 = time.perf_counter()
        try:
            x = next(it)
        except StopIteration:
            it = iter(loader)
            x = next(it)
        x = x.to(device)
        opt.zero_grad()
        y = model(x)
        fy, fx = vgg(y / 255), vgg(x / 255)  # the recipe runs the content image to relu4_3 too
        content = 1e5 * F.mse_loss(fy["relu2_2"], fx["relu2_2"])
        style_loss = 0.0
        for g, f in zip(grams, fy.values(), strict=True):
            gy = losses.gram(f)
            style_loss = style_loss + F.mse_loss(gy, g.expand_as(gy))
        (content + 1e10 * style_loss).backward()
        opt.step()
        if step >= warmup:
            done += x.shape[0]
    sync(device)
    secs = time.perf_counter() - t0
    return {"images_per_s": done / secs, "images": done, "seconds": secs, "batch": 4, "size": size}


def full_throughput(
    files, device: str, steps: int, batch: int, quick: bool, phase: bool = False
) -> dict:
    """The full preset end to end: content cache from the JPEGs + compile + training steps;
    ``phase``: its 9x9 convolutions in phase form (``nets.phase_conv``)."""
    import numpy as np
    import torch

    from recap.ml.style import data, losses, nets, train
    from recap.ml.style.experiment import PRESETS

    preset = PRESETS["transformer"]["full"]
    size = 64 if quick else int(preset["size"])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        content = data.content_cache(files, size, Path(tmp), workers=8)
        content = np.array(content)  # read the memory map once, before its folder goes
    cache_s = time.perf_counter() - t0
    on_gpu = device.startswith("cuda")

    def run(n_steps: int):
        torch.manual_seed(0)
        vgg = losses.VGGFeatures(
            "vgg16", preset["style_layers"].split(","), random_init=True
        )  # fmt: skip
        loss_fn = losses.PerceptualLoss(
            vgg, torch.rand(1, 3, size, size), preset["style_layers"].split(",")
        )
        model = nets.TransformerNet((32, 64, 128), 5)
        return train.train_transformer(
            model, loss_fn, content, steps=n_steps, batch_size=batch, lr=float(preset["lr"]),
            device=device, precision="bf16" if on_gpu else "fp32", channels_last=on_gpu,
            compile=on_gpu and not quick, log_every=max(n_steps, 1), seed=0,
            cudnn_benchmark=on_gpu and bool(preset["cudnn_benchmark"]),
            align=8 if on_gpu and preset["gpu_form"] else 0, phase=phase,
        )  # fmt: skip

    r = run(steps)
    return {
        "images_per_s": r["steady_images_per_s"] or r["images_per_s"],
        "e2e_images_per_s": steps * batch / (cache_s + r["seconds"]),
        "cache_seconds": cache_s,
        "run_seconds": r["seconds"],
        "steps": steps,
        "batch": batch,
        "size": size,
    }


def train_flops(batch: int, size: int, device: str) -> float:
    """FLOPs of one full-preset training step (forward + backward), counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from recap.ml.style import losses, nets

    vgg = losses.VGGFeatures("vgg16", losses.STYLE_LAYERS, random_init=True).to(device)
    loss_fn = losses.PerceptualLoss(vgg, torch.rand(1, 3, size, size, device=device))
    model = nets.TransformerNet((32, 64, 128), 5).to(device)
    x = torch.rand(batch, 3, size, size, device=device) * 255
    with FlopCounterMode(display=False) as fc:
        total, _ = loss_fn(model(x) / 255, x / 255)
        total.backward()
    return float(fc.get_total_flops())


# -- 2. stylising ---------------------------------------------------------------------------------
def stylise_fps(
    filters,
    device: str,
    width: int,
    height: int,
    frames: int,
    mode: str = "reduce-overhead",
    dtypes=("fp16", "bf16"),
    phase: bool = False,
) -> dict:
    import torch

    from recap.ml.style import nets

    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = device.startswith("cuda")
    base = nets.TransformerNet(filters, 5).to(device).eval()
    out = {}
    x = torch.rand(1, 3, height, width, device=device) * 255
    with torch.inference_mode():
        with FlopCounter() as fc:
            base(x)
    flops = fc.flops
    variants = {"eager_fp32": (base, torch.float32, False)}
    if device.startswith("cuda"):
        for dtype, name in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
            if name not in dtypes:
                continue
            m = nets.TransformerNet(filters, 5).to(device).eval()
            m.load_state_dict(base.state_dict())
            m = nets.gpu_form(m.to(dtype=dtype, memory_format=torch.channels_last))
            variants[f"compiled_{name}_cl"] = (
                torch.compile(m, mode=mode),
                dtype,
                True,
            )
            if phase:  # the same weights with the 9x9 convolutions in phase form
                mp = nets.TransformerNet(filters, 5).to(device).eval()
                mp.load_state_dict(base.state_dict())
                mp = mp.to(dtype=dtype, memory_format=torch.channels_last)
                mp = nets.gpu_form(mp, phase=True)
                variants[f"compiled_{name}_cl_phase"] = (torch.compile(mp, mode=mode), dtype, True)
    for name, (m, dtype, cl) in variants.items():
        xi = x.to(dtype)
        if cl:
            xi = xi.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(10 if device.startswith("cuda") else 1):
                m(xi)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(frames):
                m(xi)
            sync(device)
            fps = frames / (time.perf_counter() - t0)
            # end to end: uint8 frame from the host, scale, model, clamp, back to uint8 on host
            frame = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8)
            if device.startswith("cuda"):
                frame = frame.pin_memory()

            def one_frame(m=m, dtype=dtype, cl=cl, frame=frame):
                xin = frame.to(device, non_blocking=True).permute(2, 0, 1)[None].to(dtype)
                xin = xin.contiguous(memory_format=torch.channels_last) if cl else xin
                y = m(xin).clamp(0, 255).round().to(torch.uint8)
                return y.permute(0, 2, 3, 1).cpu()

            # warm up this path too: a compiled model may recompile (or capture a new CUDA
            # graph) for an input made another way, which must not be timed as stylising
            for _ in range(3):
                one_frame()
            t0 = time.perf_counter()
            for _ in range(max(frames // 4, 1)):
                one_frame()
            e2e = max(frames // 4, 1) / (time.perf_counter() - t0)
        out[name] = {"fps": fps, "e2e_fps": e2e, "tflops": fps * flops / 1e12}
    out["gflop_per_frame"] = flops / 1e9
    return out


class FlopCounter:
    def __enter__(self):
        from torch.utils.flop_counter import FlopCounterMode

        self.mode = FlopCounterMode(display=False)
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)
        self.flops = float(self.mode.get_total_flops())


# -- 3. CPU: onnxruntime vs torch -----------------------------------------------------------------
def cpu_latency(filters, width: int, height: int, frames: int) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    from recap.ml.style import nets

    torch.manual_seed(0)
    model = nets.TransformerNet(filters, 5).eval()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (torch.from_numpy(x),), str(path), dynamo=False, opset_version=15,
                input_names=["input"], output_names=["output"], do_constant_folding=True,
            )  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        def best(fn):
            fn()
            times = []
            for _ in range(frames):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return min(times), sorted(times)[len(times) // 2]

        ort_min, ort_med = best(lambda: sess.run(None, {"input": x}))
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            t_min, t_med = best(lambda: model(xt))
    return {
        "onnxruntime_ms": ort_med * 1e3,
        "torch_ms": t_med * 1e3,
        "onnxruntime_min_ms": ort_min * 1e3,
        "torch_min_ms": t_min * 1e3,
        "speedup": t_med / ort_med,
        "threads": torch.get_num_threads(),
    }


# -- 4. profiler ----------------------------------------------------------------------------------
CLASSES = (
    ("convolution", ("conv", "cudnn", "xmma", "implicit_gemm", "winograd", "fprop", "dgrad")),
    ("normalisation", ("instance_norm", "batch_norm", "native_batch_norm", "norm")),
    ("gram / matmul", ("bmm", "mm", "gemm", "matmul")),
    ("upsample / pad", ("upsample", "reflection", "pad")),
    ("copy / layout", ("copy", "contiguous", "to_copy", "clone", "cat")),
    ("optimizer", ("adam", "foreach", "multi_tensor")),
)  # fmt: skip


def profile_step(device: str, batch: int, size: int, steps: int = 5) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from recap.ml.style import losses, nets

    on_gpu = device.startswith("cuda")
    vgg = losses.VGGFeatures("vgg16", losses.STYLE_LAYERS, random_init=True)
    loss_fn = losses.PerceptualLoss(vgg, torch.rand(1, 3, size, size)).to(device)
    model = nets.TransformerNet((32, 64, 128), 5).to(device)
    if on_gpu:
        model = model.to(memory_format=torch.channels_last)
        loss_fn = loss_fn.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = (torch.rand(batch, 3, size, size, device=device) * 255).contiguous(
        memory_format=torch.channels_last if on_gpu else torch.contiguous_format
    )

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu):
            total, _ = loss_fn(model(x) / 255, x / 255)
        opt.zero_grad()
        total.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync(device)
    per_class: dict[str, float] = {}
    total = 0.0
    key = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    rows = []
    for ev in prof.key_averages():
        t = float(getattr(ev, key, 0.0) or 0.0)
        if t <= 0:
            continue
        total += t
        name = ev.key.lower()
        cls = next(
            (c for c, keys in CLASSES if any(k in name for k in keys)), "elementwise / other"
        )
        per_class[cls] = per_class.get(cls, 0.0) + t
        rows.append((t, ev.key))
    rows.sort(reverse=True)
    return {
        "per_class_share": {
            k: v / total for k, v in sorted(per_class.items(), key=lambda kv: -kv[1])
        },
        "top_ops": [{"op": n[:80], "share": t / total} for t, n in rows[:10]],
        "ms_per_step": total / steps / 1e3,
    }


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda or cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes and few steps (smoke run)")
    ap.add_argument("--images", type=int, default=0, help="JPEG files made (0: 4096, quick 64)")
    ap.add_argument("--steps", type=int, default=0, help="timed training steps (0: auto)")
    ap.add_argument("--batch", type=int, default=64, help="the full preset's batch")
    ap.add_argument(
        "--compile-mode",
        default="reduce-overhead",
        help="torch.compile mode for stylising (reduce-overhead: CUDA graphs; max-autotune: "
        "also searches conv kernels, minutes per model)",
    )
    ap.add_argument("--stylise-dtypes", default="fp16,bf16", help="compiled variants stylised")
    ap.add_argument(
        "--phase",
        action="store_true",
        help="also train and stylise with the 9x9 convolutions in phase form (nets.phase_conv)",
    )
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-stylise", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-profile", action="store_true")
    args = ap.parse_args()
    import torch

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    on_gpu = device.startswith("cuda")
    quick = args.quick
    n_images = args.images or (64 if quick else 4096)
    results: dict = {"device": torch.cuda.get_device_name() if on_gpu else "cpu",
                     "torch": torch.__version__, "quick": quick}  # fmt: skip
    lines = []

    if not args.skip_train:
        with tempfile.TemporaryDirectory() as tmp:
            files = make_jpegs(Path(tmp), n_images, 72 if quick else 320)
            rsteps = args.steps or (3 if quick else 100)
            rec = recipe_throughput(files, device, rsteps, 1 if quick else 10, 64 if quick else 256)
            batch = 4 if quick else args.batch
            fsteps = args.steps or (3 if quick else 300)
            full = full_throughput(files, device, fsteps, batch, quick)
            phased = None
            if args.phase:
                phased = full_throughput(files, device, fsteps, batch, quick, phase=True)
        results["train"] = {
            "recipe": rec,
            "full": full,
            "ratio": full["images_per_s"] / rec["images_per_s"],
        }
        if phased:
            results["train"]["full_phase"] = phased
        size = full["size"]
        flops = train_flops(1, size, device) if on_gpu else None
        if flops:
            results["train"]["gflop_per_image"] = flops / 1e9
            results["train"]["full_peak_fraction"] = full["images_per_s"] * flops / BF16_PEAK
        lines.append(("train recipe (b4 fp32 eager, JPEG)", f"{rec['images_per_s']:.1f} img/s", ""))
        ratio = results["train"]["ratio"]
        label = f"train full (b{full['batch']} {size}px, steady)"
        lines.append((label, f"{full['images_per_s']:.1f} img/s", f"x{ratio:.2f} vs recipe"))
        if phased:
            r = phased["images_per_s"] / rec["images_per_s"]
            label = f"train full, 9x9 in phase form (b{phased['batch']})"
            lines.append((label, f"{phased['images_per_s']:.1f} img/s", f"x{r:.2f} vs recipe"))
        lines.append(("train full incl. cache + compile", f"{full['e2e_images_per_s']:.1f} img/s",
                      f"cache {full['cache_seconds']:.1f}s"))  # fmt: skip
        if flops:
            frac = results["train"]["full_peak_fraction"]
            lines.append(("train full, bf16 peak", f"{frac:.1%}", f"{flops / 1e9:.0f} GFLOP/img"))

    if not args.skip_stylise:
        w, h = (320, 180) if quick else (1280, 720)
        frames = 5 if quick else 200
        results["stylise"] = {}
        for filters in ((32, 64, 128), (8, 16, 32)):
            r = stylise_fps(filters, device, w, h, frames, args.compile_mode,
                            args.stylise_dtypes.split(","), args.phase)  # fmt: skip
            results["stylise"][",".join(map(str, filters))] = r
            for name, v in r.items():
                if isinstance(v, dict):
                    peak = f", {v['tflops'] * 1e12 / BF16_PEAK:.1%} of bf16 peak" if on_gpu else ""
                    lines.append((f"stylise {w}x{h} {filters} {name}", f"{v['fps']:.1f} fps",
                                  f"e2e {v['e2e_fps']:.1f} fps{peak}"))  # fmt: skip

    if not args.skip_cpu:
        w, h = (480, 270) if quick else (960, 540)
        results["cpu"] = {}
        for filters in ((32, 64, 128), (8, 16, 32)):
            r = cpu_latency(filters, w, h, 3 if quick else 10)
            results["cpu"][",".join(map(str, filters))] = r
            lines.append((f"CPU {w}x{h} {filters} onnxruntime", f"{r['onnxruntime_ms']:.1f} ms",
                          f"torch {r['torch_ms']:.1f} ms, x{r['speedup']:.2f}"))  # fmt: skip

    if not args.skip_profile:
        size = 64 if quick else 256
        batch = 4 if quick else args.batch
        prof = profile_step(device, batch, size, 2 if quick else 5)
        results["profile"] = prof
        lines.append(
            (
                "profile (eager, bf16 on GPU): ms/step",
                f"{prof['ms_per_step']:.1f}",
                f"b{batch} {size}px",
            )
        )
        for cls, share in prof["per_class_share"].items():
            lines.append((f"  {cls}", f"{share:.1%}", ""))

    width = max(len(a) for a, _, _ in lines) if lines else 10
    print(f"{'benchmark'.ljust(width)}  {'result':>16}  note")
    for a, b, c in lines:
        print(f"{a.ljust(width)}  {b:>16}  {c}")
    print(json.dumps({"bench": "style", **results}, default=float))
    out = Path(__file__).resolve().parent.parent / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"style-{'cuda' if on_gpu else 'cpu'}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
