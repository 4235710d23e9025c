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

Exported through the legacy ONNX exporter (the barracuda and sentis profiles), each deconvolution
stage (4x4 transposed convolution, stride 2, padding 1, then batch norm and ReLU) is written in
its phase form (:func:`onnx_form`): the four 2x2 convolutions that make the four output phases,
batch norm folded into them, ReLU (and the heat-map 1x1 convolution, per phase, after the last
stage), Concat and DepthToSpace (DCR). The same arithmetic (the
parity check holds it to the trained network) in operators onnxruntime runs fast: its
ConvTranspose is a GEMM plus col2im outside its blocked (NCHWc) convolutions, 45% of the full
preset's CPU time; the phase form cuts the network's onnxruntime latency by about 10%.
"""

from __future__ import annotations

import math

import torch
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
    return nn.Sequential(*layers), c, backbone_stride("small", depth)


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


def backbone_stride(name: str, depth: int = 2) -> int | None:
    """The stride :func:`backbone` will have, without building it (None for a timm name: known
    once built)."""
    if name == "small":
        return 2 ** (depth + 1)
    return 32 if name in TORCHVISION else None


def backbone(name: str, width: int = 16, depth: int = 2) -> tuple[nn.Module, int, int]:
    """(module, out channels, stride) for ``small``, a torchvision ResNet or a timm name."""
    if name == "small":
        return small_backbone(width, depth)
    if name in TORCHVISION:
        return torchvision_body(name), TORCHVISION[name], backbone_stride(name)
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

    def onnx_form(self) -> nn.Module:
        """What the legacy ONNX exporter writes (see :func:`onnx_form`)."""
        return onnx_form(self)


def build(arch: dict) -> PoseNet:
    return PoseNet(arch)


# -- the phase form of a deconvolution stage, for ONNX ---------------------------------------------
# Output row 2h + i of a 4x4, stride 2, padding 1 transposed convolution sums input rows h - 1 and
# h with kernel rows 3 and 1 (i = 0), or rows h and h + 1 with kernel rows 2 and 0 (i = 1).
_TAPS = ((3, 1), (2, 0))


class _DepthToSpace(torch.autograd.Function):
    """(N, 4C, H, W) -> (N, C, 2H, 2W), channel (2i + j) * C + c to pixel (2h + i, 2w + j): ONNX
    DepthToSpace in DCR mode (the only mode of opset 9, which Barracuda imports)."""

    @staticmethod
    def forward(ctx, x):
        n, c4, h, w = x.shape
        c = c4 // 4
        return x.reshape(n, 2, 2, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, 2 * h, 2 * w)

    @staticmethod
    def symbolic(g, x):
        return g.op("DepthToSpace", x, blocksize_i=2)


class PhaseDeconv(nn.Module):
    """A deconvolution stage (ConvTranspose2d 4x4/2/1 without bias, BatchNorm2d in eval mode,
    ReLU) as four 2x2 convolutions, one per output phase, with batch norm folded in."""

    def __init__(self, deconv: nn.ConvTranspose2d, bn: nn.BatchNorm2d):
        super().__init__()
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        weight = deconv.weight.detach() * scale.view(1, -1, 1, 1)  # (C_in, C_out, 4, 4)
        bias = bn.bias.detach() - bn.running_mean * scale
        c_in, c_out = weight.shape[:2]
        self.convs = nn.ModuleList()
        self.pads = []
        self.post = None  # a 1x1 convolution after the stage, applied to each phase before
        for i in (0, 1):
            for j in (0, 1):
                conv = nn.Conv2d(c_in, c_out, 2)
                taps = weight[:, :, list(_TAPS[i])][:, :, :, list(_TAPS[j])]
                conv.weight.data = taps.permute(1, 0, 2, 3).contiguous()
                conv.bias.data = bias.clone()
                self.convs.append(conv)
                self.pads.append((1 - j, j, 1 - i, i))  # left, right, top, bottom

    def forward(self, x):
        phases = [
            torch.relu(conv(nn.functional.pad(x, pad)))
            for conv, pad in zip(self.convs, self.pads, strict=True)
        ]
        if self.post is not None:  # per pixel, so it commutes with the interleaving
            phases = [self.post(ph) for ph in phases]
        return _DepthToSpace.apply(torch.cat(phases, 1))


def _is_deconv_stage(layers) -> bool:
    if len(layers) < 3:
        return False
    t, bn, relu = layers[:3]
    return (
        isinstance(t, nn.ConvTranspose2d)
        and t.kernel_size == (4, 4)
        and t.stride == (2, 2)
        and t.padding == (1, 1)
        and t.output_padding == (0, 0)
        and t.groups == 1
        and t.dilation == (1, 1)
        and t.bias is None
        and isinstance(bn, nn.BatchNorm2d)
        and bn.track_running_stats
        and isinstance(relu, nn.ReLU)
    )


def _is_pointwise(layer) -> bool:
    return (
        isinstance(layer, nn.Conv2d)
        and layer.kernel_size == (1, 1)
        and layer.stride == (1, 1)
        and layer.padding == (0, 0)
        and layer.dilation == (1, 1)
        and layer.groups == 1
    )


def onnx_form(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode PoseNet with its deconvolution stages in phase form (the model
    itself is untouched); other models and heads come back as they are."""
    import copy

    head = getattr(model, "head", None)
    if model.training or not isinstance(head, nn.Sequential):
        return model
    layers, out, changed = list(head), [], False
    while layers:
        if _is_deconv_stage(layers):
            out.append(PhaseDeconv(layers[0], layers[1]))
            layers, changed = layers[3:], True
            if layers and _is_pointwise(layers[0]):
                # the heat-map convolution before the interleaving: DepthToSpace then moves K
                # channels, not head_channels (its largest copy, 5% of the latency otherwise)
                out[-1].post = layers.pop(0)
        else:
            out.append(layers.pop(0))
    if not changed:
        return model
    form = copy.copy(model)  # shares the body; a new head
    form._modules = dict(model._modules)
    form._modules["head"] = nn.Sequential(*out)
    return form.eval()
