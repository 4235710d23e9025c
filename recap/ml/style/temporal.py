"""Temporal stability of a stylised clip, and the "palette only" rule.

Warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): the optical
flow between consecutive *input* frames (OpenCV's Farneback: no weights needed) warps stylised
frame t onto frame t+1; the error is the mean squared RGB difference (values in [0, 1]) over the
pixels that are not occluded (forward-backward flow consistency, as Lai et al. and Ruder et al.),
averaged over the frame pairs. The same is measured on the input clip itself, and the stylised
clip's figure is reported relative to it (1.0: as stable as the input). The mean absolute frame
difference is the plain flicker figure beside it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense flow from RGB frame ``a`` to ``b`` (HxWx2, pixels): a(x) ~ b(x + flow(x))."""
    import cv2

    return cv2.calcOpticalFlowFarneback(_gray(a), _gray(b), None, **FARNEBACK)


def _remap(img: np.ndarray, f: np.ndarray) -> np.ndarray:
    """img sampled at x + f(x) (bilinear, border replicated)."""
    import cv2

    h, w = f.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        img, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def pair_geometry(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(backward flow b -> a, non-occlusion mask on b's grid) from two input frames."""
    if np.array_equal(a, b):  # no motion at all (Farneback would still return sub-pixel noise)
        return np.zeros((*a.shape[:2], 2), np.float32), np.ones(a.shape[:2], bool)
    back = flow(b, a)  # for each pixel of b, where it was in a
    fwd = flow(a, b)
    fwd_at = _remap(fwd, back)
    diff = back + fwd_at
    mag = (back**2).sum(-1) + (fwd_at**2).sum(-1)
    mask = (diff**2).sum(-1) <= 0.01 * mag + 0.5
    # pixels that came from outside frame a are occluded too
    h, w = back.shape[:2]
    gx, gy = np.meshgrid(np.arange(w), np.arange(h))
    sx, sy = gx + back[..., 0], gy + back[..., 1]
    mask &= (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    return back, mask


def pair_errors(prev: np.ndarray, cur: np.ndarray, back: np.ndarray, mask: np.ndarray):
    """(warping error, mean abs frame difference) of one pair of frames (uint8 RGB)."""
    p = prev.astype(np.float32) / 255.0
    c = cur.astype(np.float32) / 255.0
    warped = _remap(p, back)
    sq = ((warped - c) ** 2).sum(-1)
    n = int(mask.sum())
    warp = float(sq[mask].sum() / n) if n else 0.0
    return warp, float(np.abs(c - p).mean())


def stability(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> dict:
    """Warping error and frame difference of the stylised clip, of the input clip, and their
    ratios; both clips are streamed together (two frames of each in memory)."""
    sums = {"warp": 0.0, "diff": 0.0, "warp_in": 0.0, "diff_in": 0.0}
    prev_in = prev_out = None
    pairs, occluded = 0, 0.0
    for frame_in, frame_out in zip(inputs, outputs, strict=True):
        if frame_out.shape[:2] != frame_in.shape[:2]:
            import cv2

            frame_in = cv2.resize(frame_in, frame_out.shape[1::-1], interpolation=cv2.INTER_AREA)
        if prev_in is not None:
            back, mask = pair_geometry(prev_in, frame_in)
            w, d = pair_errors(prev_out, frame_out, back, mask)
            wi, di = pair_errors(prev_in, frame_in, back, mask)
            sums["warp"] += w
            sums["diff"] += d
            sums["warp_in"] += wi
            sums["diff_in"] += di
            occluded += 1.0 - float(mask.mean())
            pairs += 1
        prev_in, prev_out = frame_in, frame_out
    if not pairs:
        return {"frames": int(prev_in is not None), "pairs": 0}
    m = {k: v / pairs for k, v in sums.items()}
    return {
        "pairs": pairs,
        "warp_error": m["warp"],
        "warp_error_input": m["warp_in"],
        "warp_error_rel": _ratio(m["warp"], m["warp_in"]),
        "frame_diff": m["diff"],
        "frame_diff_input": m["diff_in"],
        "frame_diff_rel": _ratio(m["diff"], m["diff_in"]),
        "occluded_fraction": occluded / pairs,
    }


class ClipProbe:
    """The flicker of a short clip, measured again and again while a model trains: the input
    frames' flow and occlusion masks are computed once; :meth:`measure` takes the stylised frames
    and returns ``warp_error_rel`` and ``frame_diff_rel`` as :func:`stability` would."""

    def __init__(self, frames: list[np.ndarray]):
        self.pairs = []
        for a, b in zip(frames, frames[1:], strict=False):
            back, mask = pair_geometry(a, b)
            self.pairs.append((back, mask, *pair_errors(a, b, back, mask)))

    def measure(self, outputs: list[np.ndarray]) -> dict:
        if not self.pairs:
            return {}
        warp = diff = warp_in = diff_in = 0.0
        for (back, mask, wi, di), prev, cur in zip(self.pairs, outputs, outputs[1:], strict=False):
            w, d = pair_errors(prev, cur, back, mask)
            warp, diff, warp_in, diff_in = warp + w, diff + d, warp_in + wi, diff_in + di
        return {
            "warp_error_rel": _ratio(warp, warp_in),
            "frame_diff_rel": _ratio(diff, diff_in),
        }


FLICKER_RULE = (
    "flicker grew with training: warp_error_rel {low:.3g} at step {at} -> {last:.3g} at the end "
    "(+{grew:.0%}); an earlier, shorter training was steadier"
)


def flicker_grows(steps: list[int], values: list[float | None], rise: float = 0.2) -> dict:
    """The user's "flicker that grew with longer training": flagged when the last measured
    ``warp_error_rel`` is more than ``rise`` above the lowest one before it (three points or
    more)."""
    points = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None]
    if len(points) < 3:
        return {"flag": False, "reason": "too few measurements to judge", "points": len(points)}
    at, low = min(points[:-1], key=lambda p: p[1])
    last = points[-1][1]
    grew = last / low - 1.0 if low > 0 else 0.0
    out = {"flag": bool(grew > rise), "lowest_step": at, "lowest": low, "last": last}
    out["growth"] = grew
    out["rule"] = FLICKER_RULE.format(low=low, at=at, last=last, grew=grew)
    return out


def _ratio(a: float, b: float) -> float | None:
    if b > 1e-12:
        return a / b
    return None if a > 1e-12 else 1.0


# -- "palette only" ---------------------------------------------------------------------------
PALETTE_RULE = (
    "style loss fell by less than {plateau:.0%} over the last quarter of training while the "
    "content loss was already below {content_share:.0%} of the total: the network has settled "
    "for the style's colours, not its textures"
)


def palette_only(
    style: list[float], content: list[float], plateau: float = 0.05, content_share: float = 0.2
) -> dict:
    """The "palette only" rule on the logged loss curves (one value per step).

    Flagged when the mean style loss of the last quarter of steps is more than ``1 - plateau`` of
    the quarter before (it stopped falling) and the final content loss is under
    ``content_share`` of the final content + style loss (content is already matched: only the
    style could still improve, and does not).
    """
    n = len(style)
    if n < 8 or len(content) != n:
        return {"flag": False, "reason": "too few steps to judge", "steps": n}
    q = n // 4
    last, before = float(np.mean(style[-q:])), float(np.mean(style[-2 * q : -q]))
    c_end = float(np.mean(content[-q:]))
    drop = 1.0 - last / before if before > 0 else 0.0
    share = c_end / (c_end + last) if (c_end + last) > 0 else 0.0
    flag = drop < plateau and share < content_share
    return {
        "flag": bool(flag),
        "style_drop_last_quarter": drop,
        "content_share": share,
        "rule": PALETTE_RULE.format(plateau=plateau, content_share=content_share),
    }
