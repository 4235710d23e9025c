"""Style data: procedural images, the content cache, keyframe pairs and streamed video I/O.

Content images are resized (shorter side) and center-cropped once into one uint8 array on disk
(``content-<size>.npy``, memory-mapped), so a training epoch is a slice of that array: no JPEG
decoding and resizing per step, and the loader keeps up with a GPU. Video goes through PyAV
(FFmpeg inside its wheel), one frame at a time, never the whole clip in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


# -- procedural images ------------------------------------------------------------------------
def procedural_content(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` RGB uint8 images (n, size, size, 3): smooth gradients with a few shapes on them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        a = rng.uniform(0, 2 * np.pi)
        t = (np.cos(a) * xx + np.sin(a) * yy + 1) / 2
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
        for _ in range(rng.integers(2, 5)):
            cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(size / 10, size / 3)]
            colour = rng.uniform(0, 255, 3)
            if rng.random() < 0.5:
                mask = (xx * size - cx) ** 2 + (yy * size - cy) ** 2 < r * r
            else:
                mask = (np.abs(xx * size - cx) < r) & (np.abs(yy * size - cy) < r * 0.6)
            img[mask] = colour
        out[i] = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    return out


def procedural_style(size: int, seed: int) -> np.ndarray:
    """One strongly textured RGB uint8 style image: coloured diagonal stripes and blobs."""
    rng = np.random.default_rng(seed + 7919)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = max(size / 8, 4)
    stripes = (np.sin((xx + yy) * 2 * np.pi / period) > 0).astype(np.float32)
    rings = np.sin(np.hypot(xx - size / 2, yy - size / 3) * 2 * np.pi / (period * 0.7)) > 0.3
    a, b, c = (rng.uniform(0, 255, 3) for _ in range(3))
    img = a * stripes[..., None] + b * (1 - stripes[..., None])
    img[rings] = 0.5 * img[rings] + 0.5 * c
    return img.clip(0, 255).astype(np.uint8)


def toy_stylise(frame: np.ndarray) -> np.ndarray:
    """A deterministic "painted" version of a frame (the tiny preset's stand-in for an artist's
    keyframe): posterised, colour-shifted, with dark edges."""
    f = frame.astype(np.float32)
    poster = np.floor(f / 64.0) * 64.0 + 32.0
    shifted = poster[..., [2, 0, 1]] * 0.8 + np.array([40.0, 10.0, 30.0])
    gy = np.abs(np.diff(f.mean(-1), axis=0, prepend=f[:1].mean(-1)))
    gx = np.abs(np.diff(f.mean(-1), axis=1, prepend=f[:, :1].mean(-1)))
    edges = np.clip((gx + gy) / 40.0, 0, 1)[..., None]
    return np.clip(shifted * (1 - edges), 0, 255).astype(np.uint8)


def synthetic_clip(n_frames: int, height: int, width: int, seed: int = 0, flicker: float = 0.0):
    """Frames (uint8 HxWx3) of a slowly panning scene with a moving disc; ``flicker`` adds per-frame
    brightness noise of that many grey levels (for temporal-stability tests)."""
    rng = np.random.default_rng(seed)
    big = procedural_content(1, max(height, width) * 2, seed)[0]
    yy, xx = np.mgrid[0:height, 0:width]
    for t in range(n_frames):
        dx, dy = 2 * t, t
        frame = big[dy : dy + height, dx : dx + width].astype(np.float32).copy()
        cx, cy = width * (0.2 + 0.05 * t), height * 0.5
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(height, width) / 6) ** 2
        frame[disc] = (230, 60, 40)
        if flicker:
            frame += rng.uniform(-flicker, flicker)
        yield np.clip(frame, 0, 255).astype(np.uint8)


# -- images on disk ---------------------------------------------------------------------------
def list_images(source: Path) -> list[Path]:
    """Image files of a folder (recursive, sorted) or a manifest (CSV with a ``file`` column,
    JSON list of paths or of objects with ``file``, or a plain list one path a line)."""
    from recap.errors import InvalidInput, NotFound

    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    elif source.suffix.lower() in IMAGE_EXTS:
        files = [source]
    elif source.is_file():
        files = _read_manifest(source)
    else:
        raise NotFound(f"content images {source} not found")
    if not files:
        raise InvalidInput(f"no images in {source}")
    return files


def _read_manifest(path: Path) -> list[Path]:
    import csv

    base = path.parent
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        items = json.loads(text)
        names = [i["file"] if isinstance(i, dict) else i for i in items]
    elif path.suffix.lower() == ".csv":
        names = [row["file"] for row in csv.DictReader(text.splitlines())]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    return [p if p.is_absolute() else base / p for p in map(Path, names)]


def load_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; a file that is not a readable image is a one-line
    InvalidInput naming it (not PIL's traceback)."""
    from PIL import Image, UnidentifiedImageError

    from recap.errors import InvalidInput, NotFound

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), np.uint8)
    except FileNotFoundError:
        raise NotFound(f"image {path} not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = (
            "not an image" if isinstance(exc, UnidentifiedImageError) else str(exc) or "unreadable"
        )
        raise InvalidInput(f"cannot read image {path}: {why}") from None


