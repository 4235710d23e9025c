"""The perceptual loss: VGG16/VGG19 features (torchvision's definitions), gram matrices, TV.

The weights are ImageNet's and no registry package ships them, so they come from the local torch
hub cache (``<torch hub dir>/checkpoints/vgg16-397923af.pth``, the file torchvision itself would
download) or from an explicit ``vgg_weights`` path; when neither is there the run stops with one
line naming the file looked for. ``perceptual="random"`` builds a randomly initialised VGG (it still
produces textures, but the result is not comparable with a real run): only when asked for, and the
run records it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from recap.errors import NotFound

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# pytorch/examples' fast_neural_style defaults
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu2_2"
CONTENT_WEIGHT = 1e5
STYLE_WEIGHT = 1e10


def vgg_layer_names(features: nn.Sequential) -> list[str]:
    """``conv1_1``, ``relu1_1``, ``pool1``, ... per module of a torchvision VGG ``features``."""
    names, block, conv = [], 1, 0
    for m in features:
        if isinstance(m, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(m, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(m, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            names.append(f"other{len(names)}")
    return names


def weights_file(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` in the local torch hub cache."""
    from torchvision.models import VGG16_Weights, VGG19_Weights

    url = {"vgg16": VGG16_Weights.IMAGENET1K_V1, "vgg19": VGG19_Weights.IMAGENET1K_V1}[arch].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _checked_sha256(path: Path) -> str:
    """The file's sha256. A file named as torchvision names its downloads
    (``vgg16-397923af.pth``: the first hex digits of its sha256) must match that prefix, as
    torchvision itself checks: a partial copy or another file under that name is refused."""
    import hashlib
    import re

    from recap.errors import InvalidInput

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    m = re.fullmatch(r"[a-z0-9_]+-([0-9a-f]{8,})\.pth", path.name)
    if m and not digest.startswith(m.group(1)):
        raise InvalidInput(
            f"{path}: its sha256 starts {digest[:8]}, its name says {m.group(1)} "
            "(a partial copy or another file): copy torchvision's file again"
        )
    return digest


def _vgg_features(arch: str, init: bool) -> nn.Sequential:
    """torchvision's VGG conv stack (its ``cfgs`` and ``make_layers``) without the 120 M-parameter
    classifier, which the loss never uses; ``init``: torchvision's own initialisation."""
    from torchvision.models import vgg

    features = vgg.make_layers(vgg.cfgs[{"vgg16": "D", "vgg19": "E"}[arch]])
    if init:
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
    return features


