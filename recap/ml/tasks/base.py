"""The Task plug-in: everything the shared pipeline must know about one kind of model.

The pipeline (``recap.ml.pipeline``) is the same for every family::

    params -> task.synthetic / data table -> task.prepare -> task.train -> Trained
           -> for each target: bundle (task.describe + target.export + golden inputs)
           -> parity (task.load_input/preprocess, target runner, task.postprocess, task.compare)
           -> task.sanity -> task.summary -> the run context

A task module lives in ``recap/ml/tasks/<name>.py``, subclasses :class:`Task` (or
:class:`ImageTask` for image input) and ends with ``PLUGINS = (MyTask(),)``. It imports nothing
heavy at module level (torch, fastai, PIL inside methods) so the registry lists names cheaply.

Contract, by stage (methods marked *must* have no default):

- **data**: :meth:`synthetic` makes a procedural set offline; otherwise the table comes from a
  manifest / image folder (``recap.ml.data.load_table``). A table is a pandas DataFrame with
  ``file``, ``split`` (train/valid/test; test rows are held out for parity) and the task's target
  columns (:attr:`columns`). :meth:`prepare` (*must*) reads the table once and returns a
  :class:`Prepared` (input size, normalisation, labels, key-point names, ...).
- **training**: :meth:`train` returns a :class:`Trained`. Its default builds
  :meth:`dataloaders` -> :meth:`model` -> :meth:`learner` (a fastai Learner with :meth:`loss`,
  :meth:`metrics` and recap's callbacks, which report every epoch to the run context) ->
  :meth:`fit` (one-cycle). A task overrides any one step: a custom loss (style transfer's
  perceptual loss is a ``loss`` returning a module that holds VGG), its own loop (override
  ``fit`` or all of ``train``; report with ``ctx.log_metrics``), its own learner.
- **model**: :meth:`model` turns an architecture name (``small``, ``resnet18``, ``resnet34``, a
  timm name, or the task's own) into a module plus a JSON-able *record*; :meth:`build` rebuilds
  the module from that record alone (``recap exp export`` re-exports a run without its data).
- **bundle**: :meth:`describe` (*must*) writes the task's section of ``model.json``: ``inputs`` and
  ``outputs`` (name, shape with dynamic dims as strings such as ``"batch"``, ``"height"``, dtype,
  layout, value range, channel order), ``preprocess`` (resize/crop, scale, mean/std),
  ``postprocess`` (activation, threshold, decode rule), and labels / key-point names / skeleton.
  Targets read the dynamic dims from it. :meth:`example_inputs` gives the tensors to trace.
- **reference** (numpy only, driven by ``model.json`` alone: the code a game-engine port
  re-writes): :meth:`load_input` (file -> pixels; PIL decode/resize is the only non-numpy step),
  :meth:`preprocess` (pixels -> named model inputs), :meth:`postprocess` (*must*; raw outputs of
  one image -> a dict of decoded results, e.g. ``label``/``probabilities``, ``points``, ``image``).
- **parity**: :meth:`framework_predict` runs the training framework's own prediction (fastai's
  ``learn.predict``) and returns results in :meth:`postprocess`'s form; :meth:`compare` (*must*)
  gives (same decision?, {diff name: value}); :attr:`tolerances` bounds each diff name, plus
  ``raw`` (torch vs each target, raw outputs) and ``input`` (reference vs framework input).
  Summary keys become ``parity_max_<name>_diff``.
- **sanity**: :meth:`sanity` returns summary values and flags (key points vs "always the mean",
  style models that only move the palette).
- **summary**: :meth:`summary` returns the primary metric (:attr:`primary`, :attr:`direction`)
  and whatever else belongs in the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# Parity tolerances every task shares: raw outputs of torch vs each exported target, and the
# reference's model input vs the framework's own.
BASE_TOLERANCES = {"raw": 1e-4, "input": 1e-5}


@dataclass
class Prepared:
    """What a task learned from its data before training; recorded in model.json and model.pth.

    ``size`` is the training input (height, width): square for classifiers, a crop size for
    image-to-image tasks whose exported model takes any size. ``info`` holds task-specific,
    JSON-able facts (``n_points``, ``joints``, ``skeleton``, ``flip_pairs``, ...).
    """

    task: str
    size: tuple[int, int]
    mean: list[float] | None = None
    std: list[float] | None = None
    labels: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "task": self.task,
            "size": list(self.size),
            "mean": self.mean,
            "std": self.std,
            "labels": list(self.labels),
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Prepared:
        return cls(
            d["task"], tuple(d["size"]), d.get("mean"), d.get("std"), d.get("labels", []),
            d.get("info", {}),
        )  # fmt: skip


@dataclass
class Trained:
    """A trained model and what parity and sanity need from training.

    ``model`` is what gets exported (any ``nn.Module``; the pipeline moves it to the CPU in fp32
    and eval mode). ``metrics`` are the last epoch's values. ``learner`` is the fastai Learner when
    the task trained with one (its ``predict`` is the framework reference for parity); ``state``
    carries anything else a task's own loop wants to hand to its parity / sanity methods.
    """

    model: Any
    metrics: dict[str, float] = field(default_factory=dict)
    learner: Any = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class FrameworkPrediction:
    """The training framework's own prediction for some files (the parity yardstick).

    ``results[i]`` has :meth:`Task.postprocess`'s form; ``inputs`` (N, ...) is the framework's
    model input for the same files, when it can say (None: the input check is skipped).
    """

    results: list[dict]
    inputs: Any = None


@dataclass
class Sanity:
    """A task's sanity verdict: summary values, flags (name -> one-line message), a report."""

    summary: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base of every task. Subclasses set the class attributes and the *must* methods."""

    #: registry name (also ``model.json``'s ``task``)
    name: ClassVar[str] = ""
    #: the summary key the experiment is judged by, and whether bigger is better
    primary: ClassVar[str] = ""
    direction: ClassVar[str] = "max"
    #: target columns a manifest row must carry (besides ``file`` and ``split``)
    columns: ClassVar[tuple[str, ...]] = ()
    #: parity tolerances: BASE_TOLERANCES plus one per name :meth:`compare` returns
    tolerances: ClassVar[dict[str, float]] = BASE_TOLERANCES
    #: architectures the task builds itself (besides small / resnet18 / resnet34 / timm names)
    archs: ClassVar[tuple[str, ...]] = ("small",)

    # -- params -------------------------------------------------------------------------------
    def check(self, params: dict) -> None:
        """Raise InvalidInput (one line naming the param) for values the run could only reject
        later, after data and training: the pipeline calls it first. Here: the params every
        family shares (a positive learning rate, at least one epoch and one image a batch, an
        image side of at least 16); a task adds its own and calls this."""
        from recap.errors import InvalidInput

        if "lr" in params and float(params["lr"] or 0) <= 0:
            raise InvalidInput.param(params, "lr", "a positive learning rate")
        for key in ("epochs", "batch_size"):
            if key in params and int(params[key] or 0) < 1:
                raise InvalidInput.param(params, key, "at least 1")
        if "size" in params and int(params["size"] or 0) < 16:
            raise InvalidInput.param(params, "size", "an image side of at least 16 pixels")

    # -- data ---------------------------------------------------------------------------------
    def synthetic(self, out: Path, params: dict, seed: int):
        """A procedural data table made offline in ``out`` (deterministic from ``seed``)."""
        from recap.errors import InvalidInput

        raise InvalidInput(f"task {self.name!r} has no synthetic data: give -p data=PATH")

    def prepare(self, table, params: dict) -> Prepared:  # must
        raise NotImplementedError

    def golden_files(self, table, n: int = 16) -> list[str]:
        """Held-out files for parity and the bundle's golden input (test rows, else valid)."""
        held = table[table["split"] == "test"]
        if held.empty:
            held = table[table["split"] == "valid"]
        return list(held["file"].head(n))

    # -- training -----------------------------------------------------------------------------
    def dataloaders(self, table, prep: Prepared, params: dict, device: str, seed: int):
        """fastai DataLoaders the learner trains from (train and valid rows)."""
        raise NotImplementedError

    def model(self, arch: str, prep: Prepared, params: dict) -> tuple[Any, dict]:
        """(an ``nn.Module``, the JSON-able record :meth:`build` rebuilds it from)."""
        raise NotImplementedError

    def build(self, record: dict):
        """The module a record describes (no data needed: used by re-export)."""
        from recap.ml import models

        return models.build(record)

    def loss(self, prep: Prepared, params: dict):
        raise NotImplementedError

    def metrics(self, prep: Prepared, params: dict) -> list:
        return []

    def learner(self, dls, model, prep: Prepared, params: dict, ctx, device: str, precision: str):
        """A fastai Learner with recap's callbacks (run-context reporting, bf16, channels_last)."""
        from recap.ml import train

        return train.make_learner(
            dls,
            model,
            loss_func=self.loss(prep, params),
            metrics=self.metrics(prep, params),
            ctx=ctx,
            lr=float(params["lr"]),
            precision=precision,
            channels_last=bool(params.get("channels_last", False)),
        )

    def fit(self, learner, params: dict) -> None:
        """Train (one-cycle by default); a task with its own loop overrides this or ``train``."""
        from recap.ml import train

        train.fit(learner, int(params["epochs"]), float(params["lr"]))

    def train(
        self, ctx, table, prep: Prepared, params: dict, device: str, precision: str, seed: int
    ) -> Trained:
        """dataloaders -> model -> learner -> fit; the last epoch's metrics."""
        from recap.ml import train

        dls = self.dataloaders(table, prep, params, device, seed)
        model, record = self.model(str(params.get("arch") or "small"), prep, params)
        learn = self.learner(dls, model, prep, params, ctx, device, precision)
        self.fit(learn, params)
        trained = Trained(model=learn.model, metrics=train.final_metrics(learn), learner=learn)
        trained.state["record"] = record
        return trained

    # -- bundle -------------------------------------------------------------------------------
    def describe(self, prep: Prepared, params: dict) -> dict:  # must
        """The task's section of model.json (see the module docstring)."""
        raise NotImplementedError

    def example_inputs(self, prep: Prepared, meta: dict) -> tuple:
        """Tensors to trace the export with: each input's shape, dynamic dims at the trained size
        (``batch`` 1, ``height``/``width`` from ``prep.size``)."""
        import torch

        dims = {"batch": 1, "height": prep.size[0], "width": prep.size[1]}
        return tuple(
            torch.zeros(*[d if isinstance(d, int) else dims.get(d, 1) for d in spec["shape"]])
            for spec in meta["inputs"]
        )

    # -- numpy reference (model.json only) ----------------------------------------------------
    def load_input(self, path: str | Path, meta: dict):
        raise NotImplementedError

    def preprocess(self, pixels, meta: dict) -> dict:
        """Pixels -> {input name: array with the batch dim}."""
        raise NotImplementedError

    def postprocess(self, outputs: list, meta: dict) -> dict:  # must
        """Raw outputs of one image (each with its batch dim of 1) -> decoded results."""
        raise NotImplementedError

    # -- parity -------------------------------------------------------------------------------
    def framework_predict(self, trained: Trained, prep: Prepared, table, files: list[str]):
        """The training framework's own results for ``files`` (a :class:`FrameworkPrediction`),
        or None when the task has no separate framework path (parity then compares the numpy
        reference with torch only)."""
        return None

    def compare(self, ref: dict, framework: dict, meta: dict) -> tuple[bool, dict[str, float]]:
        """(same decision?, {diff name: max abs difference}) between two decoded results."""
        raise NotImplementedError

    # -- sanity and summary -------------------------------------------------------------------
    def sanity(self, trained: Trained, prep: Prepared, table, params: dict) -> Sanity:
        return Sanity()

    def summary(self, trained: Trained, prep: Prepared, params: dict) -> dict:
        """The primary metric (and any other summary value) from the trained model."""
        return {self.primary: trained.metrics.get(self.primary, float("nan"))}


