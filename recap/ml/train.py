"""The training machinery every task shares: fastai learners with cheap per-batch dispatch, the
run-context callback, bf16 / channels_last, in-memory batches, one-cycle fitting, seeds, devices.

Task-specific parts (targets, losses, metrics, models) live in ``recap.ml.tasks``; a task with its
own loop still reports through :class:`RecapCallback` (a fastai loop) or ``ctx.log_metrics``.
"""

from __future__ import annotations

import math
import os
import random
import time

import numpy as np
import torch
from fastai.callback.core import Callback, _inner_loop
from fastai.learner import Learner, Recorder
from fastai.losses import BaseLoss, BCEWithLogitsLossFlat, CrossEntropyLossFlat
from fastai.optimizer import OptimWrapper
from fastcore.xtras import modify_exception


def seed_everything(seed: int, device: str = "cpu") -> None:
    """Seed python, numpy and torch; deterministic kernels where torch has them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    # warn_only: a few CUDA kernels have no deterministic version; they warn instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def resolve_device(requested: str | None) -> str:
    """ "cuda" when asked for and present (or "auto" and present), else "cpu"."""
    if requested in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return requested


class RecapCallback(Callback):
    """Report each epoch's losses, metrics and throughput to the run context (the only reporter).

    Runs after fastai's Recorder, so it reads exactly what Recorder computed.
    """

    order = Recorder.order + 1

    def __init__(self, ctx, prefix: str = ""):
        self.ctx, self.prefix = ctx, prefix

    def before_train(self):
        self._t0, self._n = time.perf_counter(), 0

    def after_batch(self):
        if self.learn.training:
            self._n += len(self.learn.xb[0])

    def after_train(self):
        # training phase only (validation excluded), so it compares with a plain loop's figure
        if getattr(self.dls, "device", torch.device("cpu")).type == "cuda":
            torch.cuda.synchronize()
        self._elapsed = time.perf_counter() - self._t0

    def after_epoch(self):
        # get_preds / predict fire fit and epoch events too (with a GatherPredsCallback added)
        if any(type(cb).__name__ == "GatherPredsCallback" for cb in self.learn.cbs):
            return
        names = self.recorder.metric_names[1:-1]  # drop "epoch" and "time"
        values = dict(zip(names, self.recorder.values[-1], strict=False))
        if getattr(self, "_elapsed", 0) > 0:
            values["images_per_s"] = self._n / self._elapsed
        values = {self.prefix + k: float(v) for k, v in values.items() if v is not None}
        self.ctx.log_metrics(values, step=int(self.train_iter), epoch=int(self.epoch))


class ChannelsLast(Callback):
    """Feed the model NHWC batches (with a channels_last model: faster convolutions, bf16)."""

    order = 5

    def before_fit(self):
        self.learn.model.to(memory_format=torch.channels_last)
        # in-memory images are stored NHWC once, so the batches cut from them already are
        # (indexing keeps the layout) and before_batch's conversion costs nothing
        for dl in getattr(self.dls, "loaders", []):
            if isinstance(dl, TensorBatches):
                dl.x = dl.x.contiguous(memory_format=torch.channels_last)

    def before_batch(self):
        self.learn.xb = tuple(
            x.contiguous(memory_format=torch.channels_last) for x in self.learn.xb
        )


class BF16(Callback):
    """bfloat16 autocast on any device (fastai's MixedPrecision only autocasts on CUDA).

    bf16 has fp32's range, so no gradient scaler is needed.
    """

    order = 10

    def __init__(self, device_type: str):
        self.device_type, self._ac = device_type, None

    def before_batch(self):
        self._ac = torch.autocast(self.device_type, dtype=torch.bfloat16)
        self._ac.__enter__()

    def after_pred(self):
        self.learn.pred = self.learn.pred.float()

    def _exit(self):
        if self._ac is not None:
            self._ac.__exit__(None, None, None)
            self._ac = None

    def after_loss(self):
        self._exit()

    def after_batch(self):
        self._exit()


# --- per-batch host overhead -------------------------------------------------------------------
# A small CNN's step on a GPU is bounded by host work (Python, kernel launches), not the GPU, so
# each per-batch cost below showed up one for one in images/s against a plain PyTorch loop.

_CANCELS = ()  # filled lazily: fastai's Cancel*Exception classes are made at import time


class FastLearner(Learner):
    """fastai's Learner with cheaper event dispatch; the same events, order and semantics.

    fastai calls every callback for every event (about 12 a batch) through ``Callback.__call__``,
    whose lookups of missing handlers and of ``training`` go through fastcore's ``GetAttr``
    fallback: about as much host time as a small CNN's whole step. This resolves, once per set
    of callbacks, which ones handle each event, then calls just those, as ``Callback.__call__``
    would (``run``/``run_train``/``run_valid``, exceptions annotated, ``run`` reset after fit).
    """

    def __call__(self, event_name):
        if isinstance(event_name, str):
            self._call_one(event_name)
        else:
            for e in event_name:
                self._call_one(e)

    def _call_one(self, event_name):
        cbs = self.cbs.items
        key = (event_name, *[(id(cb), cb.order) for cb in cbs])
        cache = self.__dict__.setdefault("_handlers", {})
        plan = cache.get(key)
        if plan is None:
            plan = self._plan(event_name, cbs)
            if len(cache) > 512:  # callbacks come and go (get_preds, added_cbs): stay small
                cache.clear()
            cache[key] = plan
        inner = event_name in _inner_loop
        training = getattr(self, "training", True)
        for cb, handler in plan:
            if handler is None:  # a callback with its own __call__
                cb(event_name)
            elif cb.run and (
                not inner or (cb.run_train and training) or (cb.run_valid and not training)
            ):
                try:
                    handler()
                except _CANCELS:
                    raise
                except Exception as e:  # the same exception, annotated as fastai does
                    raise modify_exception(  # noqa: B904
                        e,
                        f"Exception occured in `{cb.__class__.__name__}` when calling event "
                        f"`{event_name}`:\n\t{e.args[0] if e.args else e!r}",
                        replace=True,
                    )
        if event_name == "after_fit":
            for cb, handler in plan:
                if handler is not None:
                    cb.run = True

    def _set_device(self, b):
        # fastai moves every batch (``to_device`` over the tuple, ``default_device()`` evaluated
        # each time); batches already on the model's device, as TensorBatches yields, stay as is
        dev = next(self.model.parameters()).device
        if all(isinstance(t, torch.Tensor) and t.device == dev for t in b):
            return b
        return super()._set_device(b)

    def _plan(self, event_name, cbs):
        global _CANCELS
        if not _CANCELS:
            from fastai.callback import core

            _CANCELS = tuple(
                getattr(core, n)
                for n in dir(core)
                if n.startswith("Cancel") and n.endswith("Exception")
            )
        from fastai.callback.core import event

        if not hasattr(event, event_name):
            raise Exception(f"missing {event_name}")
        plan = []
        for cb in sorted(cbs, key=lambda c: c.order):
            if type(cb).__call__ is not Callback.__call__:
                plan.append((cb, None))
                continue
            handler = getattr(cb, event_name, None)
            # a callback without the handler still has its ``run`` reset after fit
            plan.append((cb, handler if callable(handler) else _noop))
        return plan


def _noop():
    return None


class _PlainTensors:
    """fastai's flattened losses, on plain tensors: fastai wraps inputs in ``TensorBase``, so the
    loss and its backward pay a Python ``__torch_function__`` dispatch per op. Same numbers."""

    def _contiguous(self, x):
        return x.transpose(self.axis, -1).contiguous() if isinstance(x, torch.Tensor) else x


class CrossEntropyFlat(_PlainTensors, CrossEntropyLossFlat):
    pass


class BCEWithLogitsFlat(_PlainTensors, BCEWithLogitsLossFlat):
    pass


class MSEFlat(_PlainTensors, BaseLoss):
    """fastai's ``MSELossFlat`` (a function returning a BaseLoss), as a class."""

    def __init__(self, *args, axis: int = -1, floatify: bool = True, **kwargs):
        super().__init__(
            torch.nn.MSELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs
        )


class TorchOptim(OptimWrapper):
    """fastai's wrapper of a torch optimiser, with cheap ``hypers``/``set_hyper``: the schedule
    sets two and Recorder/ParamScheduler read them every batch; fastai's versions rebuild them
    through fastcore's generic list helpers."""

    @property
    def hypers(self):
        out = []
        for pg in self.opt.param_groups:
            h = {}
            for k, v in pg.items():
                if k == "params":
                    continue
                if isinstance(v, (tuple, list)):
                    for i, v_ in enumerate(v):
                        h[self.fwd_map.get(f"{k}__{i}", f"{k}__{i}")] = v_
                else:
                    h[self.fwd_map.get(k, k)] = v
            out.append(h)
        return out

    def set_hyper(self, k, v):
        if not isinstance(v, (int, float)):
            return super().set_hyper(k, v)
        name = self.bwd_map[k]
        for pg in self.opt.param_groups:
            if "__" in name:
                base, idx = name.split("__")
                pg[base] = tuple(v if i == int(idx) else x for i, x in enumerate(pg[base]))
            else:
                pg[name] = v


def one_cycle(pct: float, start: float, middle: float, end: float):
    """fastai's ``combined_cos`` (cosine start -> middle over ``pct``, middle -> end after), in
    plain Python: fastai's evaluates tensor comparisons twice a batch. The phase position is
    rounded to float32 as fastai's is, so the values are the same."""
    p = float(np.float32(pct))

    def sched(pos):
        if pos >= p and p < 1:
            a, b, lo, hi = middle, end, p, 1.0
        else:
            a, b, lo, hi = start, middle, 0.0, p
        x = float((np.float32(pos) - np.float32(lo)) / (np.float32(hi) - np.float32(lo)))
        return a + (1 + math.cos(math.pi * (1 - x))) * (b - a) / 2

    return sched


def channel_stats(files, size) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images scaled to [0, 1] (explicit normalisation:
    fastai only adds ImageNet statistics for pretrained models). ``size``: int or (h, w)."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    acc = np.zeros(3)
    acc2 = np.zeros(3)
    n = 0
    for f in files:
        img = Image.open(f).convert("RGB").resize((w, h), Image.BILINEAR)
        a = np.asarray(img, dtype=np.float64) / 255.0
        acc += a.sum((0, 1))
        acc2 += (a**2).sum((0, 1))
        n += a.shape[0] * a.shape[1]
    mean = acc / n
    std = np.sqrt(np.maximum(acc2 / n - mean**2, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]


def decode_images(files, size) -> torch.Tensor:
    """Every image decoded once to (N, 3, h, w) uint8 (PIL bilinear squish, as ``Resize``)."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    out = torch.empty(len(files), 3, h, w, dtype=torch.uint8)
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        out[i] = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)
    return out


class TensorBatches:
    """Batches cut from images decoded once and kept on the device, normalised there.

    fastai's per-item pipeline costs about a millisecond an image, more than a small CNN's
    training step, so the core trains from this; ``learn.predict`` and parity still go through
    the DataBlock pipeline (files -> PIL -> Resize -> Normalize), the path a port must match.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        mean,
        std,
        bs: int,
        shuffle: bool,
        seed: int = 0,
    ):
        self.x, self.y, self.bs, self.shuffle = x, y, bs, shuffle
        self.drop_last = shuffle  # as fastai: the training loader drops a ragged last batch
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.gen = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")
        self.n = len(x)

    def to(self, device):
        self.device = torch.device(device)
        self.x, self.y = self.x.to(self.device), self.y.to(self.device)
        self.mean, self.std = self.mean.to(self.device), self.std.to(self.device)
        return self

    def __len__(self):
        return self.n // self.bs if self.drop_last else -(-self.n // self.bs)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.gen) if self.shuffle else torch.arange(self.n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.bs : (i + 1) * self.bs]
            xb = (self.x[idx].float() / 255 - self.mean) / self.std
            yield xb, self.y[idx]


def tensor_dls(splits: dict, mean, std, batch_size: int, device: str, seed: int = 0):
    """Train/valid DataLoaders over in-memory tensors (see :class:`TensorBatches`).

    ``splits``: {"train": (uint8 images, targets), "valid": (...)}.
    """
    from fastai.data.core import DataLoaders

    loaders = [
        TensorBatches(*splits[split], mean, std, batch_size, shuffle, seed)
        for split, shuffle in (("train", True), ("valid", False))
    ]
    return DataLoaders(*loaders, device=torch.device(device))


def make_learner(
    dls,
    model,
    loss_func,
    metrics=(),
    ctx=None,
    lr: float = 3e-3,
    precision: str = "fp32",
    channels_last: bool = False,
    cbs=(),
):
    """A fastai Learner over any model and loss, with recap's callbacks and cheap dispatch."""
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)

    cbs = list(cbs)
    if ctx is not None:
        cbs.append(RecapCallback(ctx))
    if channels_last:
        cbs.append(ChannelsLast())
    if precision == "bf16":
        cbs.append(BF16(torch.device(getattr(dls, "device", None) or "cpu").type))
    learn = FastLearner(
        dls, model, loss_func=loss_func, opt_func=adamw, lr=lr, metrics=list(metrics), cbs=cbs
    )
    learn.recorder.smooth_loss = _device_smooth_loss()
    return learn


