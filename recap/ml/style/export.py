"""Exports of the style networks through the core's targets (``recap.ml.targets``) and parity.

Every target of the registry exports the model (the style task's model.json gives the input
shape: dynamic height and width, fixed for Barracuda). What this module adds:

- ``barracuda`` (legacy exporter, opset 9, one file, fixed input, 960 x 540 by default): the
  graph is then tidied for the engine: ``Constant`` nodes (the Upsample scales) become
  initializers and the exporter's ``Identity`` aliases of shared weights are folded away, so it
  holds only Pad(reflect)/Conv/InstanceNormalization/Relu/Upsample/Add (+ Mul/Tanh/
  BatchNormalization for the patch model), each checked against :data:`BARRACUDA_ALLOWED`.
- ``sentis`` (opset 15), ``latest`` (dynamo) and ``torchscript`` (traced; sizes stay free: the
  graph has no size constants) as the core writes them.
- golden frames as PNGs, and parity per target in 0-255 units.

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

PARITY_TOL = 0.5  # 0-255 units
BARRACUDA_ALLOWED = {
    "transformer": {"Pad", "Conv", "InstanceNormalization", "Relu", "Upsample", "Add", "Mul"},
    "patch": {"Pad", "Conv", "BatchNormalization", "Relu", "Upsample", "Add", "Mul", "Tanh"},
}


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


def operators(model) -> dict[str, int]:
    from collections import Counter

    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


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


def write_bundle(
    task, target, model: torch.nn.Module, prep, meta: dict, dest: Path, golden: list[np.ndarray]
) -> dict:
    """Export ``model`` through a core ``target`` into ``dest``: the model file, model.json,
    golden frames (``golden-N.png`` and the torch output ``golden-N-expected.png``),
    ``operators.json`` and ``parity.json``; returns the bundle's model.json (plus ``parity``).

    The core's bundle writer stores golden inputs as JSON floats; a 960 x 540 frame is 1.5 M of
    them, so image-to-image bundles keep PNGs instead. Barracuda's graph is tidied after the
    export (:func:`_tidy_opset9`) and checked against :data:`BARRACUDA_ALLOWED`.
    """
    import shutil
    import tempfile

    import onnx

    from recap.fsutil import sha256_file
    from recap.ml.style.data import save_rgb

    arch = meta["architecture"]["arch"]
    model = model.float().cpu().eval()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:  # made inside the try: a SIGTERM right after it still removes it
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        meta = json.loads(json.dumps(meta))
        meta.update(
            {
                "target": target.name,
                "profile": target.name,
                "engine": target.engine,
                "torch": torch.__version__,
            }
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta.update(target.export(model, task.example_inputs(prep, meta), tmp, meta))
        if target.family == "onnx":
            path = tmp / meta["model"]
            m = onnx.load(str(path))
            if target.name == "barracuda":
                _tidy_opset9(m)
                onnx.save(m, str(path))
                onnx.checker.check_model(m, full_check=True)
                meta["exporter"] += ", tidied (Constant -> initializer, Identity folded)"
                bad = sorted(set(operators(m)) - BARRACUDA_ALLOWED[arch])
                if bad:
                    raise StyleExportError(f"barracuda export of {arch} holds {', '.join(bad)}")
                if any(len(n.input) > 1 for n in m.graph.node if n.op_type == "Pad"):
                    raise StyleExportError("barracuda export has a Pad with computed pads")
            report = target.operator_report(tmp, meta) or {}
            report["allowed_barracuda"] = (
                sorted(BARRACUDA_ALLOWED[arch]) if target.name == "barracuda" else None
            )
            report["engine_notes"] = ENGINE_NOTES
            (tmp / "operators.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
            if report.get("ok") is False:
                lacks = ", ".join(report["unsupported"])
                raise StyleExportError(f"{target.name}: the engine lacks operator(s) {lacks}")
        meta["sha256"] = sha256_file(tmp / meta["model"])
        runner = target.load(tmp, meta)
        in_name = meta["inputs"][0]["name"]
        names, rows, worst = [], [], 0.0
        for i, pixels in enumerate(golden):
            name = f"golden-{i}.png"
            save_rgb(pixels, tmp / name)
            x = task.preprocess(task.load_input(tmp / name, meta), meta)
            with torch.no_grad():
                ref = task.postprocess([model(torch.from_numpy(x[in_name])).numpy()], meta)
            got = task.postprocess(runner.run(x), meta)
            save_rgb(ref["image"], tmp / f"golden-{i}-expected.png")
            _, diffs = task.compare(ref, got, meta)
            rows.append({"file": name, "shape": list(x[in_name].shape), **diffs})
            worst = max(worst, diffs["pixels"])
            names.append(name)
        meta["golden"] = {
            "inputs": names,
            "expected": [n.replace(".png", "-expected.png") for n in names],
            "tolerance_255": PARITY_TOL,
        }
        report = {
            "target": target.name,
            "max_abs_diff_255": worst,
            "tolerance": PARITY_TOL,
            "ok": worst <= PARITY_TOL,
            "frames": rows,
        }
        (tmp / "parity.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        (tmp / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    except BaseException:
        if tmp is not None:
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
