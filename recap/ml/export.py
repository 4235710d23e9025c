"""Export profiles and the bundle: ``model.onnx`` + ``model.json`` + a golden input and its outputs.

Profiles (measured facts, see DESIGN.md): ``barracuda`` uses the legacy TorchScript-based exporter
at opset 9 in one file; ``sentis`` the same exporter at opset 15; ``latest`` the dynamo exporter at
the newest opset it knows, weights inside the file (``external_data=False``). ``torchscript``
writes a traced ``model.pt`` for LibTorch (Unreal). A bundle folder is written beside its final
place and renamed into it, so a failed export never leaves half a bundle.
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

from recap.errors import RecapError
from recap.fsutil import sha256_file
from recap.ml import ops, reference

INPUT_NAME, OUTPUT_NAME = "input", "output"
FORMAT = "recap-bundle/1"


class ExportError(RecapError):
    """The model could not be exported for the chosen profile (or the engine cannot import it)."""


def latest_opset() -> int:
    from torch.onnx import _constants

    return int(_constants.ONNX_MAX_OPSET)


def profile_spec(profile: str) -> dict:
    if profile == "barracuda":
        return {"profile": profile, "opset": 9, "dynamo": False, "engine": "barracuda"}
    if profile == "sentis":
        return {"profile": profile, "opset": 15, "dynamo": False, "engine": "sentis"}
    if profile == "latest":
        return {"profile": profile, "opset": latest_opset(), "dynamo": True, "engine": None}
    if profile == "torchscript":
        return {"profile": profile, "opset": None, "dynamo": False, "engine": "libtorch"}
    raise ExportError(f"unknown export profile {profile!r} ({', '.join(PROFILES)})")


PROFILES = ("barracuda", "sentis", "latest", "torchscript")


def describe(
    task: str, size: int, labels, mean, std, n_points: int = 0, threshold: float | None = None
) -> dict:
    """The model.json fields that do not depend on the export profile."""
    activation = {"classify": "softmax", "multilabel": "sigmoid"}.get(task, "none")
    n_out = 2 * n_points if task == "keypoint" else len(labels)
    meta = {
        "format": FORMAT,
        "task": task,
        "input": {
            "name": INPUT_NAME,
            "shape": [1, 3, size, size],
            "dtype": "float32",
            "layout": "NCHW",
        },
        "preprocess": {
            "channel_order": "RGB",
            "resize": {
                "size": [size, size],
                "method": "squish",
                "resample": "bilinear",
                "crop": "none",
            },
            "scale": 1 / 255,
            "scale_note": "pixel bytes * scale -> [0, 1]; Unity textures are already in [0, 1]",
            "mean": list(mean) if mean is not None else None,
            "std": list(std) if std is not None else None,
        },
        "output": {"name": OUTPUT_NAME, "shape": [1, n_out], "activation": activation},
        "labels": list(labels) if task != "keypoint" else [],
        "threshold": threshold if task == "multilabel" else None,
        "keypoints": None,
    }
    if task == "keypoint":
        meta["keypoints"] = {
            "count": n_points,
            "order": "xy",
            "layout": "x0 y0 x1 y1 ...",
            "image_size": [size, size],
            "scaling": "pixel = (output + 1) * image_size / 2 (fastai PointScaler)",
            "to_original": "x * W / image_size[0], y * H / image_size[1] (squish resize)",
        }
    return meta


def _check_onnx(path: Path, spec: dict) -> int:
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if spec["opset"] is not None and opset != spec["opset"]:
        raise ExportError(f"asked for opset {spec['opset']}, the exporter wrote {opset}")
    external = [
        t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise ExportError(f"weights were written to external files ({external[0]}, ...)")
    return opset


def _export_onnx(model: torch.nn.Module, size: int, path: Path, spec: dict) -> None:
    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec["dynamo"]:
            torch.onnx.export(
                model,
                (x,),
                str(path),
                dynamo=True,
                external_data=False,
                opset_version=spec["opset"],
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                verbose=False,
            )
        else:
            torch.onnx.export(
                model,
                (x,),
                str(path),
                dynamo=False,
                opset_version=spec["opset"],
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )


def cpu_eval(model: torch.nn.Module) -> torch.nn.Module:
    """The model on the CPU in float32, contiguous weights, eval mode (what every export needs)."""
    return model.float().cpu().to(memory_format=torch.contiguous_format).eval()


def load_torchscript(path: Path):
    """``torch.jit.load`` without its deprecation warning (LibTorch still loads these files)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


def torch_raw(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).float().numpy()


def _golden(model, meta: dict, image: Path, folder: Path) -> dict:
    """Copy one held-out image in and record its model input and expected outputs (from torch)."""
    shutil.copyfile(image, folder / "golden.png")
    pixels = reference.load_image(folder / "golden.png", meta)
    x = reference.preprocess(pixels, meta)
    raw = torch_raw(model, x)
    decoded = reference.postprocess(raw[0], meta)
    golden = {
        "image": "golden.png",
        "input_shape": list(x.shape),
        "input": [round(float(v), 7) for v in x.reshape(-1)],
        "raw_output": [float(v) for v in raw.reshape(-1)],
        "expected": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in decoded.items()},
        "tolerance": {"raw": 1e-4, "probabilities": 1e-4, "points_px": 0.5},
    }
    (folder / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    return golden


def export_bundle(
    model: torch.nn.Module, meta: dict, dest: Path, profile: str, golden_image: Path
) -> dict:
    """Write a complete bundle for ``profile`` into ``dest`` (replacing it); returns model.json.

    Fails (ExportError, with ``operators.json`` kept beside ``dest`` for reading) when the graph
    uses an operator the profile's engine does not support.
    """
    import onnxruntime as ort

    spec = profile_spec(profile)
    model = cpu_eval(model)
    size = meta["input"]["shape"][-1]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        meta = json.loads(json.dumps(meta))
        meta.update({"profile": profile, "engine": spec["engine"], "torch": torch.__version__})
        if profile == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(model, torch.zeros(1, 3, size, size))
                traced.save(str(tmp / "model.pt"))
            meta.update({"model": "model.pt", "opset": None, "exporter": "torch.jit.trace"})
        else:
            _export_onnx(model, size, tmp / "model.onnx", spec)
            opset = _check_onnx(tmp / "model.onnx", spec)
            report = ops.operator_report(tmp / "model.onnx", spec["engine"])
            (tmp / "operators.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
            if not report["ok"]:
                shutil.copyfile(tmp / "operators.json", dest.parent / f"{dest.name}-operators.json")
                raise ExportError(
                    f"{profile}: the engine lacks operator(s) {', '.join(report['unsupported'])}"
                )
            # onnxruntime must load it, or the bundle is no use to anyone.
            ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
            meta.update(
                {
                    "model": "model.onnx",
                    "opset": opset,
                    "exporter": "torch.onnx dynamo"
                    if spec["dynamo"]
                    else "torch.onnx legacy (TorchScript)",
                }
            )
        meta["sha256"] = sha256_file(tmp / meta["model"])
        meta["golden"] = "golden.json"
        _golden(model, meta, golden_image, tmp)
        (tmp / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def bundle_files(dest: Path) -> list[tuple[Path, str]]:
    """(file, artifact kind) for every file of a bundle folder."""
    kinds = {
        "model.onnx": "onnx",
        "model.pt": "torchscript",
        "model.json": "model-json",
        "golden.json": "golden",
        "golden.png": "golden",
        "operators.json": "report",
    }
    return [(f, kinds.get(f.name, "file")) for f in sorted(Path(dest).iterdir()) if f.is_file()]
