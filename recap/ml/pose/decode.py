"""The numpy-only reference of pose decoding, driven by ``model.json``: what a port re-implements.

The exported network ends at the heat maps (K x h x w per image) or, for the regression head, at
2K coordinates in [-1, 1]; no ArgMax in the graph (Barracuda lacks it). Decoding:

- ``argmax``: the first maximum of each heat map (row-major, as numpy's and torch's argmax), then
  a quarter-pixel shift toward the higher neighbour in x and in y separately; no shift on the
  border (a neighbour is missing) or when both neighbours are equal. Confidence: the maximum.
- ``soft_argmax``: the expectation of the pixel grid under ``softmax(beta * heatmap)``, computed
  in float64. Confidence: the maximum of the heat map.

Heat-map cell (i, j) covers input pixels [j*sx, (j+1)*sx) x [i*sy, (i+1)*sy): its centre is at
``((j + 0.5) * sx, (i + 0.5) * sy)`` with ``sx = input_w / w``. Coordinates are continuous
(pixel i covers [i, i+1), as COCO's), and the crop's box maps them back to the source image.
"""

from __future__ import annotations

import numpy as np

RULES = ("argmax", "soft_argmax")


def decode_argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, h, w) heat maps -> ((K, 2) x, y in heat-map cells, (K,) confidence), float32."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    k, h, w = hm.shape
    flat = hm.reshape(k, h * w)
    idx = flat.argmax(axis=1)
    conf = flat[np.arange(k), idx]
    y, x = idx // w, idx % w
    rows = np.arange(k)
    # neighbours clipped to the map; the shift is masked off where one is missing
    dx = hm[rows, y, np.minimum(x + 1, w - 1)] - hm[rows, y, np.maximum(x - 1, 0)]
    dy = hm[rows, np.minimum(y + 1, h - 1), x] - hm[rows, np.maximum(y - 1, 0), x]
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    quarter = np.float32(0.25)
    xs = x.astype(np.float32) + np.where(inner_x, np.sign(dx).astype(np.float32) * quarter, 0)
    ys = y.astype(np.float32) + np.where(inner_y, np.sign(dy).astype(np.float32) * quarter, 0)
    return np.stack([xs, ys], axis=1).astype(np.float32), conf.astype(np.float32)


def decode_soft_argmax(heatmaps: np.ndarray, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(K, h, w) -> ((K, 2) expected x, y in heat-map cells, (K,) max value), float32."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    k, h, w = hm.shape
    flat = hm.reshape(k, h * w).astype(np.float64) * float(beta)
    flat = flat - flat.max(axis=1, keepdims=True)
    p = np.exp(flat)
    p = p / p.sum(axis=1, keepdims=True)
    p = p.reshape(k, h, w)
    xs = (p.sum(axis=1) * np.arange(w, dtype=np.float64)).sum(axis=1)
    ys = (p.sum(axis=2) * np.arange(h, dtype=np.float64)).sum(axis=1)
    conf = hm.reshape(k, -1).max(axis=1)
    return np.stack([xs, ys], axis=1).astype(np.float32), conf.astype(np.float32)


def decode_heatmaps(heatmaps: np.ndarray, rule: str = "argmax", beta: float = 1.0):
    if rule == "argmax":
        return decode_argmax(heatmaps)
    if rule == "soft_argmax":
        return decode_soft_argmax(heatmaps, beta)
    raise ValueError(f"unknown decode rule {rule!r} ({', '.join(RULES)})")


def cells_to_input(cells: np.ndarray, input_wh, heatmap_wh) -> np.ndarray:
    """Heat-map cell coordinates -> input pixels (cell centres at +0.5, times the stride)."""
    sx = np.float32(input_wh[0] / heatmap_wh[0])
    sy = np.float32(input_wh[1] / heatmap_wh[1])
    out = np.empty_like(cells, dtype=np.float32)
    out[..., 0] = (cells[..., 0] + np.float32(0.5)) * sx
    out[..., 1] = (cells[..., 1] + np.float32(0.5)) * sy
    return out


def regression_to_input(raw: np.ndarray, input_wh) -> np.ndarray:
    """Regression output (2K,) in [-1, 1] (fastai PointScaler) -> (K, 2) input pixels."""
    pts = np.asarray(raw, dtype=np.float32).reshape(-1, 2)
    return (pts + np.float32(1)) * np.asarray(input_wh, np.float32) / np.float32(2)


def input_to_source(points: np.ndarray, crop_box, input_wh) -> np.ndarray:
    """Input pixels -> source-image pixels through the crop box ``[x0, y0, w, h]``."""
    x0, y0, bw, bh = (float(v) for v in crop_box)
    out = np.asarray(points, dtype=np.float32).copy()
    out[..., 0] = out[..., 0] * np.float32(bw / input_wh[0]) + np.float32(x0)
    out[..., 1] = out[..., 1] * np.float32(bh / input_wh[1]) + np.float32(y0)
    return out


def postprocess(raw: np.ndarray, meta: dict, crop_box=None) -> dict:
    """One image's raw output -> joints in input pixels (and source pixels given the crop box).

    ``meta`` is the ``model.json`` dict; its ``pose`` section names the head, decode rule,
    heat-map size and confidence threshold.
    """
    pose = meta["pose"]
    iw, ih = pose["input_size"]
    if pose["head"] == "regression":
        pts = regression_to_input(raw, (iw, ih))
        conf = np.ones(len(pts), np.float32)
    else:
        hw, hh = pose["heatmap_size"]
        hm = np.asarray(raw, dtype=np.float32).reshape(-1, hh, hw)
        cells, conf = decode_heatmaps(hm, pose["decode"]["rule"], pose["decode"].get("beta", 1.0))
        pts = cells_to_input(cells, (iw, ih), (hw, hh))
    out = {
        "points": pts,
        "confidence": conf,
        "visible": conf >= np.float32(pose["threshold"]),
    }
    if crop_box is not None:
        out["source_points"] = input_to_source(pts, crop_box, (iw, ih))
    return out


def preprocess(pixels: np.ndarray, meta: dict) -> np.ndarray:
    """An HxWx3 uint8 RGB crop (already at the input size) -> the (1, 3, H, W) float32 input."""
    pre = meta["preprocess"]
    x = pixels.astype(np.float32) * np.float32(pre["scale"])
    if pre.get("channel_order", "RGB") == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def load_crop(path, meta: dict) -> np.ndarray:
    """A crop file as HxWx3 uint8 (a port crops and resizes with its own image code)."""
    from PIL import Image

    w, h = meta["pose"]["input_size"]
    img = Image.open(path).convert("RGB")
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)
