"""fastai learners for the three fastai-to-Unity tasks, one run-context callback, seeds, devices.

Later families plug in here: style transfer brings its own model, loss and loop (``make_learner``
takes any ``loss_func`` and the callback reports any fastai loop), pose brings many key points
(``n_points``), Blender renders arrive as a manifest (``recap.ml.data.read_manifest``).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from fastai.callback.core import Callback
from fastai.learner import Recorder

from recap.ml import data as mldata
from recap.ml import models

TASKS = ("classify", "multilabel", "keypoint")
Y_RANGE = (-1.1, 1.1)


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
    """"cuda" when asked for and present (or "auto" and present), else "cpu"."""
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
        if self.training:
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

    def before_batch(self):
        self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last)
                              for x in self.learn.xb)


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
        self.learn.pred = self.pred.float()

    def _exit(self):
        if self._ac is not None:
            self._ac.__exit__(None, None, None)
            self._ac = None

    def after_loss(self):
        self._exit()

    def after_batch(self):
        self._exit()


@dataclass
class TaskData:
    """What a learner needs to know about the data, and what the bundle must record."""

    task: str
    size: int
    labels: list[str] = field(default_factory=list)
    n_points: int = 0
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)


def channel_stats(files, size: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images scaled to [0, 1] (explicit normalisation:
    fastai only adds ImageNet statistics for pretrained models)."""
    from PIL import Image

    acc = np.zeros(3)
    acc2 = np.zeros(3)
    n = 0
    for f in files:
        a = np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR),
                       dtype=np.float64) / 255.0
        acc += a.sum((0, 1))
        acc2 += (a ** 2).sum((0, 1))
        n += a.shape[0] * a.shape[1]
    mean = acc / n
    std = np.sqrt(np.maximum(acc2 / n - mean ** 2, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]


def task_data(df, task: str, size: int) -> TaskData:
    train = df[df["split"] == "train"]
    mean, std = channel_stats(train["file"], size)
    td = TaskData(task=task, size=size, mean=mean, std=std)
    if task == "classify":
        td.labels = sorted(set(df["label"]))
    elif task == "multilabel":
        td.labels = sorted({lab for ls in df["labels"] for lab in ls.split()})
    else:
        td.n_points = len(mldata.points_of(df["points"].iloc[0]))
    return td


def _get_points(row):
    return torch.tensor(mldata.points_of(row["points"]))


def make_dls(df, td: TaskData, batch_size: int, device: str, num_workers: int = 0):
    """fastai DataLoaders over the train/valid rows (test rows are held out for parity)."""
    from fastai.data.block import CategoryBlock, DataBlock, MultiCategoryBlock
    from fastai.data.transforms import ColReader, IndexSplitter, Normalize
    from fastai.vision.augment import Resize
    from fastai.vision.data import ImageBlock, PointBlock

    rows = df[df["split"] != "test"].reset_index(drop=True)
    valid_idx = rows.index[rows["split"] == "valid"].tolist()
    if td.task == "classify":
        y_block, get_y = CategoryBlock(vocab=td.labels), ColReader("label")
    elif td.task == "multilabel":
        y_block = MultiCategoryBlock(vocab=td.labels)
        get_y = ColReader("labels", label_delim=" ")
    else:
        y_block, get_y = PointBlock, _get_points
    block = DataBlock(
        blocks=(ImageBlock, y_block),
        get_x=ColReader("file"),
        get_y=get_y,
        splitter=IndexSplitter(valid_idx),
        item_tfms=Resize(td.size, method="squish"),
        batch_tfms=Normalize.from_stats(td.mean, td.std),
    )
    return block.dataloaders(rows, bs=batch_size, num_workers=num_workers,
                             device=torch.device(device))


def decode_images(files, size: int) -> torch.Tensor:
    """Every image decoded once to (N, 3, size, size) uint8 (PIL bilinear squish, as ``Resize``)."""
    from PIL import Image

    out = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        out[i] = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)
    return out


def targets(rows, td: TaskData) -> torch.Tensor:
    """Training targets as fastai's blocks encode them (index, multi-hot, points in [-1, 1])."""
    if td.task == "classify":
        index = {lab: i for i, lab in enumerate(td.labels)}
        return torch.tensor([index[lab] for lab in rows["label"]], dtype=torch.long)
    if td.task == "multilabel":
        index = {lab: i for i, lab in enumerate(td.labels)}
        y = torch.zeros(len(rows), len(td.labels))
        for r, labels in enumerate(rows["labels"]):
            for lab in labels.split():
                y[r, index[lab]] = 1.0
        return y
    from PIL import Image

    # Scaled by each stored image's own size, as fastai's PointScaler does: a squish resize is
    # linear, so [-1, 1] coordinates are the same before and after it.
    sizes = []
    for f in rows["file"]:
        with Image.open(f) as img:
            sizes.append(img.size)
    pts = np.stack([mldata.points_of(s) for s in rows["points"]])
    wh = np.asarray(sizes, dtype=np.float32)[:, None, :]
    return torch.from_numpy(pts * 2 / wh - 1).float()


