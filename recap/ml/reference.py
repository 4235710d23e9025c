"""A numpy-only reference of the image pre-processing, driven by ``model.json``.

This is the code a game-engine port re-implements (in C#, or C++ for LibTorch); parity compares
it, run through each target, with the training framework's own prediction. Decoding the image
file and resizing (PIL, bilinear, as fastai's ``Resize``) are the only steps not written in
numpy: an engine has its own image decoder. Each task's post-processing is its ``postprocess``
(``recap.ml.tasks.<task>``); :func:`postprocess` finds it from ``model.json``'s ``task``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_meta(bundle: str | Path) -> dict:
    return json.loads((Path(bundle) / "model.json").read_text(encoding="utf-8"))


def load_image(path: str | Path, meta: dict) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB, at the model's input size when model.json fixes one."""
    from PIL import Image

    resize = meta["preprocess"].get("resize")
    img = Image.open(path).convert("RGB")
    if resize:
        h, w = resize["size"]
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def preprocess(pixels: np.ndarray, meta: dict) -> np.ndarray:
    """HxWx3 uint8 RGB -> the model input (1, 3, H, W) float32."""
    pre = meta["preprocess"]
    x = pixels.astype(np.float32) * np.float32(pre["scale"])
    if pre.get("channel_order", "RGB") == "BGR":
        x = x[..., ::-1]
    if pre.get("mean") is not None:
        x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def postprocess(outputs, meta: dict) -> dict:
    """One image's raw outputs (a list, or one array) -> the task's decoded results."""
    from recap.ml.tasks import get_task

    if isinstance(outputs, np.ndarray):
        outputs = [outputs]
    return get_task(meta["task"]).postprocess(list(outputs), meta)
