"""Pose bundles and parity: the network (heat maps or coordinates, never a decode) exported per
profile, ``model.json`` with everything a port needs, golden outputs, and the parity check.

The decode (``recap.ml.pose.decode``) stays outside the graph: Barracuda has no ArgMax and a port
decodes on the CPU or in a shader; the exporter's graph is checked to contain none.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from recap.ml.pose import decode

INPUT_NAME, OUTPUT_NAME = "input", "output"
FORMAT = "recap-bundle/1"
TOLERANCE = {"points_px": 0.5, "raw": 1e-4, "input": 1e-5}
CROP_RULE = (
    "grow the person box [x, y, w, h] by `padding` about its centre; widen or heighten it to "
    "the input's aspect (w/h); round: crop_w = round(w), crop_h = round(h), "
    "x0 = floor(cx - crop_w/2), y0 = floor(cy - crop_h/2); pixels outside the image are 0"
)


def describe(arch: dict, skeleton, mean, std, rule: str, beta: float, threshold: float, padding):
    """The profile-independent ``model.json``."""
    w, h = arch["input_size"]
    k = skeleton.k
    if arch["head"] == "regression":
        out_shape, hm = [1, 2 * k], None
    else:
        s = arch["heatmap_stride"]
        hm = [w // s, h // s]
        out_shape = [1, k, hm[1], hm[0]]
    return {
        "format": FORMAT,
        "task": "pose",
        "input": {"name": INPUT_NAME, "shape": [1, 3, h, w], "dtype": "float32", "layout": "NCHW"},
        "preprocess": {
            "channel_order": "RGB",
            "crop": {"rule": CROP_RULE, "padding": padding},
            "resize": {"size": [h, w], "method": "squish", "resample": "bilinear", "crop": "box"},
            "scale": 1 / 255,
            "mean": list(mean),
            "std": list(std),
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": out_shape,
            "activation": "none",
            "layout": "N K h w heat maps" if hm else "x0 y0 x1 y1 ... in [-1, 1]",
        },
        "labels": [],
        "threshold": threshold,
        "pose": {
            "head": arch["head"],
            **skeleton.to_json(),
            "input_size": [w, h],
            "heatmap_size": hm,
            "heatmap_stride": arch.get("heatmap_stride") if hm else None,
            "decode": {
                "rule": rule if hm else "regression",
                "beta": beta,
                "argmax": "first maximum in row-major order; x += 0.25*sign(h[y,x+1]-h[y,x-1]) "
                "and y += 0.25*sign(h[y+1,x]-h[y-1,x]) only where both neighbours exist",
                "soft_argmax": "expected (x, y) cell under softmax(beta * heatmap), float64",
                "cell_to_input": "x_in = (x_cell + 0.5) * input_w / heatmap_w (same for y)",
                "regression": "x_in = (out + 1) * input_w / 2 (fastai PointScaler)",
            },
            "threshold": threshold,
            "confidence": "the heat map's maximum; a joint is visible when >= threshold",
            "to_source": "x_src = crop_x0 + x_in * crop_w / input_w; "
            "y_src = crop_y0 + y_in * crop_h / input_h",
        },
    }


def no_argmax(onnx_path: Path) -> dict:
    """Operator counts; raises when the graph holds an ArgMax (the decode must stay outside)."""
    from recap.ml import ops
    from recap.ml.export import ExportError

    report = ops.operator_report(onnx_path, None)
    if "ArgMax" in report["operators"] or "ArgMin" in report["operators"]:
        raise ExportError("the pose graph contains ArgMax: decoding must stay outside it")
    return report


def _export_onnx(model, wh, path: Path, spec: dict) -> None:
    x = torch.zeros(1, 3, wh[1], wh[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False)
        if spec["dynamo"]:
            torch.onnx.export(
                model,
                (x,),
                str(path),
                dynamo=True,
                external_data=False,
                opset_version=spec["opset"],
                **kwargs,
            )
        else:
            torch.onnx.export(
                model,
                (x,),
                str(path),
                dynamo=False,
                opset_version=spec["opset"],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
                **kwargs,
            )


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {INPUT_NAME: x})[0]


def export_bundle(model, meta: dict, dest: Path, profile: str, golden_image: Path) -> dict:
    """Export ``model`` for ``profile`` into ``dest`` with model.json, golden input and outputs,
    and the operator report against the profile's engine (an unsupported operator fails)."""
    from recap.fsutil import sha256_file
    from recap.ml import ops
    from recap.ml.export import ExportError, cpu_eval, load_torchscript, profile_spec

    spec = profile_spec(profile)
    model = cpu_eval(model)
    w, h = meta["pose"]["input_size"]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        meta = json.loads(json.dumps(meta))
        meta.update({"profile": profile, "engine": spec["engine"], "torch": torch.__version__})
        shutil.copyfile(golden_image, tmp / "golden.png")
        x = decode.preprocess(decode.load_crop(tmp / "golden.png", meta), meta)
        with torch.no_grad():
            expected_raw = model(torch.from_numpy(x)).float().numpy()
        if profile == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.trace(model, torch.zeros(1, 3, h, w)).save(str(tmp / "model.pt"))
            meta.update({"model": "model.pt", "opset": None, "exporter": "torch.jit.trace"})
            with torch.no_grad():
                raw = load_torchscript(tmp / "model.pt")(torch.from_numpy(x)).float().numpy()
        else:
            from recap.ml.export import _check_onnx

            _export_onnx(model, (w, h), tmp / "model.onnx", spec)
            opset = _check_onnx(tmp / "model.onnx", spec)
            no_argmax(tmp / "model.onnx")
            report = ops.operator_report(tmp / "model.onnx", spec["engine"])
            (tmp / "operators.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
            if not report["ok"]:
                raise ExportError(
                    f"{profile}: the engine lacks operator(s) {', '.join(report['unsupported'])}"
                )
            raw = run_onnx(tmp / "model.onnx", x)
            meta.update(
                {
                    "model": "model.onnx",
                    "opset": opset,
                    "exporter": "torch.onnx dynamo" if spec["dynamo"] else "torch.onnx legacy",
                }
            )
        meta["sha256"] = sha256_file(tmp / meta["model"])
        meta["golden"] = "golden.json"
        decoded = decode.postprocess(expected_raw[0], meta)
        golden = {
            "image": "golden.png",
            "input_shape": list(x.shape),
            "input": [round(float(v), 7) for v in x.reshape(-1)],
            "raw_output": [float(v) for v in expected_raw.reshape(-1)],
            "expected": {k: v.tolist() for k, v in decoded.items()},
            "engine_raw_max_diff": float(np.abs(raw - expected_raw).max()),
            "tolerance": {"raw": TOLERANCE["raw"], "points_px": TOLERANCE["points_px"]},
        }
        (tmp / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
        (tmp / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


class BundleModel:
    """Load-and-run a bundle (onnxruntime or TorchScript) on a model input."""

    def __init__(self, bundle: Path):
        self.bundle = Path(bundle)
        self.meta = json.loads((self.bundle / "model.json").read_text(encoding="utf-8"))
        if self.meta["model"].endswith(".pt"):
            from recap.ml.export import load_torchscript

            ts = load_torchscript(self.bundle / self.meta["model"])
            self._run = lambda x: ts(torch.from_numpy(x)).float().detach().numpy()
        else:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            sess = ort.InferenceSession(
                str(self.bundle / self.meta["model"]), opts, providers=["CPUExecutionProvider"]
            )
            self._run = lambda x: sess.run(None, {INPUT_NAME: x})[0]

    def raw(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self._run(x)


def parity(model, bundles: dict[str, Path], files, mean, std, arch, rule, beta) -> dict:
    """Per held-out crop and per bundle: the numpy reference (preprocess, engine, decode) against
    the trained model on the training pipeline's input with the task's torch decode."""
    from recap.ml.pose import train

    model = model.eval()
    pixels = np.stack([np.asarray(decode.load_crop(f, _meta(bundles)), np.uint8) for f in files])
    raw_t, pts_t, _ = train.predict(
        model, pixels.transpose(0, 3, 1, 2), mean, std, arch, rule, beta
    )
    per_target, images = {}, []
    ok = len(files) > 0
    for name, folder in bundles.items():
        bm = BundleModel(folder)
        worst = {"px": 0.0, "raw": 0.0, "input": 0.0}
        for i, f in enumerate(files):
            x = decode.preprocess(pixels[i], bm.meta)
            x_train = (pixels[i].transpose(2, 0, 1)[None].astype(np.float32) / 255 - _c(mean)) / _c(
                std
            )
            raw = bm.raw(x)
            ref = decode.postprocess(raw[0], bm.meta)
            d = float(np.linalg.norm(ref["points"] - pts_t[i], axis=-1).max())
            worst["px"] = max(worst["px"], d)
            worst["raw"] = max(worst["raw"], float(np.abs(raw - raw_t[i : i + 1]).max()))
            worst["input"] = max(worst["input"], float(np.abs(x - x_train).max()))
            if name == next(iter(bundles)):
                images.append(
                    {
                        "file": Path(f).name,
                        "points": ref["points"].tolist(),
                        "torch": pts_t[i].tolist(),
                    }
                )
        target_ok = (
            worst["px"] <= TOLERANCE["points_px"]
            and worst["input"] <= TOLERANCE["input"]
            and worst["raw"] <= TOLERANCE["raw"]
        )
        per_target[name] = {
            "max_px_diff": worst["px"],
            "max_raw_diff": worst["raw"],
            "max_input_diff": worst["input"],
            "opset": bm.meta.get("opset"),
            "ok": target_ok,
        }
        ok = ok and target_ok
    summary = {"parity_images": len(files), "parity_ok": int(ok)}
    summary["parity_max_px_diff"] = max((t["max_px_diff"] for t in per_target.values()), default=0)
    for name, t in per_target.items():
        summary[f"parity_px_{name}"] = t["max_px_diff"]
    return {
        "ok": ok,
        "task": "pose",
        "tolerance": TOLERANCE,
        "targets": per_target,
        "summary": summary,
        "images": images,
    }


def _c(v):
    return np.asarray(v, np.float32).reshape(1, 3, 1, 1)


def _meta(bundles):
    folder = next(iter(bundles.values()))
    return json.loads((Path(folder) / "model.json").read_text(encoding="utf-8"))
