"""The Target plug-in: one engine format a trained model is exported to.

A target owns three things:

- :meth:`Target.export` writes the model file(s) into a bundle folder being built and returns
  the ``model.json`` fields it adds (``model`` file name, ``opset``, ``exporter``, ...). It reads
  input/output names and dynamic dims (shape entries that are strings) from ``meta["inputs"]``
  and ``meta["outputs"]`` (the task's section of model.json).
- :meth:`Target.load` returns a :class:`Runner` for parity: named float32 numpy inputs ->
  list of numpy outputs, on the CPU, deterministic.
- :attr:`Target.operators`: the operator table of the engine (``None``: nothing to check);
  :meth:`Target.operator_report` checks an exported file against it. An unsupported operator
  fails the export (cheaper than finding out in the Unity editor).

A target module lives in ``recap/ml/targets/<name>.py``, imports nothing heavy at module level,
and ends with ``PLUGINS = (MyTarget(...),)``. The shared bundle writer (``recap.ml.bundle``) does
the rest: a temporary folder renamed into place, operator report, golden input, sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol


class Runner(Protocol):
    """An exported model loaded for parity."""

    def run(self, inputs: dict[str, Any]) -> list[Any]:
        """{input name: float32 array (with batch dim)} -> every output, in model.json order."""
        ...


class Target:
    """Base of every target."""

    #: registry name (``-p targets=NAME``, ``recap exp export --target NAME``)
    name: ClassVar[str] = ""
    #: ``onnx`` or ``torchscript`` (parity summary keys are per family: parity_max_raw_diff_onnx)
    family: ClassVar[str] = ""
    #: the engine it is for (barracuda, sentis, onnxruntime, libtorch)
    engine: ClassVar[str | None] = None
    #: the model file inside the bundle
    model_file: ClassVar[str] = "model"
    #: operators the engine imports (None: no check)
    operators: ClassVar[frozenset[str] | None] = None
    #: one line for help texts
    help: ClassVar[str] = ""

    def export(self, model, example: tuple, dest: Path, meta: dict) -> dict:
        """Write ``dest / self.model_file``; return the model.json fields this target adds."""
        raise NotImplementedError

    def load(self, dest: Path, meta: dict) -> Runner:
        raise NotImplementedError

    def operator_report(self, dest: Path, meta: dict) -> dict | None:
        """Operator counts and which the engine lacks (None when the format has no such list)."""
        return None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "family": self.family,
            "engine": self.engine,
            "model_file": self.model_file,
            "help": self.help,
        }


def dynamic_axes(meta: dict) -> dict[str, dict[int, str]]:
    """{tensor name: {axis: dim name}} for every string dim of model.json's inputs and outputs."""
    out: dict[str, dict[int, str]] = {}
    for spec in [*meta["inputs"], *meta["outputs"]]:
        dims = {i: d for i, d in enumerate(spec["shape"]) if isinstance(d, str)}
        if dims:
            out[spec["name"]] = dims
    return out


def names(meta: dict) -> tuple[list[str], list[str]]:
    return [s["name"] for s in meta["inputs"]], [s["name"] for s in meta["outputs"]]
