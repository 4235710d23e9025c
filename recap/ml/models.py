"""Small CNNs trained from scratch (no pretrained weights: the machines have no network).

Built only from operators every target engine has (Conv, BatchNormalization, Relu, MaxPool,
GlobalAveragePool, Flatten, Gemm, Sigmoid, Mul, Add), so the barracuda profile exports cleanly.
The architecture is described by a small dict (``arch``) stored with the weights, so a finished
run can be rebuilt and re-exported without its training data.
"""

from __future__ import annotations

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


def build(arch: dict) -> nn.Sequential:
    """The model an ``arch`` dict describes (``{"name": "small_cnn" | "keypoint_cnn", ...}``)."""
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    if "y_range" in kwargs and kwargs["y_range"] is not None:
        kwargs["y_range"] = tuple(kwargs["y_range"])
    return {"small_cnn": small_cnn, "keypoint_cnn": keypoint_cnn}[arch["name"]](**kwargs)
