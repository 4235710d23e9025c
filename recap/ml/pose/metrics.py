"""The field's pose metrics, in numpy: PCK, COCO OKS AP (pycocotools), pixel error, and the
mean-pose sanity check.

Shapes: predictions and truth ``(N, K, 2)`` in pixels of one frame (input or source), visibility
``(N, K)`` (COCO's v: only v > 0 joints count), person boxes ``(N, 4)`` as ``[x, y, w, h]`` in the
same frame.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

# A pose model must get at least MARGIN more of the joints right (PCK@0.1) than the mean pose.
MARGIN = 0.1


def box_size(boxes: np.ndarray) -> np.ndarray:
    """The PCK normaliser: the longer side of each person box."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.maximum(boxes[:, 2], boxes[:, 3])


def pck(pred, truth, vis, boxes, alpha: float) -> dict:
    """Percentage of correct key points: distance <= alpha * box size; per joint and mean.

    ``per_joint`` holds NaN for a joint never labelled; ``mean`` is over all labelled joints.
    """
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(truth, np.float64), axis=-1)
    ok = d <= alpha * box_size(boxes)[:, None]
    m = np.asarray(vis) > 0
    count = m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = np.where(count > 0, (ok & m).sum(axis=0) / np.maximum(count, 1), np.nan)
    mean = float((ok & m).sum() / m.sum()) if m.sum() else float("nan")
    return {"per_joint": per_joint, "mean": mean}


def pixel_error(pred, truth, vis) -> float:
    """Mean distance in pixels over the labelled joints."""
    d = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(truth, np.float64), axis=-1)
    m = np.asarray(vis) > 0
    return float(d[m].mean()) if m.any() else float("nan")


def oks_ap(pred, scores, truth, vis, boxes, sigmas, areas=None) -> dict:
    """COCO key-point AP through pycocotools' COCOeval (``iouType='keypoints'``).

    One person per image; ``areas`` default to the box areas (COCO uses segment areas, which a
    rendered set may not have). ``sigmas`` are the per-joint OKS falloffs (COCO's for 17 joints).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    vis, boxes = np.asarray(vis), np.asarray(boxes, np.float64)
    n, k = truth.shape[:2]
    areas = boxes[:, 2] * boxes[:, 3] if areas is None else np.asarray(areas, np.float64)
    images, anns, dets = [], [], []
    for i in range(n):
        images.append({"id": i + 1, "width": 1, "height": 1})
        kp = np.concatenate([truth[i], vis[i][:, None].astype(np.float64)], axis=1)
        kp[vis[i] <= 0, :2] = 0
        anns.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": boxes[i].tolist(),
                "area": float(areas[i]),
                "iscrowd": 0,
                "keypoints": kp.reshape(-1).tolist(),
                "num_keypoints": int((vis[i] > 0).sum()),
            }
        )
        dkp = np.concatenate([pred[i], np.ones((k, 1))], axis=1)
        dets.append(
            {
                "image_id": i + 1,
                "category_id": 1,
                "keypoints": dkp.reshape(-1).tolist(),
                "score": float(scores[i]),
            }
        )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": [str(j) for j in range(k)]}],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {"oks_ap": float(s[0]), "oks_ap50": float(s[1]), "oks_ap75": float(s[2])}


def normalise(points, boxes) -> np.ndarray:
    """Pixels -> box coordinates: (x - x0) / w, (y - y0) / h."""
    p = np.asarray(points, np.float64)
    b = np.asarray(boxes, np.float64)[:, None, :]
    return (p - b[..., :2]) / b[..., 2:]


def denormalise(norm, boxes) -> np.ndarray:
    b = np.asarray(boxes, np.float64)[:, None, :]
    return np.asarray(norm, np.float64) * b[..., 2:] + b[..., :2]


def mean_pose(points, vis, boxes) -> np.ndarray:
    """The training set's mean pose (K, 2) in normalised box coordinates (labelled joints only)."""
    norm = normalise(points, boxes)
    m = (np.asarray(vis) > 0)[..., None]
    count = m.sum(axis=0)
    mean = (norm * m).sum(axis=0) / np.maximum(count, 1)
    return np.where(count > 0, mean, 0.5)


def compare_mean_pose(pred, truth, vis, boxes, mean_norm, margin: float = MARGIN) -> dict:
    """The model against "always predict the training mean pose" placed in each person box.

    Errors are in normalised box units (distance / box size), so big and small figures count
    alike. The verdict is on PCK@0.1, the field's measure: the model is sane when it gets at
    least ``margin`` more of the joints within a tenth of the box than the mean pose does. (The
    mean error, the key-point family's yardstick, is reported too; with many joints it is ruled
    by a few left/right swaps in side and back views, which a model that learned one pose never
    makes and a good small model still does.)
    """
    n = len(truth)
    truth = np.asarray(truth, np.float64)
    base_px = denormalise(np.broadcast_to(mean_norm, (n, *np.shape(mean_norm))), boxes)
    size = box_size(boxes)[:, None]
    m = np.asarray(vis) > 0
    d_model = np.linalg.norm(np.asarray(pred, np.float64) - truth, axis=-1) / size
    d_base = np.linalg.norm(base_px - truth, axis=-1) / size
    model_err = float(d_model[m].mean()) if m.any() else float("nan")
    base_err = float(d_base[m].mean()) if m.any() else float("nan")
    pck_model = pck(pred, truth, vis, boxes, 0.1)["mean"]
    pck_base = pck(base_px, truth, vis, boxes, 0.1)["mean"]
    return {
        "pose_error_norm": model_err,
        "mean_pose_error_norm": base_err,
        "pose_vs_mean_ratio": base_err / model_err if model_err > 0 else 1e9,
        "mean_pose_pck@0.1": pck_base,
        "pck_gain_over_mean_pose": pck_model - pck_base,
        "pose_sane": bool(pck_model - pck_base >= margin),
        "margin": margin,
    }


def sanity_message(result: dict) -> str:
    return (
        f"pose model PCK@0.1 is only {result['pck_gain_over_mean_pose']:+.3f} over always "
        f"predicting the training mean pose ({result['mean_pose_pck@0.1']:.3f}; needs "
        f"+{result['margin']:g}): it may have learned one pose"
    )
