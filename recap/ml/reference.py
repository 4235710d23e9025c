"""A numpy-only reference of the pre- and post-processing, driven by ``model.json``.

This is the code a game-engine port re-implements (in C#, or C++ for LibTorch); parity compares
it, run through onnxruntime, with fastai's ``learn.predict``. Decoding the image file and resizing
(PIL, bilinear, as fastai's ``Resize``) are the only steps not written in numpy: an engine has its
own image decoder, and the bundle's held-out images are already at the model's size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_meta(bundle: str | Path) -> dict:
    return json.loads((Path(bundle) / "model.json").read_text(encoding="utf-8"))


def load_image(path: str | Path, meta: dict) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB at the model's input size."""
    from PIL import Image

    pre = meta["preprocess"]
    h, w = pre["resize"]["size"]
    img = Image.open(path).convert("RGB")
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


def activate(raw: np.ndarray, activation: str) -> np.ndarray:
    raw = raw.astype(np.float32)
    if activation == "softmax":
        e = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-raw))
    return raw


def postprocess(raw: np.ndarray, meta: dict) -> dict:
    """One image's raw model output -> labels / probabilities / key points in pixels."""
    raw = np.asarray(raw, dtype=np.float32).reshape(-1)
    task = meta["task"]
    out = meta["output"]
    if task == "classify":
        probs = activate(raw, out["activation"])
        i = int(probs.argmax())
        return {"label": meta["labels"][i], "index": i, "probabilities": probs}
    if task == "multilabel":
        probs = activate(raw, out["activation"])
        thresh = meta["threshold"]
        return {
            "labels": [lab for lab, p in zip(meta["labels"], probs, strict=True) if p > thresh],
            "probabilities": probs,
        }
    kp = meta["keypoints"]
    w, h = kp["image_size"]
    pts = raw.reshape(-1, 2)
    return {"points": (pts + 1.0) * np.asarray([w, h], np.float32) / 2.0}


class OnnxModel:
    """onnxruntime on CPU for one bundle (deterministic: one thread, no graph rewrites)."""

    def __init__(
        self, bundle: str | Path, meta: dict | None = None, threads: int = 1, optimize: bool = False
    ):
        import onnxruntime as ort

        self.bundle = Path(bundle)
        self.meta = meta or load_meta(bundle)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(
            str(self.bundle / self.meta["model"]), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.meta["input"]["name"]

    def raw(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def predict_file(self, path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
        """(model input, raw output, decoded result) for an image file."""
        x = preprocess(load_image(path, self.meta), self.meta)
        raw = self.raw(x)
        return x, raw, postprocess(raw[0], self.meta)
