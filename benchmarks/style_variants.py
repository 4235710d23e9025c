"""Which settings move the style GPU figures: one variant per item, each timed on its own.

    python3 benchmarks/style_variants.py BUDGET_S ITEM[,ITEM...] 2>/dev/null

Items: ``s:big|small:<compile mode>[:a][:q][:p]`` stylises 1280x720 fp16 channels_last with
filters (32,64,128) or (8,16,32), ``a`` the GPU form (nets.gpu_form), ``q`` with its 9x9
convolutions in phase form (nets.phase_conv), ``p`` a kernel profile;
``t:<batch>:<compile mode|default>:<cudnn benchmark 0|1>[:a][:q][:p]`` trains the full preset's
network on random content in the GPU's memory. Items are skipped once BUDGET_S is nearly spent.
bench_style.py is the side-by-side benchmark; this is for finding what to put in it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

T0 = time.perf_counter()
BUDGET = float(sys.argv[1]) if len(sys.argv) > 1 else 520
PLAN = sys.argv[2].split(",") if len(sys.argv) > 2 else []


def left():
    return BUDGET - (time.perf_counter() - T0)


def say(*a):
    print(f"[{time.perf_counter() - T0:6.1f}s]", *a, flush=True)


def stylise(
    filters, mode, frames=300, w=1280, h=720, dtype=torch.float16, profile=False, align=0,
    phase=False,
):  # fmt: skip
    from recap.ml.style import nets

    torch._dynamo.reset()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    m = (
        nets.TransformerNet(filters, 5)
        .cuda()
        .eval()
        .to(dtype=dtype, memory_format=torch.channels_last)
    )
    nets.gpu_form(m, align, phase=phase)
    x = (
        (torch.rand(1, 3, h, w, device="cuda") * 255)
        .to(dtype)
        .contiguous(memory_format=torch.channels_last)
    )
    t = time.perf_counter()
    cm = torch.compile(m, mode=mode) if mode != "eager" else m
    with torch.inference_mode():
        for _ in range(5):
            cm(x)
        torch.cuda.synchronize()
        ct = time.perf_counter() - t
        best = 0
        for _ in range(3):
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(frames):
                cm(x)
            torch.cuda.synchronize()
            best = max(best, frames / (time.perf_counter() - t))
        if profile:
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as prof

            with prof(activities=[ProfilerActivity.CUDA]) as p:
                for _ in range(20):
                    cm(x)
                torch.cuda.synchronize()
            rows = sorted(
                ((e.self_device_time_total, e.key) for e in p.key_averages()), reverse=True
            )
            tot = sum(r[0] for r in rows)
            for tt, k in rows[:14]:
                say(f"   {tt / 20:8.1f} us/frame {tt / tot:5.1%} {k[:90]}")
    say(
        f"stylise {filters} {mode} align={align} phase={phase} {dtype}: {best:.1f} fps "
        f"(compile+warm {ct:.1f}s)"
    )
    return best


def train(
    batch, mode=None, steps=40, bench=True, precision="bf16", align=0, profile=False,
    phase=False,
):  # fmt: skip
    from recap.ml.style import losses, nets
    from recap.ml.style import train as tr

    torch._dynamo.reset()
    torch.manual_seed(0)
    content = np.random.default_rng(0).integers(0, 256, (2048, 256, 256, 3), dtype=np.uint8)
    layers = losses.STYLE_LAYERS
    vgg = losses.VGGFeatures("vgg16", layers, random_init=True)
    loss_fn = losses.PerceptualLoss(vgg, torch.rand(1, 3, 256, 256), layers)
    model = nets.TransformerNet((32, 64, 128), 5)
    t = time.perf_counter()
    r = tr.train_transformer(
        model,
        loss_fn,
        content,
        steps=steps,
        batch_size=batch,
        lr=1e-3,
        device="cuda",
        precision=precision,
        channels_last=True,
        compile=True,
        compile_mode=mode,
        cudnn_benchmark=bench,
        log_every=steps,
        align=align,
        phase=phase,
    )
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof

        nets.gpu_form(model, align, phase=phase)
        nets.gpu_form(loss_fn, align)
        model.train()
        x = (
            torch.rand(batch, 3, 256, 256, device="cuda")
            .mul(255)
            .contiguous(memory_format=torch.channels_last)
        )

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                tot = loss_fn(model(x) / 255, x / 255)[0]
            tot.backward()

        cstep = torch.compile(step)
        for _ in range(3):
            cstep()
        torch.cuda.synchronize()
        with prof(activities=[ProfilerActivity.CUDA]) as p:
            for _ in range(3):
                cstep()
            torch.cuda.synchronize()
        rows = sorted(((e.self_device_time_total, e.key) for e in p.key_averages()), reverse=True)
        tot = sum(r[0] for r in rows)
        say(f"   train step {tot / 3 / 1000:.1f} ms (compiled fwd+bwd, no optimiser)")
        for tt, k in rows[:16]:
            say(f"   {tt / 3:8.1f} us/step {tt / tot:5.1%} {k[:100]}")
    say(
        f"train b{batch} mode={mode} bench={bench} align={align} phase={phase} {precision}: "
        f"steady {r['steady_images_per_s']:.1f} img/s "
        f"(whole {time.perf_counter() - t:.1f}s)"
    )
    return r["steady_images_per_s"]


if __name__ == "__main__":
    say(torch.__version__, torch.cuda.get_device_name())
    res = {}
    for item in PLAN:
        if left() < 60:
            say("budget: skipping", item)
            continue
        kind, *args = item.split(":")
        try:
            if kind == "s":  # s:<filters>:<mode>[:p]
                f = (32, 64, 128) if args[0] == "big" else (8, 16, 32)
                res[item] = stylise(
                    f, args[1], profile="p" in args[2:], align=8 if "a" in args[2:] else 0,
                    phase="q" in args[2:],
                )  # fmt: skip
            elif kind == "t":  # t:<batch>:<mode|default>:<bench 0/1>
                mode = None if args[1] == "default" else args[1]
                res[item] = train(
                    int(args[0]),
                    mode,
                    bench=args[2] == "1",
                    align=8 if "a" in args[3:] else 0,
                    profile="p" in args[3:],
                    phase="q" in args[3:],
                )
        except Exception as exc:  # noqa: BLE001
            say(item, "FAILED", type(exc).__name__, str(exc)[:300])
    print(json.dumps(res))
