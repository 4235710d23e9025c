"""Data for the core: image folders, CSV/JSON manifests, procedural sets, Blender dataset runs.

Every source becomes one table (see :mod:`recap.ml.data.manifest`). Modules: ``manifest`` (CSV /
JSON manifests, image folders, :func:`load_table` for the pipeline), ``synthetic`` (procedural
sets). A Blender dataset run (``data=run:<id>``) reaches the pipeline as its manifest's path.
"""

from recap.ml.data.manifest import (
    IMAGE_EXTS,
    SPLITS,
    data_path,
    load_table,
    points_of,
    read_image_folder,
    read_manifest,
    write_manifest_csv,
)
from recap.ml.data.synthetic import MARKER_COLORS, SHAPES, make_markers, make_shapes

__all__ = [
    "IMAGE_EXTS",
    "MARKER_COLORS",
    "SHAPES",
    "SPLITS",
    "data_path",
    "load_table",
    "make_markers",
    "make_shapes",
    "points_of",
    "read_image_folder",
    "read_manifest",
    "write_manifest_csv",
]
