"""Data-parallel training for the core: one process per device, as torchrun started them.

The pipeline calls :func:`setup` first: in a run launched with ``--processes N`` / ``--gpus N``
it joins the process group (NCCL on GPUs, gloo on the CPU), pins the rank's GPU and records
how the run ran; in a plain run it returns a one-process :class:`Dist` and nothing changes.

- fastai tasks: :func:`recap.ml.train.make_learner` adds :class:`DistributedTrainer` (fastai's
  own ``fastai.distributed.DistributedTrainer``: Accelerate wraps the model in
  ``DistributedDataParallel``, with ``SyncBatchNorm`` on GPUs). Each rank trains on its shard of
  every batch of ``batch_size`` (the per-device batch), validates on its shard of the validation
  set, and the metrics are reduced across ranks before fastai's Recorder reads them.
- tasks with their own loop: :func:`wrap_model`, :func:`shard`, :func:`sync_buffers` (before
  evaluating), :func:`reduce_mean`, :func:`unwrap` are the same steps by hand.

Effective batch = ``batch_size x world_size``; the learning rate follows the run's rule
(``--lr-rule``: none, linear, sqrt; :func:`recap.lab.launch.lr_for`), recorded with the run.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as tdist


@dataclass
class Dist:
    """This process's place in the run: rank, world size, backend, and what was recorded."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None
    lr_rule: str = "none"
    record: dict[str, Any] = field(default_factory=dict)
    #: whether a model was wrapped for data-parallel training (the trainer or wrap_model)
    wrapped: bool = False

    @property
    def active(self) -> bool:
        """Whether this process trains in a process group (several processes, or one wrapped
        on purpose: ``setup(..., wrap_single=True)``)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def train_params(self, params: dict) -> dict:
        """The params training uses: ``lr`` after the run's LR rule (``batch_size`` per device)."""
        if not self.active or not params.get("lr"):
            return params
        from recap.lab.launch import lr_for

        return {**params, "lr": lr_for(float(params["lr"]), self.world_size, self.lr_rule)}

    def finish(self) -> None:
        """End the data-parallel part: wait for every rank, leave the group, and run the rest
        (export, parity) as one process. fastai reads ``WORLD_SIZE``/``RANK`` from the
        environment on every prediction (and would gather across ranks), so they are reset."""
        global _STATE
        if not self.active:
            return
        _STATE = Dist(record=self.record)  # one process again for whatever follows
        if tdist.is_initialized():
            tdist.barrier()
            tdist.destroy_process_group()
        os.environ["WORLD_SIZE"], os.environ["RANK"], os.environ["LOCAL_RANK"] = "1", "0", "0"


_WRAPPED = False  # whether any model of this process was wrapped (survives finish())


def was_wrapped() -> bool:
    """Whether this process trained a model data-parallel (the trainer or :func:`wrap_model`)."""
    return _WRAPPED


def _mark_wrapped() -> None:
    global _WRAPPED
    _WRAPPED = True
    current().wrapped = True


def current() -> Dist:
    """The run's :class:`Dist` (one process when :func:`setup` was not called)."""
    return _STATE


_STATE = Dist()


