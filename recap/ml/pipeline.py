"""One pipeline for every family: data -> train -> export to each target -> parity -> sanity.

An experiment folder names its task in ``experiment.toml`` (``[ml] task = "classify"``), its
targets and data as params (``targets = "sentis,torchscript"``, ``data = "synthetic"``), and
its entry as ``entry = "recap.ml.pipeline:run"``; family-wide defaults and presets live once in
the file its ``extends`` names. Everything is reported through the run context only.

From a notebook or a test::

    from recap.lab.context import RunContext
    from recap.ml.pipeline import run
    with RunContext.standalone("out", {"preset": "tiny"}) as ctx:
        summary = run(ctx, "experiments/fastai-unity-classify")

Params: values left at 0 / "" take the preset's value (``[ml.presets.<preset>]`` of the spec),
so ``-p preset=full`` alone is a complete GPU-sized configuration. The resolved values are what
``config.json`` holds and what the run record stores (``ctx.record_params``).

Launched over several processes (``recap exp run NAME --processes N``), every rank trains its
share (``recap.ml.distributed``: DDP through fastai, metrics reduced over ranks); then rank 0
alone exports, checks parity and writes, as one process. ``batch_size`` is per device.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any


def resolve_params(spec: dict, params: dict[str, Any]) -> dict[str, Any]:
    """The spec's defaults overlaid with ``params``, then 0 / empty values from the preset.

    ``spec``: the experiment spec as a dict (``RunContext.experiment_spec()``).
    """
    from recap.errors import InvalidInput

    out = {name: p.get("default") for name, p in spec.get("params", {}).items()}
    out.update({k: v for k, v in params.items() if v is not None})
    presets = spec.get("ml", {}).get("presets", {})
    preset = out.get("preset", "tiny")
    if presets and preset not in presets:
        raise InvalidInput(f"unknown preset {preset!r} ({', '.join(presets)})")
    for key, value in presets.get(preset, {}).items():
        if not out.get(key) and out.get(key) is not False:
            out[key] = value
    return out


def task_of(spec: dict):
    """The task an experiment spec names (``[ml] task``)."""
    from recap.errors import InvalidInput
    from recap.ml.tasks import get_task

    name = spec.get("ml", {}).get("task")
    if not name:
        raise InvalidInput(f"experiment {spec.get('name')!r}: [ml] task: missing")
    return get_task(name)


def run(ctx, folder: str | Path | None = None, task=None) -> dict:
    """Run a whole experiment for ``ctx``; returns the run's summary.

    ``folder`` defaults to the run context's experiment folder (``ctx.folder``, set by
    ``recap exp run``); ``task`` (a task object) overrides the spec's ``[ml] task``.
    """
    from recap.ml import require_ml

    require_ml()
    from recap.ml import bundle as bundlemod
    from recap.ml import data, distributed, parity, targets, train

    folder = Path(folder if folder is not None else ctx.folder)
    spec = ctx.experiment_spec(folder)  # the lab reads and checks it (ml never imports lab)
    task = task or task_of(spec)
    p = resolve_params(spec, ctx.params)
    chosen = targets.parse(p.get("targets") or "sentis,torchscript")
    check = getattr(task, "check", None)  # optional for plug-ins that do not subclass Task
    if callable(check):
        check(p)  # values only training or export would reject: seconds in, not hours
    device = train.resolve_device(ctx.device)
    dist = distributed.setup(ctx, device, p)  # one process unless launched over several
    train.seed_everything(ctx.seed, device)
    precision = p.get("precision", "auto")
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    _record_params(ctx, p)
    out = Path(ctx.out_dir)

    with tempfile.TemporaryDirectory(prefix="recap-data-") as tmp:
        table = data.load_table(p, task, ctx.seed, Path(tmp), folder)
        prep = task.prepare(table, p)
        trained = task.train(ctx, table, prep, dist.train_params(p), device, precision, ctx.seed)
        dist.finish()  # from here on one process: rank 0 exports and writes, the others stop
        if not dist.is_main:
            return {}
        if trained.learner is not None:
            train.training_only_cbs(trained.learner)
        # Everything after training happens on the CPU in float32: that is what gets exported.
        model = bundlemod.cpu_eval(trained.model)

        files = task.golden_files(table)
        golden_src = out / ("golden-input" + Path(files[0]).suffix)
        shutil.copyfile(files[0], golden_src)
        training = {
            "experiment": folder.name,
            "params": p,
            "seed": ctx.seed,
            "device": device,
            "precision": precision,
        }
        if dist.active:
            training["distributed"] = dist.record
        meta = bundlemod.model_meta(task, prep, p, training)
        save_checkpoint(out / "model.pth", task, trained, prep, meta)
        (out / "config.json").write_text(json.dumps(p, indent=2), encoding="utf-8")
        ctx.save_artifact("model.pth", kind="weights", metadata={"arch": trained.state["record"]})
        ctx.save_artifact("config.json", kind="config")
        ctx.save_artifact(golden_src.name, kind="golden")

        bundles = {}
        for target in chosen:
            dest = out / "bundle" / target.name
            bundles[target.name] = (
                target,
                dest,
                bundlemod.export_bundle(task, target, model, prep, meta, dest, golden_src),
            )
            for f, kind in bundlemod.bundle_files(dest):
                ctx.save_artifact(f, kind=kind, metadata={"target": target.name})

        report = parity.check(task, trained, prep, table, model, bundles, files)
        sanity = task.sanity(trained, prep, table, p)

    summary = dict(task.summary(trained, prep, p))
    summary.update(sanity.summary)
    if "valid_loss" in trained.metrics:
        summary["valid_loss"] = trained.metrics["valid_loss"]
    summary.update(report["summary"])
    if sanity.report:
        report["sanity"] = sanity.report
    parity.write(report, out / "parity.json")
    ctx.save_artifact("parity.json", kind="report")
    for key, value in summary.items():
        ctx.set_summary(key, value)
    for name, message in sanity.flags.items():
        ctx.flag(name, message)
    if not report["ok"]:
        ctx.flag("parity", "the exported model does not match the trained one: see parity.json")
    return summary


def _record_params(ctx, params: dict) -> None:
    """Tell the run record the resolved params (a context without the hook just keeps them)."""
    hook = getattr(ctx, "record_params", None)
    if callable(hook):
        hook(params)
    else:
        ctx.params = dict(params)


def save_checkpoint(path: Path, task, trained, prep, meta: dict) -> None:
    """``model.pth``: enough to rebuild and re-export the model without data or fastai."""
    import torch

    from recap.ml.bundle import cpu_eval

    torch.save(
        {
            "task": task.name,
            "record": trained.state["record"],
            "prep": prep.as_dict(),
            "state_dict": cpu_eval(trained.model).state_dict(),
            "meta": meta,
        },
        path,
    )
