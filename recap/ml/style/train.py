"""Training loops of the two style models.

Style transfer trains one image-to-image network against a frozen loss network, with one style
target and no labels: fastai's Learner adds nothing but per-batch overhead there, so this is a
plain loop (Adam, optional bf16 autocast, channels_last, torch.compile) that reports through the
run context like the core's fastai callback does: one metric line per ``log_every`` steps, losses
accumulated on the device so the GPU is never synchronised in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from queue import Queue

import numpy as np
import torch
from torch.nn import functional as F

from recap.ml.style import losses, nets

ON_DEVICE_BYTES = 8 << 30  # a content cache up to this size lives on the GPU whole


def batches(
    content: np.ndarray, batch_size: int, steps: int, seed: int, device: str
) -> Iterator[torch.Tensor]:
    """``steps`` random batches (uint8 NHWC on ``device``) from the content cache.

    On a GPU a cache that fits (``ON_DEVICE_BYTES``: 20,000 images of 256 px are 3.9 GB) is
    copied over once and batches are cut there by a permutation: no host work per step. Else a
    background thread gathers each batch into pinned memory while the device works.
    """
    rng = np.random.default_rng(seed)
    if device.startswith("cuda") and content.nbytes <= ON_DEVICE_BYTES:
        whole = torch.from_numpy(np.ascontiguousarray(content)).to(device)
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        order, pos = torch.randperm(len(whole), device=device, generator=gen), 0
        for _ in range(steps):
            if pos + batch_size > len(whole):
                order, pos = torch.randperm(len(whole), device=device, generator=gen), 0
            yield whole[order[pos : pos + batch_size]]
            pos += batch_size
        return
    n = len(content)
    q: Queue = Queue(maxsize=4)
    pin = device.startswith("cuda")

    def produce():
        order = rng.permutation(n)
        pos = 0
        for _ in range(steps):
            if pos + batch_size > n:
                order, pos = rng.permutation(n), 0
            idx = np.sort(order[pos : pos + batch_size])
            pos += batch_size
            t = torch.from_numpy(np.ascontiguousarray(content[idx]))
            q.put(t.pin_memory() if pin else t)
        q.put(None)

    th = threading.Thread(target=produce, daemon=True)
    th.start()
    while (t := q.get()) is not None:
        yield t.to(device, non_blocking=True)


def to_float_nchw(batch_u8: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = batch_u8.permute(0, 3, 1, 2).float()
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def _probe(model, probe, probe_every: int, step: int, steps: int, ctx, curves) -> None:
    """Every ``probe_every`` steps (and at the last), ``probe(model)`` in eval mode without
    gradients; its values are logged at this step and kept in ``curves["probe"]``."""
    if probe is None or not probe_every or (step % probe_every and step != steps):
        return
    was = model.training
    model.eval()
    with torch.no_grad():
        values = probe(model)
    model.train(was)
    if ctx is not None and values:
        ctx.log_metrics({k: v for k, v in values.items() if v is not None}, step=step)
    curves.setdefault("probe", []).append({"step": step, **values})


def _accumulate(ctx, parts, sums, count, step, steps, log_every, curves, t0=None):
    """Add one step's losses (kept on the device: no sync per step); every ``log_every`` steps
    report their means, append them to ``curves`` and, from ``t0`` (the loop's start), write a
    progress line with the time left. Returns the running (sums, count)."""
    for k, v in parts.items():
        v = v.detach().float()
        sums[k] = sums[k] + v if k in sums else v
    count += 1
    if step % log_every == 0 or step == steps:
        values = _report(ctx, sums, count, step)
        for k, v in values.items():
            curves.setdefault(k, []).append(v)
        curves.setdefault("step", []).append(step)
        if ctx is not None and t0 is not None and hasattr(ctx, "note"):
            ctx.note(progress_line(step, steps, values, time.perf_counter() - t0), step=step)
        return {}, 0
    return sums, count


def progress_line(step: int, steps: int, values: dict, elapsed: float) -> str:
    """``step 50/2500  content_loss=2.1e+03  style_loss=664  total_loss=2.8e+03  ETA 0:03:12``:
    the run's log and ``recap exp run``'s spinner show it."""
    from recap.timeutil import clock

    shown = "  ".join(f"{k}={v:.3g}" for k, v in values.items())
    return f"step {step}/{steps}  {shown}  ETA {clock(elapsed / max(step, 1) * (steps - step))}"


def _report(ctx, sums: dict, count: int, step: int, epoch: int | None = None) -> dict:
    values = {k: float(v) / count for k, v in sums.items()}
    if ctx is not None:
        ctx.log_metrics(values, step=step, epoch=epoch)
    return values


def train_transformer(
    model: nets.TransformerNet,
    loss_fn: losses.PerceptualLoss,
    content: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    device: str,
    precision: str = "fp32",
    channels_last: bool = False,
    compile: bool = False,
    compile_mode: str | None = None,
    cudnn_benchmark: bool = False,
    align: int = 0,
    phase: bool = False,
    log_every: int = 10,
    seed: int = 0,
    ctx=None,
    probe=None,
    probe_every: int = 0,
) -> dict:
    """Train ``model`` on the content cache (N, S, S, 3 uint8) for ``steps`` steps.

    On CUDA, ``cudnn_benchmark`` lets cuDNN time its algorithms for each shape once (faster, not
    bitwise repeatable) and Adam runs fused (one kernel for all parameters). ``align`` trains in
    the networks' GPU form (:func:`nets.gpu_form`, channels aligned to that multiple; same
    numbers; ``phase``: its 9x9 convolutions in phase form) and switches it off again at the
    end, so exports see the plain form.

    Returns ``{"curves": {key: [values]}, "steps", "images", "seconds", "images_per_s"}``.
    """
    model.to(device).train()
    loss_fn.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        loss_fn.to(memory_format=torch.channels_last)
    if align:
        nets.gpu_form(model, align, phase=phase)
        nets.gpu_form(loss_fn, align)
    on_cuda = device.startswith("cuda")
    if on_cuda:
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=on_cuda or None)
    autocast = precision in ("bf16", "fp16") and on_cuda
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16

    def step_fn(x255):
        with torch.autocast("cuda", dtype=dtype, enabled=autocast):
            y = model(x255)
            total, parts = loss_fn(y / 255.0, x255 / 255.0)
        return total, parts

    fn = torch.compile(step_fn, mode=compile_mode) if compile else step_fn
    curves: dict[str, list[float]] = {}
    sums: dict[str, torch.Tensor] = {}
    count = 0
    t0 = time.perf_counter()
    # steady-state rate: timed from the end of step ``warm`` (compilation and cuDNN's algorithm
    # search happen in the first steps); one synchronisation there, none per step
    warm, t_warm = min(5, steps - 1), None
    for step, batch in enumerate(batches(content, batch_size, steps, seed, device), 1):
        if step == warm + 1:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t_warm = time.perf_counter()
        x = to_float_nchw(batch, channels_last)
        opt.zero_grad(set_to_none=True)
        total, parts = fn(x)
        total.backward()
        opt.step()
        parts = {**parts, "total_loss": total}
        sums, count = _accumulate(ctx, parts, sums, count, step, steps, log_every, curves, t0)
        _probe(model, probe, probe_every, step, steps, ctx, curves)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    end = time.perf_counter()
    seconds = end - t0
    model.eval()
    if align:
        nets.gpu_form(model, 0)
        nets.gpu_form(loss_fn, 0)
    steady = (steps - warm) * batch_size / max(end - t_warm, 1e-9) if t_warm else None
    return {
        "curves": curves,
        "steps": steps,
        "images": steps * batch_size,
        "seconds": seconds,
        "images_per_s": steps * batch_size / max(seconds, 1e-9),
        "steady_images_per_s": steady,
    }


def random_patches(pairs, masks, patch: int, batch_size: int, rng: np.random.Generator):
    """A batch of aligned random patches (input, target, mask) from keyframe pairs (uint8)."""
    xs, ys, ms = [], [], []
    for _ in range(batch_size):
        k = int(rng.integers(len(pairs)))
        src, dst = pairs[k]
        h, w = src.shape[:2]
        top, left = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        sl = (slice(top, top + patch), slice(left, left + patch))
        xs.append(src[sl])
        ys.append(dst[sl])
        ms.append(masks[k][sl] if masks is not None else np.ones((patch, patch), np.uint8))
    return np.stack(xs), np.stack(ys), np.stack(ms)


def train_patch(
    model: nets.PatchNet,
    vgg: losses.VGGFeatures | None,
    pairs,
    masks,
    *,
    steps: int,
    batch_size: int,
    patch: int,
    lr: float,
    device: str,
    l1_weight: float = 1.0,
    perceptual_weight: float = 1.0,
    perceptual_layers=("relu2_2", "relu3_3"),
    log_every: int = 10,
    seed: int = 0,
    ctx=None,
    probe=None,
    probe_every: int = 0,
) -> dict:
    """The few-shot patch model: random patches of keyframe pairs (original -> stylised), L1 +
    perceptual (VGG feature MSE) loss, optionally masked (mask 0: pixel ignored)."""
    rng = np.random.default_rng(seed)
    model.to(device).train()
    if vgg is not None:
        vgg.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    curves: dict[str, list[float]] = {}
    sums: dict[str, torch.Tensor] = {}
    count = 0
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        xs, ys, ms = random_patches(pairs, masks, patch, batch_size, rng)
        x = torch.from_numpy(xs).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
        t = torch.from_numpy(ys).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
        m = torch.from_numpy(ms).to(device).float()[:, None]
        y = model(x)
        l1 = l1_weight * ((y - t).abs() * m).sum() / (m.sum() * 3).clamp_min(1)
        perc = y.new_zeros(())
        if vgg is not None and perceptual_weight:
            fy = vgg(((y + 1) / 2) * m + ((t + 1) / 2) * (1 - m))
            with torch.no_grad():
                ft = vgg((t + 1) / 2)
            perc = perceptual_weight * sum(F.mse_loss(fy[n], ft[n]) for n in perceptual_layers)
        total = l1 + perc
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        parts = {"l1_loss": l1, "perceptual_loss": perc, "total_loss": total}
        sums, count = _accumulate(ctx, parts, sums, count, step, steps, log_every, curves, t0)
        _probe(model, probe, probe_every, step, steps, ctx, curves)
    seconds = time.perf_counter() - t0
    model.eval()
    return {
        "curves": curves,
        "steps": steps,
        "seconds": seconds,
        "patches_per_s": steps * batch_size / max(seconds, 1e-9),
    }
