"""The style task's section of ``model.json`` and its numpy-only pre/post-processing.

What an engine port re-implements: RGB bytes -> ``x = pixels * scale + offset`` (0-255 models:
scale 1, offset 0; [-1, 1] models: scale 2/255, offset -1), NCHW float32; sides brought to the
model's multiple by reflection padding (cropped off again after); output ->
``pixels = (y - offset) / scale``, clamped to 0-255 and rounded.
"""

from __future__ import annotations

import numpy as np

RANGES = {
    "0-255": {"range": [0.0, 255.0], "scale": 1.0, "offset": 0.0},
    "-1-1": {"range": [-1.0, 1.0], "scale": 2.0 / 255.0, "offset": -1.0},
}
FIXED_SIZE = (960, 540)  # (W, H) the Barracuda profile is fed at


def section(value_range: str, size_multiple: int, fixed: tuple[int, int] | None) -> dict:
    """The style task's model.json fields (input, preprocess, output, postprocess)."""
    r = RANGES[value_range]
    if fixed:
        w, h = fixed
        shape = [1, 3, h, w]
    else:
        shape = [1, 3, "height", "width"]
    return {
        "task": "style",
        "input": {
            "name": "input",
            "shape": shape,
            "dtype": "float32",
            "layout": "NCHW",
            "dynamic": [] if fixed else ["height", "width"],
        },
        "output": {"name": "output", "shape": list(shape), "dtype": "float32", "layout": "NCHW"},
        "preprocess": {
            "channel_order": "RGB",
            "value_range": r["range"],
            "scale": r["scale"],
            "offset": r["offset"],
            "formula": "x = pixel * scale + offset (pixel in 0..255)",
            "size_multiple": size_multiple,
            "fit": "fixed: resize to input.shape; else reflect-pad each side up to a multiple of "
            "size_multiple (bottom/right), cropped off after",
            "fixed_size": list(fixed) if fixed else None,
        },
        "postprocess": {
            "value_range": r["range"],
            "formula": "pixel = (y - offset) / scale",
            "clamp": [0, 255],
            "round": "nearest",
        },
    }


def pad_to_multiple(pixels: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = pixels.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    return pixels, (h, w)


def preprocess(pixels: np.ndarray, meta: dict) -> np.ndarray:
    """HxWx3 uint8 RGB (already at the model's size or a multiple) -> (1, 3, H, W) float32."""
    pre = meta["preprocess"]
    x = pixels.astype(np.float32) * np.float32(pre["scale"]) + np.float32(pre["offset"])
    if pre.get("channel_order", "RGB") == "BGR":
        x = x[..., ::-1]
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def postprocess_float(raw: np.ndarray, meta: dict) -> np.ndarray:
    """(1, 3, H, W) model output -> HxWx3 float32 pixels in 0..255 (clamped, not rounded)."""
    pre = meta["preprocess"]
    y = np.asarray(raw, np.float32)[0].transpose(1, 2, 0)
    if pre.get("channel_order", "RGB") == "BGR":
        y = y[..., ::-1]
    y = (y - np.float32(pre["offset"])) / np.float32(pre["scale"])
    lo, hi = meta["postprocess"]["clamp"]
    return np.clip(y, lo, hi)


def postprocess(raw: np.ndarray, meta: dict) -> np.ndarray:
    """(1, 3, H, W) model output -> HxWx3 uint8 RGB."""
    return np.rint(postprocess_float(raw, meta)).astype(np.uint8)


def run_frame(pixels: np.ndarray, meta: dict, raw_fn) -> np.ndarray:
    """One frame through ``raw_fn`` (a (1,3,H,W) float32 -> same callable) with the bundle's
    pre/post-processing; returns uint8 RGB at the frame's own size."""
    multiple = int(meta["preprocess"].get("size_multiple") or 1)
    padded, (h, w) = pad_to_multiple(pixels, multiple)
    out = postprocess(raw_fn(preprocess(padded, meta)), meta)
    return out[:h, :w]
