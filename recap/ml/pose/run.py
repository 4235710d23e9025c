"""One pose experiment: data -> train -> metrics and sanity -> export to every profile -> parity
-> overlays and the PCK chart, reporting only through the run context.

``experiments/pose/main.py`` calls :func:`run_pose`. Params missing from the context come from
the folder's ``experiment.toml``; numeric params left at 0 take the preset's value.
"""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

import numpy as np

PRESETS = {
    "tiny": {
        "n_images": 360,
        "input_w": 48,
        "input_h": 64,
        "backbone": "small",
        "width": 16,
        "depth": 3,
        "head_channels": 32,
        "heatmap_stride": 4,
        "sigma": 1.5,
        "epochs": 12,
        "batch_size": 32,
        "lr": 4e-3,
    },
    "full": {
        "n_images": 20000,
        "input_w": 192,
        "input_h": 256,
        "backbone": "resnet18",
        "width": 32,
        "depth": 4,
        "head_channels": 256,
        "heatmap_stride": 4,
        "sigma": 2.0,
        "epochs": 60,
        "batch_size": 64,
        "lr": 1e-3,
    },
}
PROFILES = ("barracuda", "sentis", "latest", "torchscript")
PRIMARY = "pck@0.1"


def resolve_params(params: dict, folder: Path | None) -> dict:
    from recap.errors import InvalidInput

    out = {}
    if folder is not None and (Path(folder) / "experiment.toml").exists():
        with open(Path(folder) / "experiment.toml", "rb") as fh:
            spec = tomllib.load(fh)
        out = {name: p.get("default") for name, p in spec.get("params", {}).items()}
    out.update({k: v for k, v in params.items() if v is not None})
    preset = out.get("preset", "tiny")
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r} ({', '.join(PRESETS)})")
    for key, value in PRESETS[preset].items():
        if not out.get(key):
            out[key] = value
    out.setdefault("head", "deconv")
    out.setdefault("decode", "argmax")
    out.setdefault("beta", 1.0)
    out.setdefault("threshold", 0.2)
    out.setdefault("padding", 1.25)
    out.setdefault("flip", True)
    out.setdefault("sanity_factor", 1.5)
    out.setdefault("data", "synthetic")
    out.setdefault("pose", "random")
    out.setdefault("profiles", ",".join(PROFILES))
    out.setdefault("precision", "auto")
    out.setdefault("channels_last", False)
    return out


