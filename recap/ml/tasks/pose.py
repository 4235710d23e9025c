"""``pose``: K joints per person with a skeleton, visibility and heat maps (or regression).

Data: COCO key-point files (a Blender ``blender-pose`` run, ``data=run:<id>``; any COCO file or
a ``file, split, points`` manifest) or procedural stick figures (``data=synthetic``), cut into
one person crop per instance (``recap.ml.pose.data``). Models: a backbone (``small``, resnet18/34,
any timm name) with a SimpleBaseline deconvolution head, an upsampling head or a regression
head. The exported network ends at the heat maps; the decode (argmax + quarter-pixel shift or
soft-argmax) is the numpy reference's (``recap.ml.pose.decode``), written into ``model.json``
for a port. Metrics: PCK@0.05/0.1 of the box size per joint and mean (primary: PCK@0.1), COCO
OKS AP through pycocotools, mean pixel error; sanity: the training set's mean pose.

Each run also writes ``overlays.png`` (predicted skeleton vs truth on held-out crops),
``pck.png`` (per-joint PCK bars) and ``pck.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from recap.ml.tasks.base import BASE_TOLERANCES, FrameworkPrediction, ImageTask, Prepared, Sanity

CROP_RULE = (
    "grow the person box [x, y, w, h] by `padding` about its centre; widen or heighten it to "
    "the input's aspect (w/h); crop_w = round(w), crop_h = round(h), x0 = floor(cx - crop_w/2), "
    "y0 = floor(cy - crop_h/2); pixels outside the image are 0; resize bilinearly to the input"
)


def _floats(text: str):
    import numpy as np

    return np.asarray([float(v) for v in str(text).split()], dtype=np.float32)


def table_of(ps):
    """A PoseSet as the core's data table (one row per person crop)."""
    import numpy as np
    import pandas as pd

    def fmt(a):
        return " ".join(f"{float(v):.4f}" for v in np.asarray(a).reshape(-1))

    table = pd.DataFrame(
        {
            "file": ps.files,
            "split": ps.split,
            "joints": [fmt(j) for j in ps.joints],
            "box": [fmt(b) for b in ps.boxes],
            "crop_box": [fmt(b) for b in ps.crop_boxes],
            "source": ps.sources,
        }
    )
    table.attrs["skeleton"] = ps.skeleton.to_json()
    table.attrs["input_size"] = list(ps.input_size)
    return table


def arrays(rows, k: int):
    """(joints (N, K, 3), boxes (N, 4), crop boxes (N, 4)) of table rows."""
    import numpy as np

    joints = np.stack([_floats(s).reshape(k, 3) for s in rows["joints"]])
    boxes = np.stack([_floats(s) for s in rows["box"]])
    crops = np.stack([_floats(s) for s in rows["crop_box"]])
    return joints, boxes, crops


