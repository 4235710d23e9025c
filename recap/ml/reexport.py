"""Re-export a finished run's model (``recap exp export RUN --profile ...``).

Needs only the run folder: ``model.pth`` (architecture, weights and the bundle description) and
``golden-input.png``; no training data and no fastai. The new bundle goes to
``<run>/export-<profile>/`` with a parity report of the exported file against torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recap.errors import NotFound
from recap.ml import export, models, reference
from recap.ml.parity import TOLERANCE


def load_run_model(run_dir: Path):
    """(model in eval mode on the CPU, model.json description) saved by a run."""
    import torch

    path = Path(run_dir) / "model.pth"
    if not path.exists():
        raise NotFound(f"{run_dir} has no saved model (model.pth): was it a fastai-unity run?")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = models.build(ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    return export.cpu_eval(model), ckpt["meta"]


def reexport(run_dir: Path, profile: str) -> tuple[Path, dict]:
    """Write ``export-<profile>/`` into the run folder; returns (folder, parity report)."""
    import torch

    run_dir = Path(run_dir)
    export.profile_spec(profile)  # unknown profile: fail before loading anything
    model, meta = load_run_model(run_dir)
    golden_src = run_dir / "golden-input.png"
    if not golden_src.exists():
        raise NotFound(f"{run_dir} has no golden-input.png to check the export with")
    dest = run_dir / f"export-{profile}"
    meta = export.export_bundle(model, meta, dest, profile, golden_src)

    golden = json.loads((dest / "golden.json").read_text(encoding="utf-8"))
    x = np.asarray(golden["input"], np.float32).reshape(golden["input_shape"])
    expected = np.asarray(golden["raw_output"], np.float32)
    if profile == "torchscript":
        ts = export.load_torchscript(dest / "model.pt")
        with torch.no_grad():
            raw = ts(torch.from_numpy(x)).float().numpy()
    else:
        raw = reference.OnnxModel(dest, meta).raw(x)
    diff = float(np.abs(raw.reshape(-1) - expected).max())
    report = {
        "profile": profile,
        "opset": meta.get("opset"),
        "engine": meta.get("engine"),
        "max_raw_diff": diff,
        "tolerance": TOLERANCE["raw"],
        "ok": diff <= TOLERANCE["raw"],
        "sha256": meta["sha256"],
    }
    (dest / "parity.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return dest, report