def save_rgb(pixels: np.ndarray, path: Path, quality: int = 95) -> None:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, **kw)


def resize_center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to ``size`` (bilinear), then the centered ``size`` x ``size`` crop."""
    from PIL import Image

    h, w = pixels.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = Image.fromarray(pixels)
    if (nh, nw) != (h, w):
        img = img.resize((nw, nh), Image.BILINEAR)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), np.uint8)


def content_cache(files: list[Path], size: int, cache_dir: Path, workers: int = 0) -> np.ndarray:
    """All content images resized and center-cropped once, as a memory-mapped (N, S, S, 3) uint8
    array; reused while the file list and size are the same."""
    from concurrent.futures import ThreadPoolExecutor

    key = hashlib.sha256(
        json.dumps(
            [size, [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]]
        ).encode()
    ).hexdigest()[:16]
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"content-{size}-{key}.npy"
    if not path.exists():
        tmp = path.with_suffix(".tmp.npy")
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(files), size, size, 3)
        )

        def one(i):
            arr[i] = resize_center_crop(load_rgb(files[i]), size)

        try:
            with ThreadPoolExecutor(max(1, workers or 4)) as pool:
                list(pool.map(one, range(len(files))))
            arr.flush()
        except BaseException:
            del arr
            tmp.unlink(missing_ok=True)  # nothing half-written stays behind
            raise
        del arr
        tmp.replace(path)
    return np.load(path, mmap_mode="r")


# -- video ------------------------------------------------------------------------------------
def is_video(path: Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


@contextlib.contextmanager
def _video(path: Path):
    """``(container, its first video stream)``; a file FFmpeg cannot read, or one without a
    video stream, is a one-line InvalidInput naming it (not PyAV's traceback)."""
    import av

    from recap.errors import InvalidInput, NotFound

    if not Path(path).is_file():
        raise NotFound(f"video {path} not found")
    try:
        box = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InvalidInput(f"cannot read video {path}: {_ffmpeg_why(exc)}") from None
    with box:
        if not box.streams.video:
            raise InvalidInput(f"cannot read video {path}: it has no video stream")
        try:
            yield box, box.streams.video[0]
        except av.error.FFmpegError as exc:
            raise InvalidInput(f"cannot decode video {path}: {_ffmpeg_why(exc)}") from None


def _ffmpeg_why(exc) -> str:
    return str(getattr(exc, "strerror", "") or exc).rstrip(".")


def video_info(path: Path) -> dict:
    with _video(path) as (_, s):
        rate = s.average_rate or s.guessed_rate or 25
        return {
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "fps": float(rate),
            "frames": int(s.frames or 0),
        }


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video as HxWx3 uint8 RGB, decoded one at a time."""
    with _video(path) as (box, stream):
        stream.thread_type = "AUTO"
        for frame in box.decode(stream):
            yield frame.to_ndarray(format="rgb24")


class VideoWriter:
    """Frames (HxWx3 uint8 RGB) to a video file through PyAV; H.264 (yuv420p, so even sides) for
    .mp4/.mov/.mkv, VP9 for .webm. Written to a temporary name and renamed on close."""

    def __init__(self, path: Path, fps: float = 25.0, crf: int = 18):
        self.path = Path(path)
        self.fps, self.crf = fps, crf
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self.box = None
        self.stream = None
        self.count = 0

    def _open(self, h: int, w: int):
        import fractions

        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.box = av.open(str(self.tmp), mode="w")
        codec = "libvpx-vp9" if self.path.suffix.lower() == ".webm" else "libx264"
        rate = fractions.Fraction(self.fps).limit_denominator(1001)
        self.stream = self.box.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = w, h
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": str(self.crf), "preset": "veryfast"}

    def write(self, frame: np.ndarray) -> None:
        import av

        h, w = frame.shape[:2]
        if self.box is None:
            if h % 2 or w % 2:
                from recap.errors import InvalidInput

                raise InvalidInput(f"video frames need even sides for yuv420p, got {w}x{h}")
            self._open(h, w)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(vf):
            self.box.mux(packet)
        self.count += 1

    def close(self) -> None:
        if self.box is None:
            return
        for packet in self.stream.encode():
            self.box.mux(packet)
        self.box.close()
        self.box = None
        self.tmp.replace(self.path)

    def abort(self) -> None:
        if self.box is not None:
            try:
                self.box.close()
            except Exception:  # noqa: BLE001 - a broken container is being thrown away anyway
                pass
            self.box = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(frames, path: Path, fps: float = 25.0) -> int:
    with VideoWriter(path, fps) as w:
        for f in frames:
            w.write(f)
        return w.count
