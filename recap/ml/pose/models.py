"""Pose networks: a backbone's last feature map and one of three heads.

- ``deconv``: SimpleBaseline's head (Xiao et al. 2018): stride-2 transposed convolutions with
  batch norm and ReLU up to the heat-map stride, then a 1x1 convolution to K heat maps;
- ``upsample``: the same with nearest-neighbour upsampling followed by a 3x3 convolution (no
  transposed convolutions: cheaper, no checkerboard);
- ``regression``: 2K coordinates in [-1, 1] from the flattened feature map (fastai PointBlock
  style, like the user's single-point models), for comparison.

Backbones: ``small`` (Conv/BN/ReLU blocks, stride 2 each), torchvision's ``resnet18`` /
``resnet34`` (as the core's ``arch``), or any timm model name; never pretrained here (no weights
are downloaded). Only operators every ONNX
profile (Barracuda opset 9 included) imports: Conv, ConvTranspose, BatchNormalization, Relu,
Upsample/Resize, MaxPool, Add, Flatten, Gemm, Sigmoid.
"""

from __future__ import annotations

import math

from torch import nn

from recap.ml.models import SigmoidRange

HEADS = ("deconv", "upsample", "regression")


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def small_backbone(width: int = 16, depth: int = 2) -> tuple[nn.Module, int, int]:
    """(module, out channels, stride): a stride-2 stem, then ``depth`` stages of a stride-2 block
    doubling the width and a stride-1 block (stride ``2 ** (depth + 1)``)."""
    layers, c = [_block(3, width, 2)], width
    for _ in range(depth):
        layers += [_block(c, c * 2, 2), _block(c * 2, c * 2, 1)]
        c *= 2
    return nn.Sequential(*layers), c, 2 ** (depth + 1)


class TimmFeatures(nn.Module):
    """A timm model's last feature map (no pooling, no classifier)."""

    def __init__(self, name: str):
        super().__init__()
        import timm

        self.body = timm.create_model(name, pretrained=False, num_classes=0, global_pool="")

    def forward(self, x):
        return self.body.forward_features(x)


TORCHVISION = {"resnet18": 512, "resnet34": 512}  # body output channels (stride 32)


def torchvision_body(name: str) -> nn.Sequential:
    """A torchvision ResNet without its pooling and classifier (what SimpleBaseline uses)."""
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    return nn.Sequential(*list(net.children())[:-2])


def backbone(name: str, width: int = 16, depth: int = 2) -> tuple[nn.Module, int, int]:
    """(module, out channels, stride) for ``small``, a torchvision ResNet or a timm name."""
    if name == "small":
        return small_backbone(width, depth)
    if name in TORCHVISION:
        return torchvision_body(name), TORCHVISION[name], 32
    from recap.errors import InvalidInput

    try:
        module = TimmFeatures(name)
    except Exception as e:  # timm raises RuntimeError for unknown names
        raise InvalidInput(f"unknown backbone {name!r} (small or a timm model name): {e}") from e
    info = module.body.feature_info[-1]
    return module, int(info["num_chs"]), int(info["reduction"])


def _up_stages(c_in: int, c: int, n: int, kind: str) -> tuple[list[nn.Module], int]:
    layers = []
    for _ in range(n):
        if kind == "deconv":
            layers += [
                nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            ]
        else:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), *_block(c_in, c, 1)]
        c_in = c
    return layers, c_in


class PoseNet(nn.Module):
    """Backbone + head: (N, 3, H, W) -> (N, K, H/s, W/s) heat maps or (N, 2K) coordinates."""

    def __init__(self, arch: dict):
        super().__init__()
        self.arch = dict(arch)
        body, c, stride = backbone(arch["backbone"], arch.get("width", 16), arch.get("depth", 3))
        self.body = body
        k, head = int(arch["k"]), arch["head"]
        w, h = arch["input_size"]
        if head == "regression":
            side_w, side_h = math.ceil(w / stride), math.ceil(h / stride)
            mid = int(arch.get("head_channels", 32))
            self.head = nn.Sequential(
                *_block(c, mid, 1),
                nn.Flatten(),
                nn.Linear(mid * side_w * side_h, 2 * k),
                SigmoidRange(-1.1, 1.1),
            )
        elif head in ("deconv", "upsample"):
            n_up = int(round(math.log2(stride / arch["heatmap_stride"])))
            if n_up < 0 or 2 ** (math.log2(stride) - n_up) != arch["heatmap_stride"]:
                from recap.errors import InvalidInput

                raise InvalidInput(
                    f"heat-map stride {arch['heatmap_stride']} unreachable from backbone "
                    f"stride {stride} by x2 upsampling"
                )
            layers, c_out = _up_stages(c, int(arch.get("head_channels", 64)), n_up, head)
            self.head = nn.Sequential(*layers, nn.Conv2d(c_out, k, 1))
        else:
            from recap.errors import InvalidInput

            raise InvalidInput(f"unknown pose head {head!r} ({', '.join(HEADS)})")

    def forward(self, x):
        return self.head(self.body(x))


def build(arch: dict) -> PoseNet:
    return PoseNet(arch)
