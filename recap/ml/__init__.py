"""The shared training and export core: data, fastai learners, export bundles, parity, sanity.

Heavy (torch, fastai, onnx, onnxruntime) and imported lazily: nothing on the CLI's start-up path
imports this package's submodules at top level. It imports neither ``recap.cli`` nor ``recap.db``;
it reports through a :class:`recap.lab.context.RunContext`, so it works from a notebook too.

Modules: ``data`` (image folders, CSV/JSON manifests, synthetic sets), ``models`` (small CNNs),
``train`` (learners, the run-context callback, seeds, devices), ``export`` (ONNX profiles,
TorchScript, the bundle), ``ops`` (operators each engine supports), ``reference`` (numpy-only
pre/post-processing driven by ``model.json``), ``parity``, ``sanity``, ``experiment`` (one call
that runs a whole fastai-to-Unity experiment), ``reexport`` (re-export a finished run).
"""

from __future__ import annotations

ML_MODULES = ("numpy", "torch", "fastai", "onnx", "onnxruntime")


def require_ml() -> None:
    """Raise MissingExtra('ml') in one line when any of the heavy ML packages is missing."""
    from recap.errors import require

    for module in ML_MODULES:
        require(module, "ml")
