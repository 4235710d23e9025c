"""Key-point sanity: is the model better than "always predict the training mean"?

A key-point model that learned one spot has a small loss on data whose points sit near the
middle, so the loss alone hides it. The honest yardstick is the constant predictor: the mean of
the training key points. A model that is not at least ``factor`` times better is flagged.
"""

from __future__ import annotations

import numpy as np

FACTOR = 2.0


def compare(
    pred_px: np.ndarray, true_px: np.ndarray, train_mean_px: np.ndarray, factor: float = FACTOR
) -> dict:
    """Mean pixel error of the model and of the mean baseline over (N, k, 2) key points."""
    model_err = float(np.linalg.norm(pred_px - true_px, axis=-1).mean())
    base_err = float(np.linalg.norm(train_mean_px[None] - true_px, axis=-1).mean())
    ratio = base_err / model_err if model_err > 0 else 1e9
    ok = base_err >= factor * model_err and base_err > 0
    return {
        "keypoint_error_px": model_err,
        "baseline_error_px": base_err,
        "keypoint_vs_mean_ratio": ratio,
        "keypoint_sane": ok,
        "factor": factor,
    }


def message(result: dict) -> str:
    return (
        f"key-point model error {result['keypoint_error_px']:.2f} px is not "
        f"{result['factor']:g}x better than always predicting the training mean "
        f"({result['baseline_error_px']:.2f} px): it may have learned one spot"
    )
