"""Pose estimation: K joints with a skeleton, visibility, heat maps (or direct regression).

Modules: ``skeleton`` (COCO joint names, skeleton, flip pairs, OKS sigmas), ``decode`` (the
numpy-only reference: heat-map decode, scaling back to the source image; what a port
re-implements), ``torch_ops`` (the same decode in torch, Gaussian targets, masked losses, flip),
``metrics`` (PCK, COCO OKS AP through pycocotools, pixel error, the mean-pose sanity check),
``models`` (backbones with a deconvolution, upsampling or regression head), ``data`` (COCO key
points -> person crops; procedural stick figures for tests), ``train`` (batches with flips,
predictions), ``visual`` (overlays, the per-joint PCK chart). The task plug-in that joins them
to the shared pipeline is ``recap.ml.tasks.pose``.

Everything but ``decode``, ``skeleton`` and ``metrics`` imports torch: import the submodules
lazily.
"""

from __future__ import annotations