def setup(ctx, device: str, params: dict | None = None, wrap_single: bool = False) -> Dist:
    """Join the run's process group (when launched over several processes) and record it.

    ``ctx`` is the run context (its ``rank``/``world_size`` come from torchrun; a context
    without them is one process). ``params`` (the resolved params) give the per-device batch
    and learning rate for the record. ``wrap_single``: join a group of one and train through
    the wrapper anyway (the benchmark of the wrapper's own cost); a run of one process does not.
    """
    global _STATE
    world = int(getattr(ctx, "world_size", 1) or 1)
    if world <= 1 and not (wrap_single and "RANK" in os.environ):
        _STATE = Dist()
        return _STATE
    rank, local_rank = int(ctx.rank), int(ctx.local_rank)
    launch = dict(getattr(ctx, "dist", {}) or {})
    backend = launch.get("backend") or ("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(local_rank)  # "cuda" below means this rank's GPU
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend, init_method="env://")
    here = _device_name(device, local_rank)
    devices: list = [None] * world
    tdist.all_gather_object(devices, here)
    lr_rule = str(launch.get("lr_rule") or "none")
    _STATE = Dist(rank, local_rank, world, backend, lr_rule)
    p = params or {}
    bs = int(p.get("batch_size") or 0)
    lr = float(p.get("lr") or 0.0)
    _STATE.record = {
        "world_size": world,
        "nodes": int(launch.get("nodes", 1)),
        "processes_per_node": int(launch.get("processes_per_node", world)),
        "backend": backend,
        "launcher": launch.get("launcher", "torchrun"),
        "devices": devices,
        "per_device_batch": bs,
        "effective_batch": bs * world,
        "batch_rule": "effective batch = per-device batch (batch_size) x world size",
        "lr_rule": lr_rule,
        "lr": lr,
        "effective_lr": _STATE.train_params({"lr": lr})["lr"] if lr else lr,
        "sync_batchnorm": device == "cuda" and world > 1,
        "wrapper": "fastai DistributedTrainer, "
        + ("Accelerate" if _has_accelerate() else "torch")
        + " DistributedDataParallel",
        "validation": "each rank a shard; loss and metrics summed over ranks, weighted by count",
    }
    if _STATE.is_main:
        ctx.record_distributed(_STATE.record)
    return _STATE


