"""Pose in torch: the task's decode (equal to ``decode``'s numpy reference), Gaussian targets
rendered from joints inside the loss, visibility-masked losses, batch flips.

Targets stay joints ``(N, K, 3)`` = x, y in input pixels and visibility v (COCO: 0 unlabelled,
1 occluded, 2 visible) until the loss, which draws the Gaussians on the device: a flip or a new
heat-map size never touches stored data.
"""

from __future__ import annotations

import torch
from torch import nn


def decode_argmax(hm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, h, w) -> ((N, K, 2) cells, (N, K) confidence): the numpy reference's rule."""
    n, k, h, w = hm.shape
    hm = hm.float()
    flat = hm.reshape(n, k, h * w)
    idx = flat.argmax(dim=2)  # documented: the first maximal index, as numpy's
    conf = flat.gather(2, idx[..., None])[..., 0]
    y, x = idx // w, idx % w
    right = flat.gather(2, (y * w + (x + 1).clamp(max=w - 1))[..., None])[..., 0]
    left = flat.gather(2, (y * w + (x - 1).clamp(min=0))[..., None])[..., 0]
    down = flat.gather(2, ((y + 1).clamp(max=h - 1) * w + x)[..., None])[..., 0]
    up = flat.gather(2, ((y - 1).clamp(min=0) * w + x)[..., None])[..., 0]
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    zero = torch.zeros((), dtype=torch.float32, device=hm.device)
    xs = x.float() + torch.where(inner_x, torch.sign(right - left) * 0.25, zero)
    ys = y.float() + torch.where(inner_y, torch.sign(down - up) * 0.25, zero)
    return torch.stack([xs, ys], dim=-1), conf


def decode_soft_argmax(hm: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, h, w) -> expected cell coordinates under softmax(beta * hm), in float64."""
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w).double() * float(beta)
    p = torch.softmax(flat, dim=2).reshape(n, k, h, w)
    xs = (p.sum(dim=2) * torch.arange(w, dtype=torch.float64, device=hm.device)).sum(dim=2)
    ys = (p.sum(dim=3) * torch.arange(h, dtype=torch.float64, device=hm.device)).sum(dim=2)
    conf = hm.reshape(n, k, h * w).float().max(dim=2).values
    return torch.stack([xs, ys], dim=-1).float(), conf


def decode(hm: torch.Tensor, rule: str = "argmax", beta: float = 1.0):
    if rule == "argmax":
        return decode_argmax(hm)
    if rule == "soft_argmax":
        return decode_soft_argmax(hm, beta)
    raise ValueError(f"unknown decode rule {rule!r}")


def cells_to_input(cells: torch.Tensor, input_wh, heatmap_wh) -> torch.Tensor:
    scale = torch.tensor(
        [input_wh[0] / heatmap_wh[0], input_wh[1] / heatmap_wh[1]],
        dtype=torch.float32,
        device=cells.device,
    )
    return (cells + 0.5) * scale


def gaussian_targets(joints: torch.Tensor, heatmap_wh, input_wh, sigma: float) -> torch.Tensor:
    """(N, K, 2+) joints in input pixels -> (N, K, h, w) Gaussians of peak 1 at each joint.

    The joint's position in cells is ``x / stride - 0.5`` (the inverse of ``cells_to_input``).
    """
    w, h = heatmap_wh
    sx, sy = input_wh[0] / w, input_wh[1] / h
    cx = joints[..., 0:1, None] / sx - 0.5  # (N, K, 1, 1)
    cy = joints[..., 1:2, None] / sy - 0.5
    xs = torch.arange(w, dtype=torch.float32, device=joints.device).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=torch.float32, device=joints.device).view(1, 1, h, 1)
    d2 = (xs - cx) ** 2 + (ys - cy) ** 2
    return torch.exp(-d2 / (2 * sigma * sigma))


class HeatmapLoss(nn.Module):
    """Mean squared error between predicted heat maps and Gaussian targets, per joint, weighted
    by visibility (joints with v = 0 contribute nothing). Scaled by ``scale`` (heat maps are
    mostly zeros: an unscaled MSE is tiny and makes learning rates awkward)."""

    def __init__(self, input_wh, sigma: float = 2.0, scale: float = 1000.0):
        super().__init__()
        self.input_wh, self.sigma, self.scale = tuple(input_wh), float(sigma), float(scale)

    def forward(self, pred: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        pred = pred.float()
        h, w = pred.shape[-2:]
        target = gaussian_targets(joints, (w, h), self.input_wh, self.sigma)
        weight = (joints[..., 2] > 0).float()  # (N, K)
        per_joint = ((pred - target) ** 2).mean(dim=(2, 3))
        return self.scale * (per_joint * weight).sum() / weight.sum().clamp(min=1)


class RegressionLoss(nn.Module):
    """Visibility-masked MSE on coordinates in [-1, 1] (fastai PointScaler's scale)."""

    def __init__(self, input_wh):
        super().__init__()
        self.input_wh = tuple(input_wh)

    def forward(self, pred: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        n, k = joints.shape[:2]
        wh = torch.tensor(self.input_wh, dtype=torch.float32, device=joints.device)
        target = joints[..., :2] * 2 / wh - 1
        weight = (joints[..., 2] > 0).float()
        d2 = ((pred.float().view(n, k, 2) - target) ** 2).sum(-1)
        return (d2 * weight).sum() / weight.sum().clamp(min=1)


def flip_batch(x: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor, perm) -> tuple:
    """Mirror the images where ``mask`` (N,) is true: pixels flipped left-right, x -> W - x,
    left/right joints swapped by the flip permutation."""
    if not bool(mask.any()):
        return x, joints
    width = x.shape[-1]
    x = torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)
    flipped = joints[:, perm].clone()
    flipped[..., 0] = width - flipped[..., 0]
    joints = torch.where(mask.view(-1, 1, 1), flipped, joints)
    return x, joints


def random_affine(
    x: torch.Tensor, joints: torch.Tensor, rot: torch.Tensor, scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each image by ``rot`` (radians, (N,)) and scale it by ``scale`` (N,) about its
    centre (SimpleBaseline's augmentation), joints moved alike; joints leaving the frame become
    unlabelled (v = 0).

    In pixels, output -> input is ``p_in = R(rot) (p_out - c) / scale + c``; affine_grid works in
    [-1, 1] coordinates, hence ``D^-1 R D / scale`` with ``D = diag(W/2, H/2)``.
    """
    import torch.nn.functional as F

    n, _, h, w = x.shape
    cos, sin = torch.cos(rot), torch.sin(rot)
    ax, ay = w / 2, h / 2
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = cos / scale
    theta[:, 0, 1] = -sin * (ay / ax) / scale
    theta[:, 1, 0] = sin * (ax / ay) / scale
    theta[:, 1, 1] = cos / scale
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # joints: p_out = c + scale * R(rot)^T (p_in - c)
    dx, dy = joints[..., 0] - ax, joints[..., 1] - ay
    c, s, k = cos[:, None], sin[:, None], scale[:, None]
    nx = ax + k * (c * dx + s * dy)
    ny = ay + k * (-s * dx + c * dy)
    inside = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h)
    v = torch.where(inside, joints[..., 2], torch.zeros_like(joints[..., 2]))
    return x, torch.stack([nx, ny, v], dim=-1)
