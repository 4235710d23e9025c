"""Joint names, skeleton, left/right flip pairs and OKS sigmas (COCO's 17 by default).

Any K works: a manifest or a COCO ``categories`` entry names its joints, and flip pairs are
found from the ``left_``/``right_`` prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recap.coco import KEYPOINTS as COCO_KEYPOINTS
from recap.coco import SIGMAS as COCO_SIGMAS
from recap.coco import SKELETON as COCO_SKELETON_1BASED

DEFAULT_SIGMA = 0.05  # joints of other skeletons: about a COCO wrist


def flip_pairs_of(names) -> list[tuple[int, int]]:
    """(left, right) index pairs found by the ``left_``/``right_`` (or ``l_``/``r_``) prefixes."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, n in enumerate(names):
        for lp, rp in (("left_", "right_"), ("l_", "r_"), ("left", "right")):
            if n.startswith(lp) and rp + n[len(lp) :] in index:
                pairs.append((i, index[rp + n[len(lp) :]]))
                break
    return pairs


def flip_permutation(k: int, pairs) -> list[int]:
    """perm[j] = the joint whose (mirrored) position joint j takes in a mirrored image."""
    perm = list(range(k))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


@dataclass
class Skeleton:
    """K named joints, the limbs between them (0-based), flip pairs and OKS sigmas."""

    names: list[str]
    edges: list[tuple[int, int]] = field(default_factory=list)
    flip_pairs: list[tuple[int, int]] | None = None
    sigmas: list[float] | None = None

    def __post_init__(self):
        self.names = list(self.names)
        self.edges = [tuple(map(int, e)) for e in self.edges]
        if self.flip_pairs is None:
            self.flip_pairs = flip_pairs_of(self.names)
        self.flip_pairs = [tuple(map(int, p)) for p in self.flip_pairs]
        if self.sigmas is None:
            if tuple(self.names) == COCO_KEYPOINTS:
                self.sigmas = list(COCO_SIGMAS)
            else:
                self.sigmas = [DEFAULT_SIGMA] * len(self.names)
        if len(self.sigmas) != len(self.names):
            raise ValueError(f"{len(self.sigmas)} sigmas for {len(self.names)} joints")

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def flip_perm(self) -> list[int]:
        return flip_permutation(self.k, self.flip_pairs)

    @classmethod
    def coco(cls) -> Skeleton:
        return cls(list(COCO_KEYPOINTS), [(a - 1, b - 1) for a, b in COCO_SKELETON_1BASED])

    @classmethod
    def from_coco_category(cls, cat: dict) -> Skeleton:
        """From a COCO ``categories`` entry (``keypoints`` names, 1-based ``skeleton``)."""
        return cls(list(cat["keypoints"]), [(a - 1, b - 1) for a, b in cat.get("skeleton", [])])

    def to_json(self) -> dict:
        return {
            "names": self.names,
            "skeleton": [list(e) for e in self.edges],
            "skeleton_indexing": "0-based joint indices (COCO files use 1-based)",
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "oks_sigmas": [float(s) for s in self.sigmas],
        }

    @classmethod
    def from_json(cls, d: dict) -> Skeleton:
        return cls(d["names"], d["skeleton"], d["flip_pairs"], d.get("oks_sigmas"))


def flip_joints(joints: np.ndarray, width: float, pairs) -> np.ndarray:
    """Joints (..., K, 2 or 3) of an image mirrored left-right: x -> width - x, pairs swapped.

    Coordinates are continuous (pixel i covers [i, i+1)), so mirroring is exactly ``width - x``.
    """
    out = np.array(joints, dtype=np.float32, copy=True)
    out[..., 0] = width - out[..., 0]
    perm = flip_permutation(out.shape[-2], pairs)
    return out[..., perm, :]
