"""Architectures: small CNNs trained from scratch, and torchvision / timm bodies with fastai's head.

Built only from operators every target engine has (Conv, BatchNormalization, Relu, MaxPool,
GlobalAveragePool, Flatten, Gemm, Sigmoid, Mul, Add), so the barracuda profile exports cleanly.
The architecture is described by a small dict (``arch``) stored with the weights, so a finished
run can be rebuilt and re-exported without its training data.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class SigmoidRange(nn.Module):
    """``sigmoid(x) * (hi - lo) + lo``: key-point outputs bounded a little beyond [-1, 1]."""

    def __init__(self, lo: float, hi: float):
        super().__init__()
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, x):
        return torch.sigmoid(x) * (self.hi - self.lo) + self.lo


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def small_cnn(n_out: int, width: int = 16, depth: int = 3, y_range=None) -> nn.Sequential:
    """A stem, ``depth`` stride-2 conv blocks (doubling width), pooling, one linear layer."""
    layers = [_block(3, width, 1)]
    c = width
    for _ in range(depth):
        layers.append(_block(c, c * 2, 2))
        c *= 2
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_out)]
    if y_range is not None:
        layers.append(SigmoidRange(*y_range))
    return nn.Sequential(*layers)


def keypoint_cnn(
    n_out: int, width: int = 16, depth: int = 3, size: int = 32, y_range=(-1.1, 1.1)
) -> nn.Sequential:
    """A CNN for key points: flatten the last feature map (keeps where) instead of pooling it."""
    layers = [_block(3, width, 1)]
    c = width
    for _ in range(depth):
        layers.append(_block(c, c * 2, 2))
        c *= 2
    side = size // (2**depth)
    layers += [nn.Flatten(), nn.Linear(c * side * side, n_out), SigmoidRange(*y_range)]
    return nn.Sequential(*layers)


def build(arch: dict, load_pretrained: bool = False) -> nn.Module:
    """The model a record describes: ``{"name": "small_cnn" | "keypoint_cnn" | "vision", ...}``.

    ``load_pretrained``: a ``vision`` record's pretrained weights are loaded (from a local file
    only); rebuilding a trained run never needs them (its own weights follow).
    """
    if arch["name"] == "vision":
        return build_vision(arch, load_pretrained and arch.get("pretrained", False))
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    if "y_range" in kwargs and kwargs["y_range"] is not None:
        kwargs["y_range"] = tuple(kwargs["y_range"])
    return {"small_cnn": small_cnn, "keypoint_cnn": keypoint_cnn}[arch["name"]](**kwargs)


# -- the user's own architectures: torchvision resnets and timm models with fastai's head -------
TORCHVISION = ("resnet18", "resnet34")
IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def vision_record(
    arch: str,
    n_out: int,
    y_range=None,
    pretrained: bool = False,
    weights: str | None = None,
) -> dict:
    """The record of a torchvision / timm body with fastai's head (AdaptiveConcatPool2d,
    BatchNorm1d, Dropout, Linear), as ``vision_learner`` builds it; unknown names are one line."""
    from recap.errors import InvalidInput

    if arch in TORCHVISION:
        source = "torchvision"
    else:
        import timm

        if not timm.is_model(arch):
            raise InvalidInput(
                f"unknown architecture {arch!r}: small, resnet18, resnet34 or a timm model name "
                "(see timm.list_models())"
            )
        source = "timm"
    return {
        "name": "vision",
        "arch": arch,
        "source": source,
        "n_out": int(n_out),
        "y_range": list(y_range) if y_range is not None else None,
        "pretrained": bool(pretrained),
        "weights": weights,
    }


def pretrained_file(record: dict) -> Path:
    """Where the pretrained weights of a record are read from: the ``weights`` path, else the
    local torch hub cache (torchvision) or Hugging Face cache (timm). Never downloaded."""
    if record.get("weights"):
        return Path(record["weights"]).expanduser()
    if record["source"] == "torchvision":
        import torchvision

        enum = torchvision.models.get_model_weights(record["arch"])
        url = enum.DEFAULT.url
        return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    import timm

    cfg = timm.models.get_pretrained_cfg(record["arch"])
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    from huggingface_hub.constants import HF_HUB_CACHE

    repo = f"models--{(hub_id or 'timm/' + record['arch']).replace('/', '--')}"
    snapshots = Path(HF_HUB_CACHE) / repo / "snapshots"
    found = sorted(snapshots.glob("*/model.safetensors")) + sorted(
        snapshots.glob("*/pytorch_model.bin")
    )
    return found[0] if found else snapshots / "<revision>" / "model.safetensors"


def _load_weights(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def build_vision(record: dict, load_pretrained: bool = False) -> nn.Module:
    """The model of a ``vision`` record; pretrained weights only from a local file."""
    from fastai.vision.learner import add_head, create_body, num_features_model

    from recap.errors import NotFound

    y_range = tuple(record["y_range"]) if record.get("y_range") else None
    state = None
    if load_pretrained:
        path = pretrained_file(record)
        if not path.is_file():
            raise NotFound(
                f"pretrained weights for {record['arch']} not found: looked for {path} "
                "(nothing is downloaded: put the file there or give -p weights=PATH)"
            )
        state = _load_weights(path)
    if record["source"] == "torchvision":
        import torchvision

        net = torchvision.models.get_model(record["arch"], weights=None)
        if state is not None:
            net.load_state_dict(state)
        body = create_body(net, 3, load_pretrained, -2)
        nf = num_features_model(nn.Sequential(*body.children()))
        return add_head(body, nf, record["n_out"], y_range=y_range)
    import timm
    from fastai.vision.learner import TimmBody

    net = timm.create_model(record["arch"], pretrained=False, num_classes=0, in_chans=3)
    if state is not None:
        missing, _ = net.load_state_dict(state, strict=False)
        if missing:
            raise NotFound(f"{pretrained_file(record)}: weights lack {len(missing)} tensors")
    body = TimmBody(net, load_pretrained, None, 3)
    return add_head(body, net.num_features, record["n_out"], pool=body.needs_pool, y_range=y_range)