def _device_smooth_loss(beta: float = 0.98):
    """fastai's smoothed training loss, kept on the loss's device.

    The stock one copies every batch's loss to the CPU, which makes the CPU wait for the GPU at
    each step; this one is read once an epoch, when Recorder logs it.
    """
    from fastai.learner import AvgSmoothLoss

    class DeviceSmoothLoss(AvgSmoothLoss):
        def reset(self):
            # a plain tensor (fastai's is a TensorBase, which makes every later op dispatch in
            # Python)
            self.count, self.val, self._value = 0, torch.zeros(()), None

        def accumulate(self, learn):
            self.count += 1
            loss = learn.loss.detach()
            loss = (loss if loss.ndim == 0 else loss.mean()).float()  # no launch when scalar
            self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)
            self._value = None

        @property
        def value(self):
            # Recorder reads it twice a batch: one division launched, not two
            if getattr(self, "_value", None) is None:
                self._value = self.val / (1 - self.beta**self.count)
            return self._value

    return DeviceSmoothLoss(beta)


def adamw(params, lr, **kwargs):
    """torch's AdamW (fused per-tensor kernels) behind fastai's optimiser interface; fastai's own
    Adam steps each parameter in Python, which costs more than a small CNN's whole step."""
    return TorchOptim(
        params, torch.optim.AdamW, lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01
    )


