"""The two style networks: Johnson's TransformerNet and the few-shot patch-based generator.

Both are fully convolutional (any H x W whose sides are multiples of 8 give the same size back)
and are written with the export in mind: reflection padding as ``nn.ReflectionPad2d`` with
constant pads (opset 9 writes one ``Pad(mode=reflect)`` with the pads as an attribute), nearest
upsampling by a constant factor 2 (one ``Upsample``), ``InstanceNorm2d`` (``InstanceNormalization``)
and additive skips, so the Barracuda graph holds nothing beyond Pad/Conv/InstanceNormalization/
Relu/Upsample/Add (+ Mul/Tanh for the patch model's [-1, 1] output).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_FILTERS = (32, 64, 128)
FAST_FILTERS = (8, 16, 32)


def parse_filters(value) -> tuple[int, int, int]:
    """``"32,64,128"``, ``[32, 64, 128]`` or ``(8, 16, 32)`` -> a tuple of three channel counts."""
    from recap.errors import InvalidInput

    given = value
    if isinstance(value, str):
        parts = [p for p in value.replace("(", "").replace(")", "").replace(" ", "").split(",")]
        try:
            value = [int(p) for p in parts if p]
        except ValueError as exc:
            raise InvalidInput(f"filters {value!r}: three integers, e.g. 32,64,128") from exc
    out = tuple(int(v) for v in value)
    if len(out) != 3 or min(out) < 1:
        raise InvalidInput(f"filters {given!r}: three positive integers, e.g. 32,64,128")
    return out


def aligned_conv(x: torch.Tensor, conv: nn.Conv2d, multiple: int) -> torch.Tensor:
    """``conv(x)`` computed with its input and output channels zero-padded to ``multiple``.

    The same numbers (the extra channels are zeros in and zero weights, and are sliced off), but a
    GPU's tensor-core convolutions want channel counts that are multiples of 8: with 3 colour
    channels cuDNN falls back to slow "indexed" kernels, which took 37% of a 720p frame.
    """
    x, w, b = _pad_channels(x, conv, multiple)
    y = F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)
    return y[:, : conv.out_channels]


def _pad_channels(x: torch.Tensor, conv: nn.Conv2d, multiple: int):
    """``x`` and ``conv``'s weight and bias with the input and output channels zero-padded to a
    multiple of ``multiple`` (zeros in, zero weights: the extra outputs are sliced off after)."""
    w, b = conv.weight, conv.bias
    pin, pout = -w.shape[1] % multiple, -w.shape[0] % multiple
    if pin:
        x = F.pad(x, (0, 0, 0, 0, 0, pin))
        w = F.pad(w, (0, 0, 0, 0, 0, pin))
    if pout:
        w = F.pad(w, (0, 0, 0, 0, 0, 0, 0, pout))
        b = F.pad(b, (0, pout)) if b is not None else None
    return x, w, b


def _phase_index(k: int, device) -> torch.Tensor:
    """``idx[a, s, m] = 2m + s - a + 1``: which tap of a kernel padded by one zero on each side
    feeds output phase ``a`` from input phase ``s`` at the phase kernel's tap ``m``."""
    a = torch.arange(2, device=device).view(2, 1, 1)
    s = torch.arange(2, device=device).view(1, 2, 1)
    m = torch.arange(k // 2 + 1, device=device).view(1, 1, -1)
    return 2 * m + s - a + 1


def phase_conv(x: torch.Tensor, conv: nn.Conv2d, multiple: int) -> torch.Tensor:
    """A stride-1, odd-kernel, unpadded ``conv(x)`` computed in phase form: ``x`` (even sides)
    split into its four 2x2 phases (``pixel_unshuffle``: 4x the channels, half the sides), one
    convolution with a kernel of ``k // 2 + 1`` taps whose weights are the original taps
    rearranged (and zeros where a phase has no tap), and ``pixel_shuffle`` back.

    The same numbers as the plain convolution. It exists for the 9x9 convolutions next to the
    colour channels (3 -> 32 and 32 -> 3): cuDNN runs those on slow "indexed" kernels even with
    the channels padded to 8, while the phase form is a 5x5 convolution of 16 -> 128 and
    128 -> 16 channels at half the resolution, shapes its tensor-core kernels handle.
    Channels are padded so that 4x them is a multiple of ``multiple``.
    """
    import math

    # 4x the channels after pixel_unshuffle: a multiple of ``multiple`` needs fewer of them here
    x, w, b = _pad_channels(x, conv, max(1, multiple // math.gcd(4, multiple)))
    idx = _phase_index(w.shape[-1], w.device)
    taps = idx.shape[-1]
    # (O, C, a, s, m, b, t, n) -> (O, a, b | C, s, t | m, n): the channel orders of
    # pixel_shuffle (o*4 + a*2 + b) and pixel_unshuffle (c*4 + s*2 + t)
    wp = F.pad(w, (1, 1, 1, 1))[:, :, idx][..., idx]
    wp = wp.permute(0, 2, 5, 1, 3, 6, 4, 7).reshape(4 * w.shape[0], 4 * w.shape[1], taps, taps)
    bp = b.repeat_interleave(4) if b is not None else None
    y = F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(x, 2), wp, bp), 2)
    return y[:, : conv.out_channels]


def reflect_pad_cat(x: torch.Tensor, p: int) -> torch.Tensor:
    """Reflection padding by ``p`` on both spatial sides, built from flipped slices and ``cat``.

    The same numbers as ``nn.ReflectionPad2d(p)``; its backward is slices and adds, where the
    padding op's backward is a scatter-add into zeros (14% of a compiled training step on an H200).
    """
    if not p:
        return x
    x = torch.cat([x[..., 1 : p + 1].flip(-1), x, x[..., -p - 1 : -1].flip(-1)], dim=-1)
    return torch.cat([x[..., 1 : p + 1, :].flip(-2), x, x[..., -p - 1 : -1, :].flip(-2)], dim=-2)


class ConvLayer(nn.Module):
    """Reflection pad + conv (the pad is its own module so opset 9 writes a plain Pad).

    ``align`` (0: off) is the GPU form, which only GPU paths turn on (:func:`gpu_form`), never an
    export, whose graph stays one plain Pad and one Conv: the padding built by
    :func:`reflect_pad_cat` and the conv through :func:`aligned_conv`, or, with ``phase`` on
    and a stride-1 kernel of 5 or more, through :func:`phase_conv`.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.align = 0
        self.phase = False

    def forward(self, x):
        if self.align:
            x = reflect_pad_cat(x, self.pad.padding[0])
            if (
                self.phase
                and self.conv.stride == (1, 1)
                and self.conv.kernel_size[0] >= 5
                and x.shape[-1] % 2 == 0
                and x.shape[-2] % 2 == 0
            ):
                return phase_conv(x, self.conv, self.align)
            return aligned_conv(x, self.conv, self.align)
        return self.conv(self.pad(x))


def gpu_form(model: nn.Module, multiple: int = 8, phase: bool = False) -> nn.Module:
    """Switch ``model`` to the GPU form: every ConvLayer (channels aligned to ``multiple``,
    :func:`reflect_pad_cat`; ``phase``: large stride-1 kernels through :func:`phase_conv`) and
    the loss network's first conv (its 3 colour channels, in ``VGGFeatures``); ``multiple=0``
    switches back. Same numbers. Returns ``model``."""
    from recap.ml.style.losses import VGGFeatures

    for m in model.modules():
        if isinstance(m, ConvLayer | VGGFeatures):
            m.align = multiple
        if isinstance(m, ConvLayer):
            m.phase = bool(phase and multiple)
    return model


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x):
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class UpsampleConv(nn.Module):
    """Nearest upsampling by 2 then a conv: no checkerboard artefacts of a transposed conv."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.conv = ConvLayer(cin, cout, kernel)

    def forward(self, x):
        return self.conv(self.up(x))


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network (0-255 in, about 0-255 out).

    ``filters`` are the encoder's channels (32, 64, 128 as in pytorch/examples; 8, 16, 32 runs
    several times faster in an engine), ``res_blocks`` the residual blocks at the bottleneck and
    ``skips`` adds the encoder's features to the decoder's at the same resolution (U-Net-like,
    additive so the graph stays Add-only).
    """

    def __init__(self, filters=DEFAULT_FILTERS, res_blocks: int = 5, skips: bool = False):
        super().__init__()
        f1, f2, f3 = parse_filters(filters)
        self.filters, self.res_blocks, self.skips = (f1, f2, f3), int(res_blocks), bool(skips)
        self.conv1 = ConvLayer(3, f1, 9)
        self.in1 = nn.InstanceNorm2d(f1, affine=True)
        self.conv2 = ConvLayer(f1, f2, 3, stride=2)
        self.in2 = nn.InstanceNorm2d(f2, affine=True)
        self.conv3 = ConvLayer(f2, f3, 3, stride=2)
        self.in3 = nn.InstanceNorm2d(f3, affine=True)
        self.res = nn.Sequential(*[ResidualBlock(f3) for _ in range(self.res_blocks)])
        self.up1 = UpsampleConv(f3, f2, 3)
        self.in4 = nn.InstanceNorm2d(f2, affine=True)
        self.up2 = UpsampleConv(f2, f1, 3)
        self.in5 = nn.InstanceNorm2d(f1, affine=True)
        self.conv_out = ConvLayer(f1, 3, 9)

    def forward(self, x):
        e1 = F.relu(self.in1(self.conv1(x)))
        e2 = F.relu(self.in2(self.conv2(e1)))
        y = F.relu(self.in3(self.conv3(e2)))
        y = self.res(y)
        y = F.relu(self.in4(self.up1(y)))
        if self.skips:
            y = y + e2
        y = F.relu(self.in5(self.up2(y)))
        if self.skips:
            y = y + e1
        return self.conv_out(y)

    def config(self) -> dict:
        return {
            "arch": "transformer",
            "filters": list(self.filters),
            "res_blocks": self.res_blocks,
            "skips": self.skips,
        }


class PatchNet(nn.Module):
    """The few-shot patch-based generator (after Texler et al. 2020): [-1, 1] in and out.

    A small U-Net-like network: a full-resolution stem, two stride-2 stages, residual blocks,
    upsample + conv back with additive skips, and a tanh output. It is trained on random patches
    of keyframe pairs, so it uses BatchNorm (fixed statistics at inference: a patch and a full
    frame are normalised alike) rather than InstanceNorm, whose statistics would differ between
    a 32 px patch and a 720p frame.
    """

    def __init__(self, filters=(32, 64, 128), res_blocks: int = 3):
        super().__init__()
        f1, f2, f3 = parse_filters(filters)
        self.filters, self.res_blocks = (f1, f2, f3), int(res_blocks)

        def block(cin, cout, k, stride=1):
            return nn.Sequential(ConvLayer(cin, cout, k, stride), nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = block(3, f1, 5)
        self.down1 = block(f1, f2, 3, 2)
        self.down2 = block(f2, f3, 3, 2)
        self.res = nn.Sequential(*[_BNResidual(f3) for _ in range(self.res_blocks)])
        self.up1 = nn.Sequential(UpsampleConv(f3, f2, 3), nn.BatchNorm2d(f2), nn.ReLU())
        self.up2 = nn.Sequential(UpsampleConv(f2, f1, 3), nn.BatchNorm2d(f1), nn.ReLU())
        self.out = ConvLayer(f1, 3, 3)

    def forward(self, x):
        e1 = self.stem(x)
        e2 = self.down1(e1)
        y = self.res(self.down2(e2))
        y = self.up1(y) + e2
        y = self.up2(y) + e1
        return torch.tanh(self.out(y))

    def config(self) -> dict:
        return {"arch": "patch", "filters": list(self.filters), "res_blocks": self.res_blocks}


class _BNResidual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            ConvLayer(channels, channels, 3),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.body(x)


def build(config: dict) -> nn.Module:
    """A network from its ``config()`` (what ``model.pth`` stores)."""
    from recap.errors import InvalidInput

    arch = config.get("arch")
    if arch == "transformer":
        return TransformerNet(config["filters"], config["res_blocks"], config.get("skips", False))
    if arch == "patch":
        return PatchNet(config["filters"], config["res_blocks"])
    raise InvalidInput(f"unknown style arch {arch!r} (transformer, patch)")
