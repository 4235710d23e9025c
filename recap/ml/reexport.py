"""Re-export a finished run's model (``recap exp export RUN --target ...``).

Needs only the run folder: ``model.pth`` (task, architecture record, weights, preparation and
model.json fields) and the golden input; no training data and no fastai training. The new bundle
goes to ``<run>/export-<target>/`` with a parity report of the exported file against torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recap.errors import NotFound


def load_run_model(run_dir: Path):
    """(task, model in eval mode on the CPU, Prepared, model.json fields) saved by a run."""
    import torch

    from recap.ml.bundle import cpu_eval
    from recap.ml.tasks import get_task
    from recap.ml.tasks.base import Prepared

    path = Path(run_dir) / "model.pth"
    if not path.exists():
        raise NotFound(f"{run_dir} has no saved model (model.pth): was it an ML core run?")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "record" not in ckpt:
        raise NotFound(f"{path} was written by an older recap (no architecture record)")
    task = get_task(ckpt["task"])
    model = task.build(ckpt["record"])
    model.load_state_dict(ckpt["state_dict"])
    return task, cpu_eval(model), Prepared.from_dict(ckpt["prep"]), ckpt["meta"]


def reexport(run_dir: Path, target_name: str) -> tuple[Path, dict]:
    """Write ``export-<target>/`` into the run folder; returns (folder, parity report)."""
    from recap.ml import bundle as bundlemod
    from recap.ml.bundle import torch_outputs
    from recap.ml.targets import get_target

    run_dir = Path(run_dir)
    target = get_target(target_name)  # unknown target: fail before loading anything
    task, model, prep, meta = load_run_model(run_dir)
    golden = sorted(run_dir.glob("golden-input.*"))
    if not golden:
        raise NotFound(f"{run_dir} has no golden-input file to check the export with")
    dest = run_dir / f"export-{target.name}"
    meta = bundlemod.export_bundle(task, target, model, prep, meta, dest, golden[0])

    x = task.preprocess(
        task.load_input(dest / json.loads((dest / "golden.json").read_text())["file"], meta), meta
    )
    expected = torch_outputs(model, x, meta)
    raw = target.load(dest, meta).run(x)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(expected, raw, strict=True))
    tol = task.tolerances["raw"]
    report = {
        "target": target.name,
        "profile": target.name,
        "opset": meta.get("opset"),
        "engine": meta.get("engine"),
        "max_raw_diff": diff,
        "tolerance": tol,
        "ok": diff <= tol,
        "sha256": meta["sha256"],
    }
    (dest / "parity.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return dest, report


def run_job(ctx) -> dict:
    """The child-process side of ``recap exp export``: ``ctx.out_dir`` is the run's folder and
    ``ctx.params["target"]`` the target; every file is reported through the run context."""
    from recap.ml import require_ml
    from recap.ml.bundle import bundle_files

    require_ml()
    target = ctx.params["target"]
    dest, report = reexport(ctx.out_dir, target)
    for f, kind in bundle_files(dest):
        ctx.save_artifact(f, kind=kind, metadata={"target": target})
    return report
