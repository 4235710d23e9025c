"""Stylise images, folders and videos with a finished style run (``recap stylize``).

Every backend goes through the same pre/post-processing as the bundle's ``model.json`` (the
numpy reference in :mod:`recap.ml.style.reference`): ``torch`` runs the saved weights eagerly,
``compiled`` the same under ``torch.compile``, ``onnx`` the exported file through onnxruntime
(the dynamic-size bundle: sentis, else latest; a fixed-size barracuda bundle has frames resized to
its input and back). Videos are streamed frame by frame (PyAV), never held whole in memory.
Outputs go only under ``out`` (PNG per image, MP4 per video), named after the inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recap.errors import InvalidInput, NotFound
from recap.ml.style import data, reference

BACKENDS = ("torch", "onnx", "compiled")


def load_model(run_dir: Path):
    """(model on the CPU in eval mode, model.json base) saved by a style run."""
    import torch

    from recap.ml.style import nets

    path = Path(run_dir) / "model.pth"
    if not path.exists():
        raise NotFound(f"{run_dir} has no model.pth: is it a finished style run?")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("task") != "style":
        raise InvalidInput(
            f"{run_dir} is not a style run (its model.pth is a {ckpt.get('task')!r} model)"
        )
    model = nets.build(ckpt["record"])
    model.load_state_dict(ckpt["state_dict"])
    return model.float().eval(), ckpt["meta"]


def _bundle(run_dir: Path) -> tuple[Path, dict]:
    for name in ("sentis", "latest", "barracuda"):
        folder = Path(run_dir) / "bundle" / name
        if (folder / "model.json").exists():
            return folder, json.loads((folder / "model.json").read_text(encoding="utf-8"))
    raise NotFound(f"{run_dir} has no ONNX bundle (bundle/sentis, latest or barracuda)")


def frame_function(run_dir: Path, backend: str) -> tuple[Callable, dict]:
    """(uint8 HxWx3 -> uint8 HxWx3, the model.json used) for ``backend``."""
    import torch

    from recap.ml.style import export

    if backend not in BACKENDS:
        raise InvalidInput(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if backend == "onnx":
        folder, meta = _bundle(run_dir)
        raw = export.OrtRunner(folder / meta["model"])
    else:
        model, meta = load_model(run_dir)  # model.pth's model.json fields: dynamic H and W
        net = torch.compile(model) if backend == "compiled" else model

        def raw(x):
            with torch.inference_mode():
                return net(torch.from_numpy(x)).float().numpy()

    fixed = meta["preprocess"].get("fixed_size")

    def run(pixels: np.ndarray) -> np.ndarray:
        if fixed:
            from PIL import Image

            h, w = pixels.shape[:2]
            small = np.asarray(Image.fromarray(pixels).resize(tuple(fixed), Image.BILINEAR))
            out = reference.postprocess(raw(reference.preprocess(small, meta)), meta)
            return np.asarray(Image.fromarray(out).resize((w, h), Image.BILINEAR))
        return reference.run_frame(pixels, meta, raw)

    return run, meta


def collect(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(file, name relative to its input) for image and video files of the inputs, in order."""
    out = []
    for item in map(Path, inputs):
        if item.is_dir():
            for f in sorted(item.rglob("*")):
                if f.is_file() and (f.suffix.lower() in data.IMAGE_EXTS or data.is_video(f)):
                    out.append((f, Path(item.name) / f.relative_to(item)))
        elif item.is_file():
            if not (item.suffix.lower() in data.IMAGE_EXTS or data.is_video(item)):
                raise InvalidInput(
                    f"{item}: not an image or a video ({item.suffix or 'no suffix'})"
                )
            out.append((item, Path(item.name)))
        else:
            raise NotFound(f"input {item} not found")
    if not out:
        raise InvalidInput("no images or videos in the inputs")
    return out


def _resize(pixels: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or pixels.shape[1::-1] == tuple(size):
        return pixels
    from PIL import Image

    return np.asarray(Image.fromarray(pixels).resize(tuple(size), Image.BILINEAR))


def stylize(
    run_dir: Path,
    inputs: list[Path],
    out: Path,
    size: tuple[int, int] | None = None,
    backend: str = "torch",
    progress: Callable | None = None,
) -> list[dict]:
    """Stylise every image and video of ``inputs`` into ``out``; returns one record per output.

    ``progress(done, total, label)`` is called after each frame (total: frames known so far).
    """
    files = collect(inputs)
    fn, _ = frame_function(Path(run_dir), backend)
    out = Path(out)
    total = sum(
        1 if not data.is_video(f) else max(data.video_info(f)["frames"], 1) for f, _ in files
    )
    done, records, used = 0, [], set()
    for src, rel in files:
        video = data.is_video(src)
        dest = out / rel.with_suffix(".mp4" if video else ".png")
        n = 1
        while dest in used:  # a.jpg and a.png in one folder: a.png, a-2.png
            n += 1
            dest = dest.with_name(f"{rel.stem}-{n}{dest.suffix}")
        used.add(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if video:
            info = data.video_info(src)
            frames = 0
            with data.VideoWriter(dest, fps=info["fps"]) as writer:
                for frame in data.read_frames(src):
                    writer.write(fn(_resize(frame, size)))
                    frames += 1
                    done += 1
                    if progress:
                        progress(done, total, src.name)
            h, w = (size[1], size[0]) if size else (info["height"], info["width"])
            records.append(
                {
                    "input": str(src),
                    "output": str(dest),
                    "kind": "video",
                    "frames": frames,
                    "width": w,
                    "height": h,
                }
            )
        else:
            y = fn(_resize(data.load_rgb(src), size))
            data.save_rgb(y, dest)
            done += 1
            if progress:
                progress(done, total, src.name)
            records.append(
                {
                    "input": str(src),
                    "output": str(dest),
                    "kind": "image",
                    "frames": 1,
                    "width": y.shape[1],
                    "height": y.shape[0],
                }
            )
    return records
