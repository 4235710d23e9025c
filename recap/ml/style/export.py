"""Exports of the style networks and their parity.

- ``barracuda``: the legacy exporter at opset 9, one file, a fixed input (960 x 540 by default);
  the graph is then tidied for the engine: ``Constant`` nodes (the Upsample scales) become
  initializers and the exporter's ``Identity`` aliases of shared weights are folded away, so it
  holds only Pad(reflect)/Conv/InstanceNormalization/Relu/Upsample/Add (+ Mul/Tanh/
  BatchNormalization for the patch model), each checked against :data:`BARRACUDA_ALLOWED`.
- ``sentis``: the legacy exporter at opset 15 with dynamic height and width.
- ``latest``: the dynamo exporter at its newest opset, dynamic height and width, weights inside.
- ``torchscript``: ``torch.jit.trace`` (sizes stay free: the graph has no size constants).

Parity: golden frames through each export vs torch, compared after the bundle's post-processing
(0-255 units, unrounded): max abs diff <= :data:`PARITY_TOL`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from recap.errors import RecapError
from recap.ml.style import reference

PARITY_TOL = 0.5  # 0-255 units
BARRACUDA_ALLOWED = {
    "transformer": {"Pad", "Conv", "InstanceNormalization", "Relu", "Upsample", "Add", "Mul"},
    "patch": {"Pad", "Conv", "BatchNormalization", "Relu", "Upsample", "Add", "Mul", "Tanh"},
}
PROFILES = ("barracuda", "sentis", "latest", "torchscript")


class StyleExportError(RecapError):
    """A style network could not be exported as asked (or used an operator it must not)."""


def _tidy_opset9(model) -> None:
    """Constant nodes -> initializers; Identity nodes folded into their consumers (in place)."""
    from onnx import numpy_helper

    g = model.graph
    alias = {}
    keep = []
    for node in g.node:
        if node.op_type == "Constant":
            arr = numpy_helper.to_array(node.attribute[0].t)
            g.initializer.append(numpy_helper.from_array(arr, node.output[0]))
        elif node.op_type == "Identity" and node.output[0] not in {o.name for o in g.output}:
            alias[node.output[0]] = node.input[0]
        else:
            keep.append(node)

    def resolve(name):
        while name in alias:
            name = alias[name]
        return name

    del g.node[:]
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = resolve(name)
        g.node.append(node)


def export_onnx(
    model: torch.nn.Module,
    path: Path,
    profile: str,
    arch: str,
    fixed: tuple[int, int] = reference.FIXED_SIZE,
) -> dict:
    """Write ``path`` for ``profile``; returns {opset, operators, exporter}."""
    import onnx

    model = model.float().cpu().eval()
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if profile == "barracuda":
            w, h = fixed
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, h, w),),
                str(path),
                dynamo=False,
                opset_version=9,
                input_names=["input"],
                output_names=["output"],
                do_constant_folding=True,
            )
            m = onnx.load(str(path))
            _tidy_opset9(m)
            onnx.save(m, str(path))
            exporter = "torch.onnx legacy (TorchScript), opset 9, tidied"
        elif profile == "sentis":
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, 64, 96),),
                str(path),
                dynamo=False,
                opset_version=15,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={
                    "input": {2: "height", 3: "width"},
                    "output": {2: "height", 3: "width"},
                },
                do_constant_folding=True,
            )
            exporter = "torch.onnx legacy (TorchScript), opset 15"
        elif profile == "latest":
            from torch.export import Dim

            hq, wq = Dim("hq", min=2, max=1024), Dim("wq", min=2, max=1024)
            program = torch.onnx.export(
                model,
                (torch.zeros(1, 3, 64, 96),),
                dynamo=True,
                dynamic_shapes=({2: 4 * hq, 3: 4 * wq},),
                input_names=["input"],
                output_names=["output"],
                verbose=False,
            )
            program.save(str(path), external_data=False)
            exporter = "torch.onnx dynamo"
        else:
            raise StyleExportError(f"unknown ONNX profile {profile!r}")
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if profile in ("barracuda", "sentis") and opset != {"barracuda": 9, "sentis": 15}[profile]:
        raise StyleExportError(f"{profile}: asked for opset 9/15, the exporter wrote {opset}")
    ops = operators(m)
    if profile == "barracuda":
        bad = sorted(set(ops) - BARRACUDA_ALLOWED[arch])
        if bad:
            raise StyleExportError(f"barracuda export of {arch} holds {', '.join(bad)}")
        pads = [n for n in m.graph.node if n.op_type == "Pad"]
        if any(len(n.input) > 1 for n in pads):
            raise StyleExportError("barracuda export has a Pad with computed pads")
    return {"opset": opset, "operators": ops, "exporter": exporter}


def operators(model) -> dict[str, int]:
    from collections import Counter

    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def export_torchscript(model: torch.nn.Module, path: Path) -> dict:
    model = model.float().cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.zeros(1, 3, 64, 96))
        traced.save(str(path))
    return {"opset": None, "operators": {}, "exporter": "torch.jit.trace"}


def load_torchscript(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


class OrtRunner:
    """onnxruntime on the CPU for one file: (1,3,H,W) float32 -> (1,3,H,W)."""

    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime as ort

        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.name: x})[0]


def torch_runner(model: torch.nn.Module):
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x)).float().numpy()

    return run


def runner_for(folder: Path, meta: dict, threads: int = 0):
    if meta["model"].endswith(".pt"):
        return torch_runner(load_torchscript(Path(folder) / meta["model"]))
    return OrtRunner(Path(folder) / meta["model"], threads)


def frame_input(pixels: np.ndarray, meta: dict) -> np.ndarray:
    """A golden frame at the bundle's size (fixed bundles: resized) as the model input."""
    fixed = meta["preprocess"].get("fixed_size")
    if fixed:
        from PIL import Image

        w, h = fixed
        if pixels.shape[:2] != (h, w):
            pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.BILINEAR))
    else:
        pixels, _ = reference.pad_to_multiple(pixels, int(meta["preprocess"]["size_multiple"]))
    return reference.preprocess(pixels, meta)