class TensorBatches:
    """Batches cut from images decoded once and kept on the device, normalised there.

    fastai's per-item pipeline costs about a millisecond an image, more than a small CNN's
    training step, so the core trains from this; ``learn.predict`` and parity still go through
    the DataBlock pipeline (files -> PIL -> Resize -> Normalize), the path a port must match.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, td: TaskData, bs: int, shuffle: bool,
                 seed: int = 0):
        self.x, self.y, self.bs, self.shuffle = x, y, bs, shuffle
        self.drop_last = shuffle  # as fastai: the training loader drops a ragged last batch
        self.mean = torch.tensor(td.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(td.std).view(1, 3, 1, 1)
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
            idx = order[i * self.bs:(i + 1) * self.bs]
            xb = (self.x[idx].float() / 255 - self.mean) / self.std
            yield xb, self.y[idx]


def tensor_dls(df, td: TaskData, batch_size: int, device: str, seed: int = 0):
    """Train/valid DataLoaders over in-memory tensors (see :class:`TensorBatches`)."""
    from fastai.data.core import DataLoaders

    loaders = []
    for split, shuffle in (("train", True), ("valid", False)):
        rows = df[df["split"] == split]
        loaders.append(TensorBatches(decode_images(rows["file"], td.size), targets(rows, td), td,
                                     batch_size, shuffle, seed))
    return DataLoaders(*loaders, device=torch.device(device))


def arch_for(td: TaskData, width: int, depth: int) -> dict:
    if td.task == "keypoint":
        return {"name": "keypoint_cnn", "n_out": 2 * td.n_points, "width": width, "depth": depth,
                "size": td.size, "y_range": list(Y_RANGE)}
    return {"name": "small_cnn", "n_out": len(td.labels), "width": width, "depth": depth}


def pixel_error(td: TaskData):
    """A fastai metric: mean distance in pixels between predicted and true key points."""
    half = td.size / 2

    def px_error(pred, targ):
        d = (pred.view(-1, 2) - targ.view(-1, 2)) * half
        return d.float().norm(dim=-1).mean()

    return px_error


def make_learner(dls, td: TaskData, arch: dict, ctx=None, lr: float = 3e-3, loss_func=None,
                 model=None, precision: str = "fp32", channels_last: bool = False,
                 threshold: float = 0.5):
    """A fastai Learner for the task (or any model + loss: style transfer passes its own)."""
    from fastai.callback.schedule import fit_one_cycle  # noqa: F401  (adds Learner.fit_one_cycle)
    from fastai.learner import Learner
    from fastai.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat
    from fastai.metrics import accuracy, accuracy_multi

    model = model if model is not None else models.build(arch)
    if loss_func is None:
        loss_func = {"classify": CrossEntropyLossFlat(),
                     "multilabel": BCEWithLogitsLossFlat(thresh=threshold),
                     "keypoint": MSELossFlat()}[td.task]
    metrics = {"classify": [accuracy],
               "multilabel": [_named(lambda p, t: accuracy_multi(p, t, thresh=threshold),
                                     "accuracy_multi")],
               "keypoint": [pixel_error(td)]}.get(td.task, [])
    cbs = [RecapCallback(ctx)] if ctx is not None else []
    if channels_last:
        cbs.append(ChannelsLast())
    if precision == "bf16":
        cbs.append(BF16(torch.device(getattr(dls, "device", None) or "cpu").type))
    learn = Learner(dls, model, loss_func=loss_func, opt_func=adamw, lr=lr, metrics=metrics,
                    cbs=cbs)
    learn.recorder.smooth_loss = _device_smooth_loss()
    return learn


def _device_smooth_loss(beta: float = 0.98):
    """fastai's smoothed training loss, kept on the loss's device.

    The stock one copies every batch's loss to the CPU, which makes the CPU wait for the GPU at
    each step; this one is read once an epoch, when Recorder logs it.
    """
    from fastai.learner import AvgSmoothLoss

    class DeviceSmoothLoss(AvgSmoothLoss):
        def accumulate(self, learn):
            self.count += 1
            loss = learn.loss.mean().detach().float()
            self.val = torch.lerp(loss, self.val.to(loss.device), self.beta)

    return DeviceSmoothLoss(beta)


def adamw(params, lr, **kwargs):
    """torch's AdamW (fused per-tensor kernels) behind fastai's optimiser interface; fastai's own
    Adam steps each parameter in Python, which costs more than a small CNN's whole step."""
    from fastai.optimizer import OptimWrapper

    return OptimWrapper(params, torch.optim.AdamW, lr=lr, betas=(0.9, 0.99), eps=1e-5,
                        weight_decay=0.01)


def training_only_cbs(learn):
    """Drop the callbacks that change numerics or layout (before predicting and exporting)."""
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, (BF16, ChannelsLast))])
    return learn


def _named(fn, name):
    fn.__name__ = name
    return fn


def fit(learn, epochs: int, lr: float) -> None:
    """One-cycle training without progress bars (the run context is the report)."""
    from fastcore.basics import noop

    learn.logger = noop  # Recorder would print a table line per epoch
    learn.remove_cbs([cb for cb in learn.cbs if type(cb).__name__ == "ProgressCallback"])
    learn.fit_one_cycle(epochs, lr)


def final_metrics(learn) -> dict[str, float]:
    names = learn.recorder.metric_names[1:-1]
    return {n: float(v) for n, v in zip(names, learn.recorder.values[-1], strict=False)}
