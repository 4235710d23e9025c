"""One call that runs a fastai-to-Unity experiment: data, training, bundle, parity, sanity.

Each experiment folder's ``main.py`` is three lines around :func:`run_experiment`. Params the
run context lacks come from the folder's ``experiment.toml`` defaults (so a notebook or a test can
call ``run(RunContext.standalone(dir, {"preset": "tiny"}))``); numeric params left at 0 take the
preset's value, so ``-p preset=full`` alone is a complete GPU-sized configuration.
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

PRESETS = {
    "tiny": {
        "n_images": 320,
        "size": 32,
        "epochs": 4,
        "width": 16,
        "depth": 3,
        "batch_size": 32,
        "lr": 5e-3,
    },
    "full": {
        "n_images": 20000,
        "size": 64,
        "epochs": 20,
        "width": 32,
        "depth": 4,
        "batch_size": 256,
        "lr": 3e-3,
    },
}
# Key points need a few more epochs than labels to leave the mean behind.
TASK_PRESETS = {"keypoint": {"tiny": {"epochs": 8, "n_images": 480}}}
PRIMARY = {"classify": "accuracy", "multilabel": "accuracy_multi", "keypoint": "keypoint_error_px"}


def load_spec(folder: Path) -> dict:
    with open(Path(folder) / "experiment.toml", "rb") as fh:
        return tomllib.load(fh)


def resolve_params(params: dict, folder: Path, task: str) -> dict:
    """The run's params with toml defaults filled in and 0 / empty values taken from the preset."""
    from recap.errors import InvalidInput

    spec = load_spec(folder)
    out = {name: p.get("default") for name, p in spec.get("params", {}).items()}
    out.update({k: v for k, v in params.items() if v is not None})
    preset = out.get("preset", "tiny")
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r} (tiny, full)")
    values = {**PRESETS[preset], **TASK_PRESETS.get(task, {}).get(preset, {})}
    for key, value in values.items():
        if not out.get(key):
            out[key] = value
    return out


def _data_path(source: str, folder: Path) -> Path:
    """A data path as given, or relative to the experiment folder, the log root or here.

    (``recap exp run`` starts the run inside its output folder, so "here" alone would surprise.)
    """
    from recap import paths
    from recap.errors import NotFound

    path = Path(source).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        root = paths.find_root()
        candidates = [Path(folder) / path, *([root / path] if root else []), Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise NotFound(f"data {source!r} not found (tried {', '.join(map(str, candidates))})")


def _load_data(p: dict, task: str, seed: int, workdir: Path, folder: Path):
    from recap.ml import data

    source = str(p.get("data") or "synthetic")
    if source == "synthetic":
        n, size = int(p["n_images"]), int(p["size"])
        if task == "keypoint":
            return data.make_markers(
                workdir,
                n,
                size,
                seed,
                n_points=int(p.get("n_points", 1)),
                moving=p.get("marker", "moving") != "fixed",
            )
        return data.make_shapes(workdir, n, size, seed, multi=task == "multilabel")
    path = _data_path(source, folder)
    if path.is_dir():
        return data.read_image_folder(path)
    return data.read_manifest(path)


def run_experiment(ctx, folder: Path, task: str) -> dict:
    """Train, export and check one fastai-to-Unity model; returns the run's summary."""
    from recap.ml import require_ml

    require_ml()
    import torch

    from recap.ml import export, parity, sanity, train

    p = resolve_params(ctx.params, folder, task)
    device = train.resolve_device(ctx.device)
    train.seed_everything(ctx.seed, device)
    precision = p.get("precision", "auto")
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    out = Path(ctx.out_dir)

    with tempfile.TemporaryDirectory(prefix="recap-data-") as tmp:
        df = _load_data(p, task, ctx.seed, Path(tmp), folder)
        td = train.task_data(df, task, int(p["size"]))
        fast = train.tensor_dls(df, td, int(p["batch_size"]), device, seed=ctx.seed)
        arch = train.arch_for(td, int(p["width"]), int(p["depth"]))
        threshold = float(p.get("threshold", 0.5))
        learn = train.make_learner(
            fast,
            td,
            arch,
            ctx=ctx,
            lr=float(p["lr"]),
            precision=precision,
            channels_last=bool(p.get("channels_last", False)),
            threshold=threshold,
        )
        train.fit(learn, int(p["epochs"]), float(p["lr"]))
        final = train.final_metrics(learn)

        # Everything after training happens on the CPU in float32: that is what gets exported.
        train.training_only_cbs(learn)
        # fastai's own pipeline from files (what learn.predict uses, and a port must match)
        learn.dls = train.make_dls(df, td, int(p["batch_size"]), "cpu")
        model = export.cpu_eval(learn.model)

        held_out = df[df["split"] == "test"]
        if held_out.empty:
            held_out = df[df["split"] == "valid"].head(16)
        files = list(held_out["file"])
        golden_src = out / "golden-input.png"
        golden_src.write_bytes(Path(files[0]).read_bytes())

        meta = export.describe(
            task, td.size, td.labels, td.mean, td.std, n_points=td.n_points, threshold=threshold
        )
        meta["training"] = {
            "experiment": Path(folder).name,
            "params": p,
            "seed": ctx.seed,
            "device": device,
            "precision": precision,
        }
        torch.save(
            {"arch": arch, "state_dict": model.state_dict(), "meta": meta}, out / "model.pth"
        )
        (out / "config.json").write_text(json.dumps(p, indent=2), encoding="utf-8")
        ctx.save_artifact("model.pth", kind="weights", metadata={"arch": arch})
        ctx.save_artifact("config.json", kind="config")
        ctx.save_artifact("golden-input.png", kind="golden")

        profile = str(p.get("profile", "sentis"))
        bundle = out / "bundle"
        export.export_bundle(model, meta, bundle, profile, golden_src)
        ts_dir = out / "torchscript"
        export.export_bundle(model, meta, ts_dir, "torchscript", golden_src)
        for folder_ in (bundle, ts_dir):
            for f, kind in export.bundle_files(folder_):
                ctx.save_artifact(f, kind=kind)

        report = parity.check(learn, bundle, ts_dir, files)

        summary = {}
        if task == "keypoint":
            preds, targs = learn.get_preds(dl=learn.dls.valid)
            half = td.size / 2
            pred_px = (preds.float().numpy().reshape(len(preds), -1, 2) + 1) * half
            true_px = (targs.float().numpy().reshape(len(targs), -1, 2) + 1) * half
            train_pts = train.targets(df[df["split"] == "train"], td).numpy()
            result = sanity.compare(pred_px, true_px, (train_pts.mean(0) + 1) * half)
            report["keypoint_sanity"] = result
            summary.update({k: v for k, v in result.items() if k != "factor"})
            summary["keypoint_sane"] = int(result["keypoint_sane"])
            if not result["keypoint_sane"]:
                ctx.flag("keypoint_sanity", sanity.message(result))
        else:
            key = PRIMARY[task]
            summary[key] = final.get(key, float("nan"))
        summary["valid_loss"] = final.get("valid_loss")
        summary.update(report["summary"])
        parity.write(report, out / "parity.json")
        ctx.save_artifact("parity.json", kind="report")
        for key, value in summary.items():
            ctx.set_summary(key, value)
        if not report["ok"]:
            ctx.flag("parity", "the exported model does not match the trained one: see parity.json")
        return summary