class PoseTask(ImageTask):
    name = "pose"
    primary = "pck@0.1"
    direction = "max"
    columns = ("joints", "box")
    tolerances = {**BASE_TOLERANCES, "px": 0.5}
    archs = ("small",)

    # -- data ---------------------------------------------------------------------------------
    def check(self, params):
        """The crop's sides against the backbone's stride, the heat maps' sigma, the decode's
        numbers: each wrong value is one line before any data is made or any step trained."""
        from recap.errors import InvalidInput
        from recap.ml.pose.models import backbone_stride

        super().check(params)

        arch = str(params.get("arch") or "small")
        depth = int(params.get("depth") or 2)
        stride = backbone_stride(arch, depth)  # a timm backbone's is known once it is built
        where = f"small, depth {depth}" if arch == "small" else arch
        for key in ("input_w", "input_h"):
            side = int(params[key])
            if side < 8 or (stride and side % stride):
                why = (
                    f"a multiple of the backbone's stride {stride} ({where})"
                    if stride
                    else "8 or more"
                )
                raise InvalidInput.param(params, key, why)
        for key in ("sigma", "beta", "padding"):
            if key in params and float(params[key] or 1) <= 0:
                raise InvalidInput.param(params, key, "a positive number")
        if not 0 <= float(params.get("threshold") or 0) <= 1:
            raise InvalidInput.param(
                params, "threshold", "between 0 and 1 (a heat-map peak's confidence)"
            )
        if float(params.get("scale") or 0) < 0 or float(params.get("scale") or 0) >= 1:
            raise InvalidInput.param(
                params, "scale", "from 0 (off) to below 1 (a fraction of the crop)"
            )
        if float(params.get("rotate") or 0) < 0:
            raise InvalidInput.param(params, "rotate", "degrees, 0 (off) or more")

    def _input_wh(self, params) -> tuple[int, int]:
        return int(params["input_w"]), int(params["input_h"])

    def synthetic(self, out, params, seed):
        from recap.ml.pose.data import make_stick_figures, read_coco

        ann = make_stick_figures(
            Path(out) / "src",
            int(params["n_images"]),
            (96, 96),
            seed,
            fixed=str(params.get("pose", "random")) == "fixed",
        )
        ps = read_coco(ann, Path(out) / "crops", self._input_wh(params), _padding(params))
        return table_of(ps)

    def read_table(self, path: Path, params: dict, seed: int, workdir: Path):
        """A COCO key-point file, or a manifest (a Blender run's, with its ``coco.json`` beside
        it: visibility and boxes come from there, splits from the manifest)."""
        from recap.ml.pose.data import coco_from_manifest, read_coco

        path = Path(path)
        if path.is_dir():
            hits = [path / n for n in ("coco.json", "manifest.csv") if (path / n).is_file()]
            if not hits:
                from recap.errors import NotFound

                raise NotFound(f"{path}: no coco.json or manifest.csv")
            path = hits[0]
        splits = None
        if path.suffix.lower() == ".csv":
            import pandas as pd

            manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
            splits = dict(zip(manifest["file"], manifest.get("split", "train"), strict=True))
            coco = path.parent / "coco.json"
            source = coco if coco.is_file() else coco_from_manifest(manifest, path.parent)
        else:
            source = path
        ps = read_coco(
            source,
            Path(workdir) / "crops",
            self._input_wh(params),
            _padding(params),
            image_root=path.parent,
            splits=splits,
        )
        return table_of(ps)

    def prepare(self, table, params):
        from recap.ml.pose import metrics
        from recap.ml.pose.data import load_pixels
        from recap.ml.pose.skeleton import Skeleton
        from recap.ml.pose.train import channel_stats

        sk = Skeleton.from_json(table.attrs.get("skeleton") or Skeleton.coco().to_json())
        w, h = self._input_wh(params)
        train_rows = table[table["split"] == "train"]
        mean, std = channel_stats(load_pixels(train_rows["file"]))
        joints, boxes, _ = arrays(train_rows, sk.k)
        mean_pose = metrics.mean_pose(joints[..., :2], joints[..., 2], boxes)
        info = {
            "skeleton": sk.to_json(),
            "head": str(params.get("head") or "deconv"),
            "heatmap_stride": int(params["heatmap_stride"]),
            "sigma": float(params["sigma"]),
            "decode": str(params.get("decode") or "argmax"),
            "beta": float(params.get("beta") or 1.0),
            "threshold": float(params.get("threshold") or 0.2),
            "padding": _padding(params),
            "mean_pose": mean_pose.tolist(),
        }
        return Prepared(self.name, (h, w), mean, std, info=info)

    def _skeleton(self, prep):
        from recap.ml.pose.skeleton import Skeleton

        return Skeleton.from_json(prep.info["skeleton"])

    # -- training -----------------------------------------------------------------------------
    def dataloaders(self, table, prep, params, device, seed):
        import torch
        from fastai.data.core import DataLoaders

        from recap.ml.pose.data import load_pixels
        from recap.ml.pose.train import PoseBatches

        sk = self._skeleton(prep)
        loaders = []
        for split, shuffle in (("train", True), ("valid", False)):
            rows = table[table["split"] == split]
            joints, _, _ = arrays(rows, sk.k)
            loaders.append(
                PoseBatches(
                    torch.from_numpy(load_pixels(rows["file"])),
                    torch.from_numpy(joints),
                    prep.mean,
                    prep.std,
                    int(params["batch_size"]),
                    shuffle,
                    sk.flip_perm if _flag(params.get("flip", True)) else None,
                    seed,
                    rotate=float(params.get("rotate") or 0.0),
                    scale=float(params.get("scale") or 0.0),
                )
            )
        return DataLoaders(*loaders, device=torch.device(device))

    def model(self, arch, prep, params):
        h, w = prep.size
        record = {
            "name": "pose",
            "backbone": arch,
            "width": int(params["width"]),
            "depth": int(params["depth"]),
            "head": prep.info["head"],
            "head_channels": int(params["head_channels"]),
            "heatmap_stride": prep.info["heatmap_stride"],
            "input_size": [w, h],
            "k": self._skeleton(prep).k,
        }
        return self.build(record), record

    def build(self, record):
        from recap.ml.pose import models

        return models.build(record)

    def loss(self, prep, params):
        from recap.ml.pose import torch_ops

        h, w = prep.size
        if prep.info["head"] == "regression":
            return torch_ops.RegressionLoss((w, h))
        return torch_ops.HeatmapLoss((w, h), sigma=prep.info["sigma"])

    def metrics(self, prep, params):
        from recap.ml.pose.train import px_error_metric

        h, w = prep.size
        return [px_error_metric({"head": prep.info["head"], "input_size": [w, h]})]

    def train(self, ctx, table, prep, params, device, precision, seed):
        trained = super().train(ctx, table, prep, params, device, precision, seed)
        # sanity writes the overlays and the PCK chart as the run's artifacts
        trained.state.update(params=params, ctx=ctx, device=device)
        return trained

    @staticmethod
    def _eval_model(trained):
        """The trained model in float32 for the held-out evaluation, on the GPU it trained on
        (the full preset's 4,000 crops of 256x192 take seconds there, far longer on the CPU;
        TF32 is off in :meth:`_eval_flags`, so the numbers are float32's), else the CPU model."""
        import copy

        import torch

        model = trained.model.float().cpu().eval()
        device = str(trained.state.get("device") or "cpu")
        if device.startswith("cuda") and torch.cuda.is_available():
            return copy.deepcopy(model).to(device)
        return model

    @staticmethod
    def _eval_flags():
        """cuDNN without TF32 (and without its algorithm search) for the evaluation's passes."""
        import torch

        return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)

    # -- bundle -------------------------------------------------------------------------------
    def describe(self, prep: Prepared, params: dict) -> dict:
        h, w = prep.size
        sk = self._skeleton(prep)
        info = prep.info
        heatmaps = info["head"] != "regression"
        s = info["heatmap_stride"]
        hm = [w // s, h // s] if heatmaps else None
        output = {
            "name": "output",
            "shape": ["batch", sk.k, hm[1], hm[0]] if heatmaps else ["batch", 2 * sk.k],
            "dtype": "float32",
            "activation": "none",
            "layout": "N K h w heat maps (joint order: pose.names)"
            if heatmaps
            else "x0 y0 x1 y1 ... in [-1, 1]",
        }
        preprocess = self.image_preprocess(prep)
        preprocess["resize"]["crop"] = "person box (see crop)"
        preprocess["crop"] = {"rule": CROP_RULE, "padding": info["padding"]}
        decode = {
            "rule": info["decode"] if heatmaps else "regression",
            "beta": info["beta"],
            "argmax": "the first maximum in row-major order; x += 0.25 * sign(h[y, x+1] - "
            "h[y, x-1]) and y += 0.25 * sign(h[y+1, x] - h[y-1, x]), each only where both "
            "neighbours exist",
            "soft_argmax": "expected (x, y) cell under softmax(beta * heat map), in float64",
            "cell_to_input": "x_in = (x_cell + 0.5) * input_w / heatmap_w (y likewise)",
            "regression": "x_in = (output + 1) * input_w / 2 (fastai PointScaler)",
            "in_graph": False,
            "why": "no ArgMax in the graph: Barracuda lacks it; decode on the CPU or in a shader",
        }
        return {
            "inputs": [self.image_input(prep)],
            "outputs": [output],
            "preprocess": preprocess,
            "postprocess": {"activation": "none", "decode": decode["rule"]},
            "labels": [],
            "threshold": info["threshold"],
            "pose": {
                "head": info["head"],
                **sk.to_json(),
                "input_size": [w, h],
                "heatmap_size": hm,
                "heatmap_stride": s if heatmaps else None,
                "decode": decode,
                "threshold": info["threshold"],
                "confidence": "the heat map's maximum; a joint is visible when >= threshold",
                "to_source": "x_src = crop_x0 + x_in * crop_w / input_w; "
                "y_src = crop_y0 + y_in * crop_h / input_h",
            },
        }

    # -- numpy reference ----------------------------------------------------------------------
    def load_input(self, path, meta):
        from recap.ml.pose import decode

        return decode.load_crop(path, meta)

    def preprocess(self, pixels, meta):
        from recap.ml.pose import decode

        return {meta["inputs"][0]["name"]: decode.preprocess(pixels, meta)}

    def postprocess(self, outputs, meta):
        import numpy as np

        from recap.ml.pose import decode

        return decode.postprocess(np.asarray(outputs[0])[0], meta)

    # -- parity -------------------------------------------------------------------------------
    def framework_predict(self, trained, prep, table, files):
        """The trained model on the training pipeline's input, decoded by the task's torch
        decode (fastai has no heat-map block, so this is the learn.predict equivalent)."""
        import numpy as np

        from recap.ml.pose.data import load_pixels
        from recap.ml.pose.train import predict

        h, w = prep.size
        arch = {"head": prep.info["head"], "input_size": [w, h]}
        pixels = load_pixels(files)
        model = trained.model.float().cpu().eval()
        _, pts, conf = predict(
            model, pixels, prep.mean, prep.std, arch, prep.info["decode"], prep.info["beta"]
        )
        m = np.asarray(prep.mean, np.float32).reshape(1, 3, 1, 1)
        s = np.asarray(prep.std, np.float32).reshape(1, 3, 1, 1)
        inputs = (pixels.astype(np.float32) / 255 - m) / s
        results = [{"points": pts[i], "confidence": conf[i]} for i in range(len(files))]
        return FrameworkPrediction(results, inputs)

    def compare(self, ref, framework, meta):
        import numpy as np

        d = float(np.linalg.norm(ref["points"] - framework["points"], axis=-1).max())
        return d <= self.tolerances["px"], {"px": d}

    # -- sanity and summary -------------------------------------------------------------------
    def sanity(self, trained, prep, table, params):
        import numpy as np

        from recap.ml.pose import metrics
        from recap.ml.pose.data import load_pixels
        from recap.ml.pose.train import predict

        sk = self._skeleton(prep)
        h, w = prep.size
        arch = {"head": prep.info["head"], "input_size": [w, h]}
        model = self._eval_model(trained)
        rows = table[table["split"] == "valid"]
        joints, boxes, _ = arrays(rows, sk.k)
        with self._eval_flags():
            _, pred, conf = predict(
                model,
                load_pixels(rows["file"]),
                prep.mean,
                prep.std,
                arch,
                prep.info["decode"],
                prep.info["beta"],
            )
        margin = float(params.get("sanity_margin") or metrics.MARGIN)
        ev = evaluate(pred, conf, joints, boxes, sk, np.asarray(prep.info["mean_pose"]), margin)
        summary = {k: v for k, v in ev.items() if not k.endswith("per_joint") and k != "margin"}
        summary["pose_sane"] = int(ev["pose_sane"])
        flags = {} if ev["pose_sane"] else {"pose_sanity": metrics.sanity_message(ev)}
        per_joint = {
            name: {"pck@0.05": _f(a), "pck@0.1": _f(b), "mean_pose_pck@0.1": _f(c)}
            for name, a, b, c in zip(
                sk.names,
                ev["pck@0.05_per_joint"],
                ev["pck@0.1_per_joint"],
                ev["mean_pose_pck@0.1_per_joint"],
                strict=True,
            )
        }
        ctx = trained.state.get("ctx")
        if ctx is not None:
            self.write_pictures(ctx, model, prep, table, ev, per_joint, sk)
        report = {k: v for k, v in summary.items()}
        report.update(margin=margin, per_joint=per_joint)
        return Sanity(summary, flags, {"pose": report})

    def write_pictures(self, ctx, model, prep, table, ev, per_joint, sk):
        """overlays.png (held-out crops), pck.png and pck.json, recorded as artifacts."""
        from recap.ml.pose import visual
        from recap.ml.pose.data import load_pixels
        from recap.ml.pose.train import predict

        out = Path(ctx.out_dir)
        held = table[table["split"] == "test"]
        if held.empty:
            held = table[table["split"] == "valid"]
        held = held.head(8)
        h, w = prep.size
        arch = {"head": prep.info["head"], "input_size": [w, h]}
        with self._eval_flags():
            _, pred, _ = predict(
                model, load_pixels(held["file"]), prep.mean, prep.std, arch,
                prep.info["decode"], prep.info["beta"],
            )  # fmt: skip
        joints, _, _ = arrays(held, sk.k)
        visual.overlay_grid(
            list(held["file"]), pred, joints[..., :2], joints[..., 2], sk, out / "overlays.png"
        )
        ctx.save_artifact("overlays.png", kind="image", metadata={"what": "predicted vs truth"})
        visual.pck_chart(
            sk.names, ev["pck@0.05_per_joint"], ev["pck@0.1_per_joint"], out / "pck.png",
            ev["mean_pose_pck@0.1_per_joint"],
        )  # fmt: skip
        ctx.save_artifact("pck.png", kind="image", metadata={"what": "per-joint PCK"})
        (out / "pck.json").write_text(json.dumps(per_joint, indent=2), encoding="utf-8")
        ctx.save_artifact("pck.json", kind="report")

    def summary(self, trained, prep, params):
        return {}  # the primary metric comes from sanity (the same validation figures)


def evaluate(pred, conf, joints, boxes, sk, mean_norm, margin: float) -> dict:
    """Every metric of the field on one split, and the mean-pose comparison."""
    import numpy as np

    from recap.ml.pose import metrics

    truth, vis = joints[..., :2], joints[..., 2]
    p05 = metrics.pck(pred, truth, vis, boxes, 0.05)
    p10 = metrics.pck(pred, truth, vis, boxes, 0.1)
    with np.errstate(invalid="ignore"):
        scores = np.nanmean(np.where(vis > 0, conf, np.nan), axis=1)
    oks = metrics.oks_ap(pred, np.nan_to_num(scores), truth, vis, boxes, sk.sigmas)
    sanity = metrics.compare_mean_pose(pred, truth, vis, boxes, mean_norm, margin)
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


def _padding(params) -> float:
    return float(params.get("padding") or 1.25)


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


def _f(v):
    import numpy as np

    return None if v is None or not np.isfinite(v) else float(v)


PLUGINS = (PoseTask(),)
