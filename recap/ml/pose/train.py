"""Training pieces for pose: in-memory batches with flip augmentation, the learner, predictions.

Crops are decoded once into a uint8 tensor and cut into batches on the device (as the core's
``TensorBatches``); a training batch mirrors each image with probability 1/2, swapping left and
right joints by the skeleton's flip pairs, then rotates and scales it at random (SimpleBaseline's
augmentation), the joints moved alike. Targets stay joints (N, K, 3): the loss draws the
Gaussians, so flips and heat-map sizes never touch stored data.
"""

from __future__ import annotations

import numpy as np
import torch

from recap.ml.pose import torch_ops
from recap.ml.pose.data import PoseSet, load_pixels


def channel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (N, 3, H, W) uint8 crops scaled to [0, 1]."""
    # exact integer sums over chunks: no float64 copy of the whole set (20,000 crops: 24 GB)
    n = pixels.shape[0] * pixels.shape[2] * pixels.shape[3]
    s1 = np.zeros(3, np.int64)
    s2 = np.zeros(3, np.int64)
    for i in range(0, len(pixels), 64):
        a = pixels[i : i + 64].astype(np.int64)
        s1 += a.sum(axis=(0, 2, 3))
        s2 += (a * a).sum(axis=(0, 2, 3))
    mean = s1 / n / 255.0
    var = (s2 / n - (s1 / n) ** 2) / 255.0**2
    std = np.sqrt(np.maximum(var, 1e-12))
    return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in std]


class PoseBatches:
    """Batches of normalised crops and their joints, flipped at random while training."""

    def __init__(
        self,
        x: torch.Tensor,
        joints: torch.Tensor,
        mean,
        std,
        bs: int,
        shuffle: bool,
        flip_perm=None,
        seed: int = 0,
        rotate: float = 0.0,
        scale: float = 0.0,
    ):
        self.x, self.y, self.bs, self.shuffle = x, joints, bs, shuffle
        self.drop_last = shuffle and len(x) > bs
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.flip_perm = flip_perm if shuffle else None
        # random rotation (degrees, +-) and scale (1 +- scale) of training crops; 0: none
        self.rotate, self.scale = (rotate, scale) if shuffle else (0.0, 0.0)
        self.gen = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")
        self.n = len(x)

    def to(self, device):
        self.device = torch.device(device)
        self.x, self.y = self.x.to(self.device), self.y.to(self.device)
        self.mean, self.std = self.mean.to(self.device), self.std.to(self.device)
        return self

    def __len__(self):
        return self.n // self.bs if self.drop_last else -(-self.n // self.bs)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.gen) if self.shuffle else torch.arange(self.n)
        for i in range(len(self)):
            idx = order[i * self.bs : (i + 1) * self.bs]
            if self.flip_perm is not None:
                flip = torch.rand(len(idx), generator=self.gen) < 0.5
            if self.rotate or self.scale:
                u = torch.rand(2, len(idx), generator=self.gen) * 2 - 1
                rot = (u[0] * self.rotate * torch.pi / 180).to(self.device)
                sc = (1 + u[1] * self.scale).to(self.device)
            idx = idx.to(self.device)
            xb = (self.x[idx].float() / 255 - self.mean) / self.std
            yb = self.y[idx]
            if self.flip_perm is not None:
                xb, yb = torch_ops.flip_batch(xb, yb, flip.to(self.device), self.flip_perm)
            if self.rotate or self.scale:
                xb, yb = torch_ops.random_affine(xb, yb, rot, sc)
            yield xb, yb


def dataloaders(ps: PoseSet, mean, std, bs: int, device: str, seed: int = 0, flip: bool = True):
    from fastai.data.core import DataLoaders

    loaders = []
    for split, shuffle in (("train", True), ("valid", False)):
        sub = ps.subset(split)
        loaders.append(
            PoseBatches(
                torch.from_numpy(load_pixels(sub.files)),
                torch.from_numpy(sub.joints),
                mean,
                std,
                bs,
                shuffle,
                ps.skeleton.flip_perm if flip else None,
                seed,
            )
        )
    return DataLoaders(*loaders, device=torch.device(device))


def to_input_px(out: torch.Tensor, arch: dict, rule: str = "argmax", beta: float = 1.0):
    """Raw network output -> ((N, K, 2) input pixels, (N, K) confidence), the task's decode."""
    w, h = arch["input_size"]
    if arch["head"] == "regression":
        n = out.shape[0]
        pts = (out.float().view(n, -1, 2) + 1) * torch.tensor([w / 2, h / 2], device=out.device)
        return pts, torch.ones(pts.shape[:2], device=out.device)
    cells, conf = torch_ops.decode(out, rule, beta)
    return torch_ops.cells_to_input(cells, (w, h), (out.shape[-1], out.shape[-2])), conf


def px_error_metric(arch: dict):
    """A fastai metric: mean pixel distance over labelled joints, through the task's decode."""

    def px_error(pred, targ):
        pts, _ = to_input_px(pred.detach(), arch)
        d = (pts - targ[..., :2]).norm(dim=-1)
        m = targ[..., 2] > 0
        return d[m].mean() if bool(m.any()) else d.sum() * 0

    return px_error


def loss_for(arch: dict, sigma: float):
    if arch["head"] == "regression":
        return torch_ops.RegressionLoss(arch["input_size"])
    return torch_ops.HeatmapLoss(arch["input_size"], sigma=sigma)


@torch.no_grad()
def predict(model, pixels: np.ndarray, mean, std, arch: dict, rule="argmax", beta=1.0, bs=64):
    """(N, 3, H, W) uint8 -> (raw outputs, (N, K, 2) input pixels, (N, K) confidence)."""
    model = model.eval()
    dev = next(model.parameters()).device
    m = torch.tensor(mean, device=dev).view(1, 3, 1, 1)
    s = torch.tensor(std, device=dev).view(1, 3, 1, 1)
    raws, pts, confs = [], [], []
    for i in range(0, len(pixels), bs):
        x = torch.from_numpy(pixels[i : i + bs]).to(dev)
        out = model((x.float() / 255 - m) / s).float()
        p, c = to_input_px(out, arch, rule, beta)
        raws.append(out.cpu().numpy())
        pts.append(p.cpu().numpy())
        confs.append(c.cpu().numpy())
    return np.concatenate(raws), np.concatenate(pts), np.concatenate(confs)
