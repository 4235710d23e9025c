"""Parity: is each exported model, with the reference pre/post-processing, the trained model?

For held-out inputs, one at a time, for every task and target:

- the task's numpy reference (``load_input`` -> ``preprocess``) gives the model input; it is
  compared with the training framework's own input (``input``, when the task can say);
- raw outputs of the torch model vs each target's runtime (onnxruntime, LibTorch): ``raw``;
- the reference post-processing of the first target's outputs vs the framework's own decoded
  prediction (fastai's ``learn.predict``): the task's ``compare`` gives the decision (same label,
  ...) and its named differences, each within ``task.tolerances``.

When this passes and the game engine disagrees, the fault is in the port; when the model is
bad, parity still passes and the primary metric (or the sanity flags) says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _small(result: dict) -> dict:
    """The JSON-able, small parts of a decoded result (labels, points), for parity.json rows."""
    out = {}
    for key, value in result.items():
        arr = np.asarray(value) if not isinstance(value, str) else None
        if arr is None or arr.dtype.kind in "US":
            out[key] = value if arr is None else arr.tolist()
        elif arr.size <= 64:
            out[key] = arr.tolist()
    return out


def check(task, trained, prep, table, model, bundles: dict, files: list[str]) -> dict:
    """Compare everything on ``files``; the report (JSON-able) and its ``ok`` verdict.

    ``bundles``: target name -> (target, bundle folder, model.json).
    """
    from recap.ml.bundle import torch_outputs

    tol = dict(task.tolerances)
    runners = {name: (t, t.load(dest, meta)) for name, (t, dest, meta) in bundles.items()}
    meta = next(iter(bundles.values()))[2]
    framework = task.framework_predict(trained, prep, table, files)

    rows, agree = [], 0
    worst: dict[str, float] = {}

    def note(key: str, value: float) -> None:
        worst[key] = max(worst.get(key, 0.0), float(value))

    for i, f in enumerate(files):
        x = task.preprocess(task.load_input(f, meta), meta)
        raw_torch = torch_outputs(model, x, meta)
        row: dict = {"file": Path(f).name}
        if framework is not None and framework.inputs is not None:
            first = x[meta["inputs"][0]["name"]]
            row["input_diff"] = float(np.abs(first[0] - np.asarray(framework.inputs[i])).max())
            note("input", row["input_diff"])
        first_raw = None
        for name, (target, runner) in runners.items():
            raw = runner.run(x)
            d = max(float(np.abs(a - b).max()) for a, b in zip(raw_torch, raw, strict=True))
            row[f"raw_diff_{name}"] = d
            note(f"raw_{target.family}", d)
            first_raw = raw if first_raw is None else first_raw
        ref = task.postprocess(first_raw if first_raw is not None else raw_torch, meta)
        other = framework.results[i] if framework is not None else task.postprocess(raw_torch, meta)
        same, diffs = task.compare(ref, other, meta)
        row.update({"reference": _small(ref), "framework": _small(other)})
        row.update({f"{k}_diff": float(v) for k, v in diffs.items()})
        for k, v in diffs.items():
            note(k, v)
        row["same"] = bool(same)
        agree += bool(same)
        rows.append(row)

    n = len(files)
    summary = {"parity_images": n, "parity_agreement": agree / n if n else 0.0}
    if "input" in worst:
        summary["parity_max_input_diff"] = worst["input"]
    for key, value in sorted(worst.items()):
        if key.startswith("raw_"):
            summary[f"parity_max_raw_diff_{key[4:]}"] = value
        elif key != "input":
            summary[f"parity_max_{key}_diff"] = value
    within = all(
        value <= tol.get("raw" if key.startswith("raw_") else key, float("inf"))
        for key, value in worst.items()
    )
    ok = n > 0 and agree == n and within
    summary["parity_ok"] = int(ok)
    return {
        "ok": ok,
        "task": task.name,
        "targets": {
            name: {"opset": m.get("opset"), "engine": t.engine, "folder": str(dest)}
            for name, (t, dest, m) in bundles.items()
        },
        "tolerance": tol,
        "summary": summary,
        "images": rows,
    }


def write(report: dict, path: Path) -> Path:
    from recap.fsutil import atomic_write

    atomic_write(path, json.dumps(report, indent=2, default=str))
    return path
