"""Parity: is the exported model, with the reference pre/post-processing, the trained model?

For held-out images it compares, one image at a time:

- the numpy reference (``recap.ml.reference``) run through onnxruntime against fastai's
  ``learn.predict``: same labels, probabilities within 1e-4, key points within 0.5 px;
- the reference's model input against fastai's own (the pre-processing a port re-writes);
- raw outputs: torch eager vs onnxruntime, and torch eager vs TorchScript, within 1e-4.

When this passes and the game engine disagrees, the fault is in the port; when the model is
bad, parity still passes and the accuracy (or key-point sanity) says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from recap.ml import reference
from recap.ml.export import load_torchscript, torch_raw

TOLERANCE = {"probabilities": 1e-4, "points_px": 0.5, "raw": 1e-4, "input": 1e-5}


def _fastai_result(pred, task: str) -> dict:
    decoded, _, probs = pred
    if task == "classify":
        return {"label": str(decoded), "probabilities": probs.float().numpy()}
    if task == "multilabel":
        return {"labels": sorted(map(str, decoded)), "probabilities": probs.float().numpy()}
    return {"points": np.asarray(decoded, dtype=np.float32).reshape(-1, 2)}


def check(learn, bundle: Path, torchscript: Path | None, files: list[str]) -> dict:
    """Compare everything on ``files``; the report (JSON-able) and its ``ok`` verdict."""
    meta = reference.load_meta(bundle)
    task = meta["task"]
    onnx_model = reference.OnnxModel(bundle, meta)
    model = learn.model.eval()
    ts = load_torchscript(torchscript / "model.pt") if torchscript else None

    # fastai's own model inputs for these files (its Resize, IntToFloat, Normalize).
    dl = learn.dls.test_dl(files, num_workers=0, bs=len(files))
    fastai_x = dl.one_batch()[0].float().cpu().numpy()

    images, agree = [], 0
    worst = {"prob": 0.0, "px": 0.0, "onnx": 0.0, "torchscript": 0.0, "input": 0.0}
    for i, f in enumerate(files):
        x, raw_ort, ref = onnx_model.predict_file(f)
        raw_torch = torch_raw(model, x)
        fa = _fastai_result(learn.predict(f), task)
        row = {
            "file": Path(f).name,
            "input_diff": float(np.abs(x[0] - fastai_x[i]).max()),
            "raw_diff_onnx": float(np.abs(raw_torch - raw_ort).max()),
        }
        if ts is not None:
            with torch.no_grad():
                raw_ts = ts(torch.from_numpy(x)).float().numpy()
            row["raw_diff_torchscript"] = float(np.abs(raw_torch - raw_ts).max())
            worst["torchscript"] = max(worst["torchscript"], row["raw_diff_torchscript"])
        if task == "keypoint":
            d = np.linalg.norm(ref["points"] - fa["points"], axis=-1).max()
            row.update(
                {
                    "points": ref["points"].tolist(),
                    "fastai_points": fa["points"].tolist(),
                    "px_diff": float(d),
                }
            )
            same = bool(d <= TOLERANCE["points_px"])
            worst["px"] = max(worst["px"], float(d))
        else:
            key = "label" if task == "classify" else "labels"
            ref_labels = ref[key] if task == "classify" else sorted(ref[key])
            same = ref_labels == fa[key]
            d = float(np.abs(ref["probabilities"] - fa["probabilities"]).max())
            row.update({key: ref_labels, f"fastai_{key}": fa[key], "prob_diff": d})
            worst["prob"] = max(worst["prob"], d)
        row["same"] = same
        agree += same
        worst["onnx"] = max(worst["onnx"], row["raw_diff_onnx"])
        worst["input"] = max(worst["input"], row["input_diff"])
        images.append(row)

    n = len(files)
    summary = {
        "parity_images": n,
        "parity_agreement": agree / n if n else 0.0,
        "parity_max_input_diff": worst["input"],
        "parity_max_raw_diff_onnx": worst["onnx"],
    }
    if ts is not None:
        summary["parity_max_raw_diff_torchscript"] = worst["torchscript"]
    if task == "keypoint":
        summary["parity_max_px_diff"] = worst["px"]
    else:
        summary["parity_max_prob_diff"] = worst["prob"]
    ok = (
        n > 0
        and agree == n
        and worst["onnx"] <= TOLERANCE["raw"]
        and worst["torchscript"] <= TOLERANCE["raw"]
        and worst["prob"] <= TOLERANCE["probabilities"]
        and worst["px"] <= TOLERANCE["points_px"]
    )
    summary["parity_ok"] = int(ok)
    return {
        "ok": ok,
        "task": task,
        "profile": meta.get("profile"),
        "opset": meta.get("opset"),
        "tolerance": TOLERANCE,
        "summary": summary,
        "images": images,
    }


def write(report: dict, path: Path) -> Path:
    from recap.fsutil import atomic_write

    atomic_write(path, json.dumps(report, indent=2))
    return path
