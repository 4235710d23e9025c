"""Cycles settings for small, exact renders, and PNGs that carry no dates or timings."""

from __future__ import annotations

import struct
from pathlib import Path

# Ancillary PNG chunks Blender fills with render times and stamp text: dropped so that the
# same seed gives the same bytes.
_DROP_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}


def strip_png_metadata(data: bytes) -> bytes:
    """The PNG without its text, EXIF and time chunks (pixels and their chunks untouched)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    out, i = [data[:8]], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        if kind not in _DROP_CHUNKS:
            out.append(data[i : i + 12 + n])
        i += 12 + n
    return b"".join(out)


def pick_device(want: str) -> str:
    """The Cycles device: ``CPU``, or ``OPTIX``/``CUDA``/``HIP``/``ONEAPI`` when a GPU is asked
    for (``cuda``/``auto``) and Cycles finds one. Returns what it chose."""
    import bpy

    if want == "cpu":
        return "CPU"
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
    except (KeyError, AttributeError):
        return "CPU"
    for kind in ("OPTIX", "CUDA", "HIP", "ONEAPI"):
        try:
            prefs.compute_device_type = kind
        except TypeError:
            continue
        prefs.get_devices()
        gpus = [d for d in prefs.devices if d.type == kind]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == kind
            return kind
    prefs.compute_device_type = "NONE"
    return "CPU"


def setup_scene(size: int, samples: int, device: str = "cpu", threads: int = 0):
    """A fresh empty scene set up for Cycles at ``size`` x ``size``; returns (scene, device)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    r = scene.render
    r.engine = "CYCLES"
    chosen = pick_device(device)
    scene.cycles.device = "CPU" if chosen == "CPU" else "GPU"
    scene.cycles.samples = int(samples)
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 4
    scene.cycles.diffuse_bounces = 2
    scene.cycles.glossy_bounces = 2
    scene.cycles.transmission_bounces = 4
    scene.cycles.transparent_max_bounces = 4
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    r.resolution_x = r.resolution_y = int(size)
    r.resolution_percentage = 100
    r.film_transparent = False
    if threads:
        r.threads_mode, r.threads = "FIXED", int(threads)
    # Stamps and metadata carry dates and render times: all off.
    r.use_stamp = False
    for name in dir(r):
        if name.startswith("use_stamp"):
            try:
                setattr(r, name, False)
            except (AttributeError, TypeError):
                pass
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGB"
    r.image_settings.color_depth = "8"
    r.image_settings.compression = 15
    scene.view_settings.view_transform = "Standard"
    return scene, chosen


def _text_chunks(data: bytes) -> dict[str, str]:
    out, i = {}, 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        if data[i + 4 : i + 8] == b"tEXt":
            key, _, value = data[i + 8 : i + 8 + n].partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        i += 12 + n
    return out


def _seconds(text: str) -> float:
    """Blender's "MM:SS.ss" (or "HH:MM:SS.ss") as seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def render_png(scene, path: Path) -> tuple[bytes, dict]:
    """Render the scene's camera to ``path`` (PNG, no metadata); returns (bytes, timings):
    Cycles' own scene synchronisation (BVH included) and sampling times, and the PNG write."""
    import time

    import bpy

    path = Path(path)
    bpy.ops.render.render(write_still=False, scene=scene.name)
    t = time.perf_counter()
    bpy.data.images["Render Result"].save_render(filepath=str(path), scene=scene)
    write_s = time.perf_counter() - t
    raw = path.read_bytes()
    stats = {"write_s": write_s}
    for key, value in _text_chunks(raw).items():
        try:
            if key.endswith("synchronization_time"):
                stats["sync_s"] = _seconds(value)
            elif key.endswith(".render_time"):
                stats["sample_s"] = _seconds(value)
        except ValueError:
            pass
    data = strip_png_metadata(raw)
    path.write_bytes(data)
    return data, stats
