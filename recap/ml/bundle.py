"""The bundle: an exported model + ``model.json`` + a golden input with its expected outputs.

One writer for every task and target. A bundle folder is built beside its final place and
renamed into it, so a failed (or killed) export never leaves half a bundle. model.json holds the
task's section (inputs/outputs with dynamic dims, pre/post-processing, labels or key points), the
target's fields (model file, opset, exporter, engine), the model file's sha256 and, under
``training``, what trained it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from recap.errors import RecapError

FORMAT = "recap-bundle/2"

KINDS = {
    "model.onnx": "onnx",
    "model.pt": "torchscript",
    "model.json": "model-json",
    "golden.json": "golden",
    "operators.json": "report",
    "parity.json": "report",
}


class ExportError(RecapError):
    """The model could not be exported for a target (or the engine cannot import it)."""


def cpu_eval(model):
    """The model on the CPU in float32, contiguous weights, eval mode (what every export needs)."""
    import torch

    return model.float().cpu().to(memory_format=torch.contiguous_format).eval()


def torch_outputs(model, inputs: dict, meta: dict) -> list[np.ndarray]:
    """The torch model's raw outputs for named numpy inputs (model.json order)."""
    import torch

    with torch.no_grad():
        out = model(*[torch.from_numpy(inputs[s["name"]]) for s in meta["inputs"]])
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.float().numpy() for o in outs]


def model_meta(task, prep, params: dict | None = None, training: dict | None = None) -> dict:
    """model.json's fields that do not depend on the target."""
    meta = {"format": FORMAT, "task": task.name, **task.describe(prep, params or {})}
    # ``input`` / ``output``: the first of each, as bundle format 1 wrote them (existing ports)
    meta["input"], meta["output"] = meta["inputs"][0], meta["outputs"][0]
    if training is not None:
        meta["training"] = training
    return meta


def _golden(task, model, meta: dict, image: Path, folder: Path) -> dict:
    """Copy one held-out input in and record its model input and expected outputs (torch's)."""
    name = "golden" + (Path(image).suffix or ".png")
    shutil.copyfile(image, folder / name)
    x = task.preprocess(task.load_input(folder / name, meta), meta)
    raw = torch_outputs(model, x, meta)
    decoded = task.postprocess(raw, meta)
    golden = {
        "file": name,
        "inputs": {k: _tensor(v, 7) for k, v in x.items()},
        "outputs": {s["name"]: _tensor(r) for s, r in zip(meta["outputs"], raw, strict=True)},
        "expected": _jsonable(decoded),
        "tolerance": dict(task.tolerances),
    }
    # format 1 names, kept for ports written against them
    first_in = next(iter(golden["inputs"].values()))
    golden.update(
        image=name,
        input_shape=first_in["shape"],
        input=first_in["values"],
        raw_output=golden["outputs"][meta["outputs"][0]["name"]]["values"],
    )
    (folder / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    return golden


def _tensor(a: np.ndarray, digits: int | None = None) -> dict:
    values = [float(v) for v in a.reshape(-1)]
    if digits is not None:
        values = [round(v, digits) for v in values]
    return {"shape": list(a.shape), "values": values}


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if hasattr(d, "tolist"):
        return d.tolist()
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


def export_bundle(task, target, model, prep, meta: dict, dest: Path, golden_input: Path) -> dict:
    """Write a complete bundle for ``target`` into ``dest`` (replacing it); returns model.json.

    Fails (ExportError, with ``<dest>-operators.json`` kept beside ``dest`` for reading) when the
    graph uses an operator the target's engine lacks, or when the target cannot load its file.
    """
    import torch

    from recap.fsutil import sha256_file

    model = cpu_eval(model)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:  # made inside the try: a SIGTERM right after it still removes it
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        meta = json.loads(json.dumps(meta))
        meta.update({"target": target.name, "profile": target.name, "engine": target.engine})
        meta["torch"] = torch.__version__
        example = task.example_inputs(prep, meta)
        try:
            meta.update(target.export(model, example, tmp, meta))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"{target.name}: export failed: {exc}") from exc
        report = target.operator_report(tmp, meta)
        if report is not None:
            (tmp / "operators.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
            if not report["ok"]:
                shutil.copyfile(tmp / "operators.json", dest.parent / f"{dest.name}-operators.json")
                lacks = ", ".join(report["unsupported"])
                raise ExportError(f"{target.name}: the engine lacks operator(s) {lacks}")
        target.load(tmp, meta)  # the target's own runtime must load it, or it is no use
        meta["sha256"] = sha256_file(tmp / meta["model"])
        meta["golden"] = "golden.json"
        _golden(task, model, meta, golden_input, tmp)
        (tmp / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def load_meta(bundle: str | Path) -> dict:
    return json.loads((Path(bundle) / "model.json").read_text(encoding="utf-8"))


def bundle_files(dest: Path) -> list[tuple[Path, str]]:
    """(file, artifact kind) for every file of a bundle folder."""
    out = []
    for f in sorted(Path(dest).iterdir()):
        if f.is_file():
            kind = KINDS.get(f.name, "golden" if f.stem == "golden" else "file")
            out.append((f, kind))
    return out