@functools.cache
def _has_accelerate() -> bool:
    """Whether Accelerate imports (fastai's trainer needs it; a bare GPU box may lack it)."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


def _device_name(device: str, local_rank: int) -> str:
    import socket

    if device == "cuda":
        return f"{socket.gethostname()} cuda:{local_rank} {torch.cuda.get_device_name(local_rank)}"
    return f"{socket.gethostname()} cpu"


# --- helpers every loop can use ----------------------------------------------------------------


def shard(n: int, even: bool = True) -> range:
    """This rank's contiguous share of ``n`` items: ``n // world`` each when ``even`` (training:
    every rank must take as many steps, or DDP waits forever), else the rest goes to the last
    ranks' shares too (evaluation, reduced with :func:`reduce_mean`)."""
    d = current()
    if not d.active:
        return range(n)
    if even:
        per = n // d.world_size
        return range(d.rank * per, (d.rank + 1) * per)
    bounds = [n * r // d.world_size for r in range(d.world_size + 1)]
    return range(bounds[d.rank], bounds[d.rank + 1])


# Gradients live in DDP's buckets (no copy per step); batch-norm buffers are not broadcast at
# every forward: sync_buffers gives every rank rank 0's statistics before each validation, and
# rank 0 alone exports, so the result is the same with one collective fewer per step.
DDP_OPTIONS = {"gradient_as_bucket_view": True, "broadcast_buffers": False}


def wrap_model(model):
    """``DistributedDataParallel`` around ``model`` (on this rank's GPU, or the CPU) when the run
    spans several processes; the model itself otherwise."""
    d = current()
    if not d.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    _mark_wrapped()
    p = next(model.parameters())
    if p.device.type == "cuda":
        types = batchnorm_types(model)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model._recap_bn_types = types
        return DDP(model, device_ids=[p.device.index], **DDP_OPTIONS)
    return DDP(model, **DDP_OPTIONS)


def unwrap(model):
    """The plain module of a (possibly) wrapped model, with ``SyncBatchNorm`` turned back into
    ``BatchNorm*d`` (what gets exported)."""
    model = getattr(model, "module", model)
    types = getattr(model, "_recap_bn_types", None)
    return revert_sync_batchnorm(model, types) if types else model


def sync_buffers(model) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank.

    DDP broadcasts them at the start of each training step, but each rank then updates its own
    from its shard; evaluating after that, every rank must use the model rank 0 saves, or the
    reduced metrics would not be those of the saved weights.
    """
    if not current().active:
        return
    for b in model.buffers():
        if current().backend == "nccl" and b.device.type != "cuda":
            continue
        tdist.broadcast(b.data, src=0)


def reduce_mean(values: dict[str, float], count: float) -> dict[str, float]:
    """Mean of each value over the ranks, weighted by ``count`` (this rank's number of items):
    equal to the mean one process would compute over all the items."""
    d = current()
    if not d.active:
        return {k: float(v) for k, v in values.items()}
    keys = sorted(values)
    t = torch.tensor([float(values[k]) * count for k in keys] + [float(count)], dtype=torch.float64)
    t = _all_reduce(t)
    total = float(t[-1])
    return {k: float(t[i]) / total if total else float("nan") for i, k in enumerate(keys)}


def reduce_throughput(n: int, elapsed: float) -> tuple[int, float]:
    """Images over all ranks, and the slowest rank's time (images/s of the whole run)."""
    if not current().active:
        return n, elapsed
    t = _all_reduce(torch.tensor([float(n)], dtype=torch.float64))
    e = _all_reduce(torch.tensor([float(elapsed)], dtype=torch.float64), tdist.ReduceOp.MAX)
    return int(t[0]), float(e[0])


def _all_reduce(t: torch.Tensor, op=None) -> torch.Tensor:
    """All-reduce on the backend's device (NCCL only reduces GPU tensors); returns a CPU tensor."""
    op = op or tdist.ReduceOp.SUM
    dev = torch.device("cuda", torch.cuda.current_device()) if current().backend == "nccl" else None
    x = t.to(dev) if dev is not None else t.clone()
    tdist.all_reduce(x, op=op)
    return x.cpu()


def batchnorm_types(model) -> dict[str, type]:
    """Each batch-norm layer's class by name (``SyncBatchNorm`` forgets whether it was 1d/2d)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return {n: type(m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)}


def revert_sync_batchnorm(module, types: dict[str, type], prefix: str = ""):
    """``SyncBatchNorm`` layers back to the ``BatchNorm1d/2d/3d`` ``types`` names, sharing the
    same parameters and running statistics (exporters know BatchNorm; in eval mode both compute
    the same)."""
    if isinstance(module, torch.nn.SyncBatchNorm):
        cls = types.get(prefix, torch.nn.BatchNorm2d)
        out = cls(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        if module.affine:
            with torch.no_grad():
                out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        new = revert_sync_batchnorm(child, types, f"{prefix}.{name}" if prefix else name)
        if new is not child:
            setattr(module, name, new)
    return module


# --- fastai -----------------------------------------------------------------------------------


def trainer_cbs(device: str) -> list:
    """The callbacks :func:`recap.ml.train.make_learner` adds in a multi-process run."""
    if not current().active:
        return []
    trainer = _trainer_class()
    sync_bn = device == "cuda" and current().world_size > 1
    return [trainer(sync_bn=sync_bn, cpu=device != "cuda")]


def is_trainer(cb) -> bool:
    """Whether ``cb`` is the data-parallel trainer callback (without importing fastai)."""
    return _trainer_class.cache_info().currsize > 0 and isinstance(cb, _trainer_class())


@functools.cache
def _trainer_class():
    from fastai.callback.core import Callback

    if _has_accelerate():
        from fastai.distributed import DistributedTrainer as base
    else:  # fastai.distributed cannot even be imported without Accelerate
        base = Callback

    class DistributedTrainer(base):
        """fastai's DistributedTrainer (Accelerate wraps the model in DDP) for recap's loaders.

        recap's in-memory loaders (:class:`recap.ml.train.TensorBatches`) shard themselves by
        rank; fastai's ``DistributedDL`` (other fastai loaders) needs CUDA for its index
        broadcast. Validation runs on the plain module (no collective inside: shards may differ
        in length), then losses and metrics are summed over ranks before Recorder reads them.
        Without Accelerate installed, the same steps with torch's DDP directly.
        """

        order = 11

        def __init__(self, sync_bn=True, **kwargs):
            if base is not Callback:
                super().__init__(sync_bn, **kwargs)
            else:
                self.sync_bn, self.accelerator = sync_bn, None

        def _wrap_dl(self, dl):
            from recap.ml.train import TensorBatches

            if isinstance(dl, TensorBatches):
                d = current()
                dl.rank, dl.world = d.rank, d.world_size
                return dl
            if base is Callback:
                from recap.errors import InvalidInput

                raise InvalidInput(
                    "several processes over fastai DataLoaders need Accelerate (pip install "
                    "accelerate); recap's in-memory batches do not"
                )
            return super()._wrap_dl(dl)

        def before_train(self):
            self.learn.dl = self._wrap_dl(self.learn.dl)

        def before_fit(self):
            _mark_wrapped()
            self._bn_types = batchnorm_types(self.learn.model)
            if self.accelerator is not None and current().world_size > 1:
                super().before_fit()
                return
            # no Accelerate, or a group of one (Accelerate would not wrap): DDP as it would
            from fastcore.basics import noop
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = self.learn.model
            if self.sync_bn:
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            dev = next(model.parameters()).device
            ids = [dev.index] if dev.type == "cuda" else None
            self.learn.model = DDP(model, device_ids=ids, **DDP_OPTIONS)
            self.old_dls = list(self.dls)
            self.learn.dls.loaders = [self._wrap_dl(dl) for dl in self.dls]
            if current().rank:
                self.learn.logger = noop

        def before_validate(self):
            self.learn.dl = self._wrap_dl(self.learn.dl)
            self._ddp = self.learn.model
            self.learn.model = self._ddp.module
            sync_buffers(self.learn.model)

        def after_validate(self):
            self.learn.model = self._ddp
            for met in self.recorder._valid_mets:
                reduce_metric(met)

        def after_train(self):
            # the smoothed training loss: the mean over ranks
            sl = self.recorder.smooth_loss
            val = getattr(sl, "val", None)
            if isinstance(val, torch.Tensor):
                sl.val = (
                    _all_reduce(val.detach().float().reshape(1)).to(val.device).reshape(val.shape)
                    / current().world_size
                )
                sl._value = None

        def after_fit(self):
            from recap.ml.train import TensorBatches

            self.learn.model, self.learn.dls.loaders = self.learn.model.module, self.old_dls
            if self.sync_bn:
                self.learn.model = revert_sync_batchnorm(self.learn.model, self._bn_types)
            for dl in self.learn.dls.loaders:
                if isinstance(dl, TensorBatches):
                    dl.rank, dl.world = 0, 1

    return DistributedTrainer


def reduce_metric(met) -> None:
    """Sum one fastai metric's accumulators over the ranks (in place).

    ``AvgMetric``/``AvgLoss`` keep ``total`` and ``count``; ``AccumMetric`` keeps every
    prediction, gathered from all ranks. Any other metric cannot be reduced exactly: an error
    names it (rather than reporting rank 0's share as the whole).
    """
    if hasattr(met, "total") and hasattr(met, "count"):
        total = met.total
        t = torch.tensor([float(total), float(met.count)], dtype=torch.float64)
        t = _all_reduce(t)
        met.total = float(t[0])
        met.count = int(round(float(t[1])))
        return
    if hasattr(met, "preds") and hasattr(met, "targs"):
        mine = (list(met.preds), list(met.targs))
        everyone: list = [None] * current().world_size
        tdist.all_gather_object(everyone, mine)
        met.preds = [p for preds, _ in everyone for p in preds]
        met.targs = [t for _, targs in everyone for t in targs]
        return
    from recap.errors import InvalidInput

    raise InvalidInput(
        f"metric {getattr(met, 'name', type(met).__name__)!r} keeps no total/count or "
        "predictions: it cannot be reduced over ranks (use fastai's AvgMetric or AccumMetric)"
    )


def __getattr__(name):
    # the fastai callback class is made on first use (fastai is a heavy import)
    if name == "DistributedTrainer":
        return _trainer_class()
    raise AttributeError(name)


@contextmanager
def rank0_first():
    """Rank 0 does the body first (e.g. makes a shared cache), then the others."""
    d = current()
    if d.active and not d.is_main:
        tdist.barrier()
    try:
        yield
    finally:
        if d.active and d.is_main:
            tdist.barrier()