def find_coco(source: str, folder: Path | None = None) -> Path:
    """``run:<id>`` (a dataset run's COCO key-point file), a COCO JSON, or a folder holding one."""
    from recap import paths
    from recap.errors import NotFound

    if source.startswith("run:"):
        run_id = source[4:]
        hits = sorted(paths.runs_dir().glob(f"*/{run_id}*"))
        hits = [h for h in hits if h.is_dir()]
        if not hits:
            raise NotFound(f"dataset run {run_id!r} not found under {paths.runs_dir()}")
        path = hits[0]
    else:
        path = Path(source).expanduser()
        if not path.is_absolute() and folder is not None and (Path(folder) / path).exists():
            path = Path(folder) / path
    if path.is_file():
        return path
    if path.is_dir():
        for f in sorted(path.rglob("*.json")):
            try:
                head = json.loads(f.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(head, dict) and "annotations" in head and "categories" in head:
                if any(c.get("keypoints") for c in head["categories"]):
                    return f
    raise NotFound(f"no COCO key-point file in {source!r}")


def load_data(p: dict, seed: int, workdir: Path, folder: Path | None):
    from recap.ml.pose.data import make_stick_figures, read_coco

    source = str(p["data"])
    if source == "synthetic":
        ann = make_stick_figures(
            workdir / "src", int(p["n_images"]), (96, 96), seed, fixed=p["pose"] == "fixed"
        )
    else:
        ann = find_coco(source, folder)
    return read_coco(
        ann, workdir / "crops", (int(p["input_w"]), int(p["input_h"])), float(p["padding"])
    )


def arch_of(p: dict, k: int) -> dict:
    return {
        "name": "pose",
        "backbone": str(p["backbone"]),
        "width": int(p["width"]),
        "depth": int(p["depth"]),
        "head": str(p["head"]),
        "head_channels": int(p["head_channels"]),
        "heatmap_stride": int(p["heatmap_stride"]),
        "input_size": [int(p["input_w"]), int(p["input_h"])],
        "k": k,
    }


def evaluate(pred, conf, ps, train_set, factor: float) -> dict:
    """Every metric of the field on one split, and the mean-pose comparison."""
    from recap.ml.pose import metrics

    truth, vis, boxes = ps.joints[..., :2], ps.joints[..., 2], ps.boxes
    p05 = metrics.pck(pred, truth, vis, boxes, 0.05)
    p10 = metrics.pck(pred, truth, vis, boxes, 0.1)
    scores = np.nanmean(np.where(vis > 0, conf, np.nan), axis=1)
    oks = metrics.oks_ap(
        pred, np.nan_to_num(scores, nan=0.0), truth, vis, boxes, ps.skeleton.sigmas
    )
    mean_norm = metrics.mean_pose(
        train_set.joints[..., :2], train_set.joints[..., 2], train_set.boxes
    )
    sanity = metrics.compare_mean_pose(pred, truth, vis, boxes, mean_norm, factor)
    base_px = metrics.denormalise(np.broadcast_to(mean_norm, truth.shape), boxes)
    return {
        "pck@0.05": p05["mean"],
        "pck@0.1": p10["mean"],
        "pck@0.05_per_joint": p05["per_joint"],
        "pck@0.1_per_joint": p10["per_joint"],
        "mean_pose_pck@0.1_per_joint": metrics.pck(base_px, truth, vis, boxes, 0.1)["per_joint"],
        "pixel_error": metrics.pixel_error(pred, truth, vis),
        **oks,
        **sanity,
    }


def run_pose(ctx, folder: Path | None = None) -> dict:
    """Train, check, export and look at one pose model; returns the run's summary."""
    from recap.ml import require_ml

    require_ml()
    import torch

    from recap.ml import train as core
    from recap.ml.pose import bundle, models, visual
    from recap.ml.pose import train as ptrain
    from recap.ml.pose.data import load_pixels

    p = resolve_params(ctx.params, folder)
    device = core.resolve_device(ctx.device)
    core.seed_everything(ctx.seed, device)
    precision = p["precision"]
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    out = Path(ctx.out_dir)
    rule, beta = str(p["decode"]), float(p["beta"])

    with tempfile.TemporaryDirectory(prefix="recap-pose-") as tmp:
        ps = load_data(p, ctx.seed, Path(tmp), folder)
        sk = ps.skeleton
        train_set, valid_set, test_set = (ps.subset(s) for s in ("train", "valid", "test"))
        mean, std = ptrain.channel_stats(load_pixels(train_set.files))
        arch = arch_of(p, sk.k)
        dls = ptrain.dataloaders(
            ps, mean, std, int(p["batch_size"]), device, ctx.seed, flip=bool(p["flip"])
        )
        model = models.build(arch)
        td = core.TaskData(task="pose", size=int(p["input_h"]), mean=mean, std=std)
        learn = core.make_learner(
            dls,
            td,
            arch,
            ctx=ctx,
            lr=float(p["lr"]),
            loss_func=ptrain.loss_for(arch, float(p["sigma"])),
            model=model,
            precision=precision,
            channels_last=bool(p["channels_last"]),
        )
        learn.metrics = [ptrain.px_error_metric(arch)]
        core.fit(learn, int(p["epochs"]), float(p["lr"]))
        core.training_only_cbs(learn)
        model = learn.model.float().cpu().eval()

        # metrics on the validation split, through the task's decode
        _, pred, conf = ptrain.predict(
            model, load_pixels(valid_set.files), mean, std, arch, rule, beta
        )
        ev = evaluate(pred, conf, valid_set, train_set, float(p["sanity_factor"]))
        held = test_set if len(test_set) else valid_set
        _, test_pred, _ = ptrain.predict(
            model, load_pixels(held.files), mean, std, arch, rule, beta
        )

        meta = bundle.describe(
            arch, sk, mean, std, rule, beta, float(p["threshold"]), float(p["padding"])
        )
        meta["training"] = {"params": p, "seed": ctx.seed, "device": device, "precision": precision}
        torch.save(
            {"arch": arch, "state_dict": model.state_dict(), "meta": meta}, out / "model.pth"
        )
        (out / "config.json").write_text(json.dumps(p, indent=2), encoding="utf-8")
        ctx.save_artifact("model.pth", kind="weights", metadata={"arch": arch})
        ctx.save_artifact("config.json", kind="config")

        bundles = {}
        for profile in [s.strip() for s in str(p["profiles"]).split(",") if s.strip()]:
            dest = out / "bundles" / profile
            bundle.export_bundle(model, meta, dest, profile, Path(held.files[0]))
            bundles[profile] = dest
            for f in sorted(dest.iterdir()):
                ctx.save_artifact(f, kind=_kind(f.name), metadata={"profile": profile})
        report = bundle.parity(model, bundles, held.files, mean, std, arch, rule, beta)
        (out / "parity.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        ctx.save_artifact("parity.json", kind="report")

        visual.overlay_grid(
            held.files[:8], test_pred[:8], held.joints[:8, :, :2], held.joints[:8, :, 2], sk,
            out / "overlays.png",
        )  # fmt: skip
        ctx.save_artifact("overlays.png", kind="image", metadata={"what": "pred vs truth"})
        visual.pck_chart(
            sk.names, ev["pck@0.05_per_joint"], ev["pck@0.1_per_joint"], out / "pck.png",
            ev["mean_pose_pck@0.1_per_joint"],
        )  # fmt: skip
        ctx.save_artifact("pck.png", kind="image", metadata={"what": "per-joint PCK"})
        per_joint = {
            name: {"pck@0.05": _f(a), "pck@0.1": _f(b)}
            for name, a, b in zip(
                sk.names, ev["pck@0.05_per_joint"], ev["pck@0.1_per_joint"], strict=True
            )
        }
        (out / "pck.json").write_text(json.dumps(per_joint, indent=2), encoding="utf-8")
        ctx.save_artifact("pck.json", kind="report")

    summary = {k: v for k, v in ev.items() if not k.endswith("per_joint") and k != "factor"}
    summary["pose_sane"] = int(summary["pose_sane"])
    summary["valid_loss"] = core.final_metrics(learn).get("valid_loss")
    summary["train_images"] = len(train_set)
    summary.update(report["summary"])
    for key, value in summary.items():
        ctx.set_summary(key, value)
    if not ev["pose_sane"]:
        from recap.ml.pose.metrics import sanity_message

        ctx.flag("pose_sanity", sanity_message(ev))
    if not report["ok"]:
        ctx.flag("parity", "an exported model does not match the trained one: see parity.json")
    return summary


def _f(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _kind(name: str) -> str:
    return {
        "model.onnx": "onnx",
        "model.pt": "torchscript",
        "model.json": "model-json",
        "golden.json": "golden",
        "golden.png": "golden",
        "operators.json": "report",
    }.get(name, "file")
