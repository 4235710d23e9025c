"""TorchScript for LibTorch (Unreal): a traced ``model.pt``."""

from __future__ import annotations

import warnings
from pathlib import Path

from recap.ml.targets.base import Target


def load_torchscript(path: Path):
    """``torch.jit.load`` without its deprecation warning (LibTorch still loads these files)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


class TorchScriptRunner:
    def __init__(self, path: Path, meta: dict):
        self.module = load_torchscript(path)
        self.in_names = [s["name"] for s in meta["inputs"]]

    def run(self, inputs: dict) -> list:
        import torch

        with torch.no_grad():
            out = self.module(*[torch.from_numpy(inputs[n]) for n in self.in_names])
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.float().numpy() for o in outs]


class TorchScriptTarget(Target):
    name = "torchscript"
    family = "torchscript"
    engine = "libtorch"
    model_file = "model.pt"
    help = "LibTorch (Unreal): torch.jit.trace, model.pt"

    def export(self, model, example: tuple, dest: Path, meta: dict) -> dict:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example)
            traced.save(str(Path(dest) / self.model_file))
        return {"model": self.model_file, "opset": None, "exporter": "torch.jit.trace"}

    def load(self, dest: Path, meta: dict) -> TorchScriptRunner:
        return TorchScriptRunner(Path(dest) / self.model_file, meta)


PLUGINS = (TorchScriptTarget(),)
