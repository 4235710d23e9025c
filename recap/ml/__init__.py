"""The shared training and export core: data, fastai learners, export bundles, parity, sanity.

Heavy (torch, fastai, onnx, onnxruntime) and imported lazily: nothing on the CLI's start-up path
imports this package's submodules at top level. It imports neither ``recap.cli`` nor ``recap.db``;
it reports through a :class:`recap.lab.context.RunContext`, so it works from a notebook too.

Plug-in points: ``tasks`` (one module per task: data, model by ``arch``, loss, metrics,
model.json section, numpy reference, parity tolerances, sanity) and ``targets`` (one module per
engine format: export, load-and-run, operator table). ``pipeline`` runs every family the same way;
``bundle`` writes model.json + model + golden input; ``parity``, ``sanity``, ``train`` (fastai
machinery), ``models`` (small CNNs, torchvision / timm bodies), ``data`` (image folders,
manifests, synthetic sets), ``reexport`` (re-export a finished run).
"""

from __future__ import annotations

ML_MODULES = ("numpy", "torch", "fastai", "onnx", "onnxruntime")


def require_ml() -> None:
    """Raise MissingExtra('ml') in one line when a heavy ML package is missing.

    Looks the packages up without importing them (torch alone takes seconds to import), so a
    run without the extra fails at once.
    """
    import importlib.util

    from recap.errors import MissingExtra

    for module in ML_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
            found = False
        if not found:
            raise MissingExtra("ml", module)
    quiet_third_party()


def quiet_third_party() -> None:
    """Leave out of run logs the deprecation notices that packages recap uses print on import,
    which a user cannot act on (fastai decorates its layers with ``torch.jit.script``: six lines
    at the top of every run's log). recap's own warnings and everything else still show."""
    import warnings

    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