def parity(model: torch.nn.Module, folder: Path, meta: dict, frames: list[np.ndarray]) -> dict:
    """Max abs difference (0-255 units, before rounding) of an export vs torch on golden frames."""
    run = runner_for(folder, meta)
    ref = torch_runner(model.float().cpu().eval())
    worst, per = 0.0, []
    for pixels in frames:
        x = frame_input(pixels, meta)
        a = reference.postprocess_float(ref(x), meta)
        b = reference.postprocess_float(run(x), meta)
        d = float(np.abs(a - b).max())
        per.append(d)
        worst = max(worst, d)
    return {
        "max_abs_diff_255": worst,
        "per_frame": per,
        "tolerance": PARITY_TOL,
        "ok": worst <= PARITY_TOL,
        "input_shape": list(x.shape),
    }


def write_bundle(
    model: torch.nn.Module, meta_base: dict, dest: Path, profile: str, golden: list[np.ndarray]
) -> dict:
    """Export ``model`` into ``dest`` (model file, model.json, golden frames, operators.json,
    parity.json); returns the bundle's model.json."""
    import shutil
    import tempfile

    from recap.fsutil import sha256_file
    from recap.ml.style.data import save_rgb

    arch = meta_base["architecture"]["arch"]
    fixed = tuple(meta_base.get("fixed_size") or reference.FIXED_SIZE)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        meta = json.loads(json.dumps(meta_base))
        meta.pop("fixed_size", None)
        meta.update(
            reference.section(
                meta_base["value_range"],
                meta_base["size_multiple"],
                fixed if profile == "barracuda" else None,
            )
        )
        meta.update({"profile": profile, "torch": torch.__version__})
        if profile == "torchscript":
            info = export_torchscript(model, tmp / "model.pt")
            meta["model"] = "model.pt"
            meta["engine"] = "libtorch"
        else:
            info = export_onnx(model, tmp / "model.onnx", profile, arch, fixed)
            meta["model"] = "model.onnx"
            meta["engine"] = {"barracuda": "barracuda", "sentis": "sentis"}.get(profile)
            from recap.ml import ops

            report = ops.operator_report(tmp / "model.onnx", meta["engine"])
            report["allowed_barracuda"] = (
                sorted(BARRACUDA_ALLOWED[arch]) if profile == "barracuda" else None
            )
            report["engine_notes"] = ENGINE_NOTES
            (tmp / "operators.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        meta.update(
            {
                "opset": info["opset"],
                "exporter": info["exporter"],
                "sha256": sha256_file(tmp / meta["model"]),
            }
        )
        goldens = []
        for i, pixels in enumerate(golden):
            name = f"golden-{i}.png"
            save_rgb(pixels, tmp / name)
            goldens.append(name)
        meta["golden"] = goldens
        (tmp / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        report = parity(model, tmp, meta, golden)
        report["profile"] = profile
        (tmp / "parity.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta["parity"] = report
    return meta


ENGINE_NOTES = {
    "InstanceNormalization": "Barracuda and Sentis implement it natively; epsilon 1e-5 is in the "
    "graph. Some engines (older TensorRT, CoreML converters) decompose it into "
    "ReduceMean/Sub/Pow/Sqrt: slower and a source of small differences.",
    "Pad": "opset 9 writes reflect pads as an attribute (plain Pad); opset 11+ takes pads as an "
    "input tensor, which engines support only when it is a constant (it is here).",
    "Upsample": "opset 9 Upsample(nearest) with constant scales 1,1,2,2; opset 10+ writes Resize.",
}