class VGGFeatures(nn.Module):
    """The ReLU outputs of a VGG's conv stack, up to the deepest layer asked for; frozen, eval.

    Takes images in [0, 1] (RGB, NCHW) and applies the ImageNet normalisation itself.
    """

    def __init__(
        self,
        arch: str = "vgg16",
        layers=STYLE_LAYERS,
        weights: str | Path | None = None,
        random_init: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        from recap.errors import InvalidInput

        if arch not in ("vgg16", "vgg19"):
            raise InvalidInput(f"perceptual network {arch!r}: vgg16 or vgg19")
        if random_init:
            # seeded on its own so the same run seed gives the same random features
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                features = _vgg_features(arch, init=True)
            self.source, self.sha256 = "random", None
        else:
            path = Path(weights).expanduser() if weights else weights_file(arch)
            if not path.is_file():
                raise NotFound(
                    f"no {arch} ImageNet weights at {path} (put the file there, pass "
                    f"vgg_weights=PATH, or perceptual=random for a not-comparable run)"
                )
            self.sha256 = _checked_sha256(path)
            features = _vgg_features(arch, init=False)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                features.load_state_dict(
                    {
                        k[len("features.") :]: v
                        for k, v in state.items()
                        if k.startswith("features.")
                    }
                )
            except Exception as exc:  # noqa: BLE001 - pickle, zip, key and shape errors alike
                why = (
                    str(exc).strip().splitlines()[0][:160]
                    if str(exc).strip()
                    else type(exc).__name__
                )
                raise InvalidInput(
                    f"{path} is not {arch}'s ImageNet state dict (torchvision's keys "
                    f"features.N.weight/bias): {why}"
                ) from None
            self.source = str(path)
        names = vgg_layer_names(features)
        self.layers = list(layers)
        unknown = [n for n in self.layers if n not in names]
        if unknown:
            raise InvalidInput(f"unknown {arch} layer(s) {', '.join(unknown)} (e.g. relu2_2)")
        last = max(names.index(n) for n in self.layers)
        self.features = features[: last + 1].eval()
        self.index = {names.index(n): n for n in self.layers}
        self.stop = {n: i for i, n in self.index.items()}
        for p in self.parameters():
            p.requires_grad_(False)
        self.align = 0  # nets.gpu_form sets it: the first conv's 3 input channels padded
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True):  # always eval: no dropout/BN in features, but be explicit
        return super().train(False)

    def forward(self, x, upto: str | None = None) -> dict[str, torch.Tensor]:
        """{layer: features}; ``upto`` stops after that layer (the content image needs only the
        content layer: relu2_2 is a third of the work of relu4_3)."""
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        stop = self.stop[upto] if upto else len(self.features) - 1
        out = {}
        for i, m in enumerate(self.features):
            if i == 0 and self.align:
                from recap.ml.style.nets import aligned_conv

                x = aligned_conv(x, m, self.align)  # 3 colour channels: see aligned_conv
            else:
                x = m(x)
            if i in self.index:
                out[self.index[i]] = x
            if i == stop:
                break
        return out


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix of NCHW features, normalised by C*H*W (as pytorch/examples)."""
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def tv_loss(y: torch.Tensor) -> torch.Tensor:
    """Total variation (mean absolute difference of neighbouring pixels)."""
    return (y[..., 1:, :] - y[..., :-1, :]).abs().mean() + (
        y[..., :, 1:] - y[..., :, :-1]
    ).abs().mean()


class PerceptualLoss(nn.Module):
    """Content + style (+ TV) loss of Johnson et al.: returns (total, parts dict of floats-tensors).

    Inputs to ``forward`` are in [0, 1]. ``style_image`` (1x3xHxW in [0, 1]) sets the target grams.
    """

    def __init__(
        self,
        vgg: VGGFeatures,
        style_image: torch.Tensor,
        style_layers=STYLE_LAYERS,
        content_layer: str = CONTENT_LAYER,
        content_weight: float = CONTENT_WEIGHT,
        style_weight: float = STYLE_WEIGHT,
        tv_weight: float = 0.0,
        layer_weights=None,
    ):
        super().__init__()
        self.vgg = vgg
        self.style_layers = list(style_layers)
        self.content_layer = content_layer
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self.tv_weight = float(tv_weight)
        self.layer_weights = list(layer_weights or [1.0] * len(self.style_layers))
        with torch.no_grad():
            feats = vgg(style_image)
            for name in self.style_layers:
                self.register_buffer(f"gram_{name}", gram(feats[name].float()))

    def forward(self, y: torch.Tensor, x: torch.Tensor, content_feats: dict | None = None):
        fy = self.vgg(y)
        if content_feats is None:
            with torch.no_grad():
                content_feats = self.vgg(x, upto=self.content_layer)
        content = F.mse_loss(
            fy[self.content_layer].float(), content_feats[self.content_layer].float()
        )
        style = y.new_zeros((), dtype=torch.float32)
        for w, name in zip(self.layer_weights, self.style_layers, strict=True):
            # no .float() here: under autocast bmm runs in bf16/fp16 whatever its inputs are, so
            # a cast would only add a copy of the largest feature maps (relu1_2: 64 x H x W)
            g = gram(fy[name])
            target = getattr(self, f"gram_{name}")
            style = style + w * F.mse_loss(g, target.expand_as(g))
        c, s = self.content_weight * content, self.style_weight * style
        total = c + s
        tv = y.new_zeros((), dtype=torch.float32)
        if self.tv_weight:
            tv = self.tv_weight * tv_loss(y.float())
            total = total + tv
        return total, {"content_loss": c, "style_loss": s, "tv_loss": tv}