def training_only_cbs(learn):
    """Drop the callbacks that change numerics or layout (before predicting and exporting)."""
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, (BF16, ChannelsLast))])
    return learn


def named(fn, name):
    fn.__name__ = name
    return fn


def fit(
    learn,
    epochs: int,
    lr: float,
    pct_start: float = 0.25,
    div: float = 25.0,
    div_final: float = 1e5,
) -> None:
    """One-cycle training without progress bars (the run context is the report).

    What ``learn.fit_one_cycle(epochs, lr)`` does, with the schedules in plain Python
    (:func:`one_cycle`).
    """
    from fastai.callback.schedule import ParamScheduler
    from fastcore.basics import noop

    learn.logger = noop  # Recorder would print a table line per epoch
    learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
    if learn.opt is None:
        learn.create_opt()
    learn.opt.set_hyper("lr", lr)
    lr_max = learn.opt.hypers[-1]["lr"]
    scheds = {
        "lr": one_cycle(pct_start, lr_max / div, lr_max, lr_max / div_final),
        "mom": one_cycle(pct_start, *learn.moms),
    }
    learn.fit(epochs, cbs=ParamScheduler(scheds))


def final_metrics(learn) -> dict[str, float]:
    names = learn.recorder.metric_names[1:-1]
    return {n: float(v) for n, v in zip(names, learn.recorder.values[-1], strict=False)}