class ImageTask(Task):
    """A task whose one input is an RGB image: file decoding, resize and normalisation shared.

    ``preprocess`` in model.json: ``channel_order``, ``resize`` (``size`` [h, w] or null for
    any size, ``method`` squish, ``resample`` bilinear, ``crop``), ``scale`` (pixel bytes ->
    [0, 1]), ``mean`` / ``std`` (null: none).
    """

    input_name: ClassVar[str] = "input"

    def image_input(self, prep: Prepared, dynamic_size: bool = False) -> dict:
        h, w = prep.size
        return {
            "name": self.input_name,
            "shape": ["batch", 3, "height", "width"] if dynamic_size else ["batch", 3, h, w],
            "dtype": "float32",
            "layout": "NCHW",
            "channel_order": "RGB",
            "range": "normalised: (pixel * scale - mean) / std",
        }

    def image_preprocess(self, prep: Prepared, resize: bool = True) -> dict:
        h, w = prep.size
        return {
            "channel_order": "RGB",
            "resize": (
                {"size": [h, w], "method": "squish", "resample": "bilinear", "crop": "none"}
                if resize
                else None
            ),
            "scale": 1 / 255,
            "scale_note": "pixel bytes * scale -> [0, 1]; Unity textures are already in [0, 1]",
            "mean": list(prep.mean) if prep.mean is not None else None,
            "std": list(prep.std) if prep.std is not None else None,
        }

    def load_input(self, path, meta):
        from recap.ml import reference

        return reference.load_image(path, meta)

    def preprocess(self, pixels, meta):
        from recap.ml import reference

        return {meta["inputs"][0]["name"]: reference.preprocess(pixels, meta)}
