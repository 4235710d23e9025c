"""One call that runs a style experiment: data -> train -> export to every target -> parity ->
speed -> temporal stability -> flags -> summary, reporting only through the run context.

``arch = transformer``: Johnson's TransformerNet on content images with one style image.
``arch = patch``: the few-shot video model, trained on keyframe pairs of one clip, which then
stylises every frame of that clip.

Params the run lacks come from the experiment folder's ``experiment.toml``; empty / 0 values take
the preset's (``tiny``: about a minute on 2 CPU cores, 64 px, random VGG; ``full``: the GPU recipe).
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import numpy as np

PRESETS = {
    "transformer": {
        "tiny": {
            "size": 64,
            "n_images": 24,
            "steps": 60,
            "batch_size": 2,
            "lr": 2e-2,
            "filters": "8,16,32",
            "res_blocks": 2,
            "perceptual": "random",
            "style_layers": "relu1_2,relu2_2,relu3_3",
            "clip_size": "96x64",
            "clip_frames": 12,
            "speed_frames": 1,
            "speed_sizes": "480x270",
            "log_every": 5,
            "flicker_every": 20,
            "precision": "fp32",
            "threads": 1,
        },
        "full": {
            "size": 256,
            "n_images": 4096,
            "steps": 2500,
            "batch_size": 64,
            "lr": 2e-3,
            "filters": "32,64,128",
            "res_blocks": 5,
            "perceptual": "imagenet",
            "style_layers": "relu1_2,relu2_2,relu3_3,relu4_3",
            "clip_size": "1280x720",
            "clip_frames": 48,
            "speed_frames": 50,
            "speed_sizes": "1280x720,1920x1080",
            "log_every": 50,
            "flicker_every": 250,
            "precision": "bf16",
            "channels_last": True,
            "compile": True,
            "cudnn_benchmark": True,
            "gpu_form": True,
        },
    },
    "patch": {
        "tiny": {
            "clip_size": "96x64",
            "clip_frames": 12,
            "keyframes": "0,6",
            "patch": 32,
            "steps": 60,
            "batch_size": 8,
            "lr": 2e-3,
            "filters": "8,16,32",
            "res_blocks": 1,
            "perceptual": "random",
            "perceptual_weight": 0.0,
            "speed_frames": 1,
            "speed_sizes": "480x270",
            "log_every": 5,
            "flicker_every": 20,
            "precision": "fp32",
            "threads": 1,
        },
        "full": {
            "clip_size": "1280x720",
            "clip_frames": 120,
            "keyframes": "0,60",
            "patch": 64,
            "steps": 4000,
            "batch_size": 40,
            "lr": 2e-4,
            "filters": "32,64,128",
            "res_blocks": 3,
            "perceptual": "imagenet",
            "perceptual_weight": 1.0,
            "speed_frames": 50,
            "speed_sizes": "1280x720,1920x1080",
            "log_every": 50,
            "flicker_every": 500,
            "precision": "fp32",
        },
    },
}
DEFAULTS = {
    "vgg": "vgg16",
    "vgg_weights": "",
    "content_layer": "relu2_2",
    "content_weight": 1e5,
    "style_weight": 1e10,
    "tv_weight": 0.0,
    "style_layer_weights": "",
    "skips": False,
    "value_range": "",
    "targets": "barracuda,sentis,latest,torchscript",
    "fixed_size": "960x540",
    "l1_weight": 1.0,
    "channels_last": False,
    "compile": False,
    "cudnn_benchmark": False,  # cuDNN times its algorithms per shape: faster, not bitwise reruns
    "gpu_form": False,  # reflection pads from slices, RGB convs' channels padded to 8: same numbers
    "phase_convs": False,  # with gpu_form: 9x9 convs in phase form (nets.phase_conv); untimed
    "flicker_every": 0,  # the test clip's flicker measured every N training steps (0: off)
    "data": "synthetic",
    "style": "procedural",
    "clip": "synthetic",
    "masks": "",
    "threads": 0,
}


def load_spec(folder: Path) -> dict:
    with open(Path(folder) / "experiment.toml", "rb") as fh:
        return tomllib.load(fh)


def resolve_params(params: dict, folder: Path | None, arch: str) -> dict:
    """Run params over toml defaults over the preset over the family defaults."""
    from recap.errors import InvalidInput

    toml = {}
    if folder is not None:
        spec = load_spec(folder)
        toml = {k: p.get("default") for k, p in spec.get("params", {}).items()}
    given = {**toml, **{k: v for k, v in params.items() if v is not None}}
    preset = given.get("preset") or "tiny"
    if preset not in PRESETS[arch]:
        raise InvalidInput(f"unknown preset {preset!r} (tiny, full)")
    out = {**DEFAULTS, **PRESETS[arch][preset]}
    for k, v in given.items():
        if k in out and _unset(k, v):
            continue  # empty, 0 (or a negative weight): the preset's value
        out[k] = v
    out["preset"], out["arch"] = preset, arch
    if not out.get("value_range"):
        out["value_range"] = "0-255" if arch == "transformer" else "-1-1"
    if out["perceptual"] not in ("imagenet", "random"):
        raise InvalidInput(f"perceptual={out['perceptual']!r}: imagenet or random")
    return out


def recorded_params(p: dict, folder: Path | None) -> dict:
    """What the run record (and ``config.json``) keeps of the resolved params ``p``: the params
    the experiment declares, with the values used. The rest (the arch, the other arch's knobs)
    follows from them; a rerun replays exactly these. ``model.pth`` keeps all of ``p``."""
    if folder is None:
        return dict(p)
    declared = load_spec(folder).get("params", {})
    return {k: p[k] for k in declared if k in p}


def _unset(key: str, value) -> bool:
    """Whether a given value means "the preset's": "", 0 or a negative perceptual weight.

    ``False`` is a choice, not an empty value (``-p compile=false`` under the full preset turns
    compiling off); a bool param left unset arrives as "" (its declared default).
    """
    if isinstance(value, bool):
        return False
    if value in ("", 0, 0.0, None):
        return True
    return key == "perceptual_weight" and value < 0


def check_params(p: dict, arch: str, folder: Path | None) -> None:
    """Every value the run uses after training, checked before it: one line naming the param.

    Sizes, the exports' fixed size, the speed sizes, the test clip (readable, even sides for
    H.264), precision, counts; the VGG layers are checked when the loss network is built, which
    is also before training.
    """
    from recap.errors import InvalidInput
    from recap.ml.style import data, nets

    nets.parse_filters(p["filters"])
    if str(p["precision"]) not in ("fp32", "bf16", "fp16"):
        raise InvalidInput.param(p, "precision", "fp32, bf16 or fp16")
    w, h = size_of(p["fixed_size"])
    if w % 4 or h % 4:
        raise InvalidInput.param(
            p, "fixed_size", "sides must be multiples of 4 (the network halves them twice)"
        )
    try:
        [size_of(text) for text in _csv(p["speed_sizes"])]
    except InvalidInput:
        raise InvalidInput.param(
            p, "speed_sizes", "WIDTHxHEIGHT sizes, comma-separated, e.g. 1280x720"
        ) from None
    for key in ("steps", "batch_size"):
        if int(p[key]) < 1:
            raise InvalidInput.param(p, key, "at least 1")
    side = "size" if arch == "transformer" else "patch"
    if int(p[side]) < 8 or int(p[side]) % 4:
        raise InvalidInput.param(p, side, "a multiple of 4, at least 8")
    if arch == "transformer" and p["data"] == "synthetic" and int(p["n_images"]) < 2:
        raise InvalidInput.param(p, "n_images", "at least 2 (one is held out)")
    if str(p["clip"]) == "synthetic":
        w, h = size_of(p["clip_size"])
        if w % 2 or h % 2:
            raise InvalidInput.param(
                p, "clip_size", "even sides (the stylised clip is H.264, yuv420p)"
            )
        if int(p["clip_frames"]) < 2:
            raise InvalidInput.param(
                p, "clip_frames", "at least 2 (flicker compares neighbouring frames)"
            )
        n = int(p["clip_frames"])
    else:
        info = data.video_info(_resolve_path(str(p["clip"]), folder, "clip"))
        if info["width"] % 2 or info["height"] % 2:
            raise InvalidInput.param(
                p, "clip", f"{info['width']}x{info['height']}: H.264 needs even sides"
            )
        n = info["frames"]
    if arch == "patch":
        try:
            keys = [int(k) for k in _csv(p["keyframes"])]
        except ValueError:
            raise InvalidInput.param(p, "keyframes", "frame indices, e.g. 0,60") from None
        if not keys or min(keys) < 0 or (n and max(keys) >= n):
            raise InvalidInput.param(p, "keyframes", f"frame indices of the clip (0 to {n - 1})")


def size_of(text: str) -> tuple[int, int]:
    """``"960x540"`` -> (960, 540) (width, height)."""
    from recap.errors import InvalidInput

    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError as exc:
        raise InvalidInput(f"size {text!r}: WIDTHxHEIGHT, e.g. 960x540") from exc
    if w < 1 or h < 1:
        raise InvalidInput(f"size {text!r}: positive sides")
    return w, h


def _csv(text) -> list[str]:
    if isinstance(text, list | tuple):
        return [str(t) for t in text]
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _resolve_path(source: str, folder: Path | None, what: str = "file") -> Path:
    from recap import paths
    from recap.errors import NotFound

    path = Path(source).expanduser()
    if path.is_absolute():
        cands = [path]
    else:
        root = paths.find_root()
        cands = [
            *([Path(folder) / path] if folder else []),
            *([root / path] if root else []),
            Path.cwd() / path,
        ]
    for c in cands:
        if c.exists():
            return c
    tried = f" (tried {', '.join(map(str, cands))})" if len(cands) > 1 else ""
    raise NotFound(f"{what} {source!r} not found{tried}")


def _data_run(ref: str) -> Path:
    """The output folder of a Blender dataset run, ``run:<id>`` (found by its folder name)."""
    from recap import paths
    from recap.errors import NotFound

    hits = sorted(paths.runs_dir().glob(f"*/{ref}*"))
    hits = [h for h in hits if h.is_dir()]
    if len(hits) != 1:
        raise NotFound(
            f"data=run:{ref}: {'no' if not hits else 'more than one'} run folder "
            f"matches under {paths.runs_dir()}"
        )
    return hits[0]


def content_images(p: dict, seed: int, workdir: Path, folder: Path | None) -> np.ndarray:
    """(N, S, S, 3) uint8: procedural for ``data=synthetic``, else the cached folder/manifest."""
    from recap.ml.style import data

    size = int(p["size"])
    source = str(p["data"])
    if source == "synthetic":
        return data.procedural_content(int(p["n_images"]), size, seed)
    path = (
        _data_run(source[4:])
        if source.startswith("run:")
        else _resolve_path(source, folder, "data")
    )
    files = data.list_images(path)
    return data.content_cache(files, size, workdir / "cache", workers=int(p.get("workers", 0)))


def style_image(p: dict, seed: int, folder: Path | None) -> np.ndarray:
    from recap.ml.style import data

    if str(p["style"]) == "procedural":
        return data.procedural_style(int(p["size"]), seed)
    img = data.load_rgb(_resolve_path(str(p["style"]), folder, "style image"))
    return (
        data.resize_center_crop(img, int(p["size"]))
        if min(img.shape[:2]) > 2 * int(p["size"])
        else img
    )


def make_vgg(p: dict, layers, seed: int):
    from recap.ml.style import losses

    return losses.VGGFeatures(
        str(p["vgg"]),
        layers,
        weights=p.get("vgg_weights") or None,
        random_init=p["perceptual"] == "random",
        seed=seed,
    )


def clip_frames(p: dict, seed: int, folder: Path | None):
    """A callable returning a fresh iterator over the test clip's frames (streamed)."""
    from recap.ml.style import data

    if str(p["clip"]) == "synthetic":
        w, h = size_of(p["clip_size"])
        n = int(p["clip_frames"])
        return lambda: data.synthetic_clip(n, h, w, seed)
    path = _resolve_path(str(p["clip"]), folder, "clip")
    return lambda: data.read_frames(path)


# -- measurements -----------------------------------------------------------------------------
def measure_fps(run_fn, width: int, height: int, frames: int, warmup: int = 1, sync=None) -> float:
    """Frames/s of ``run_fn`` on a (1, 3, H, W) float32 input (model call only); sides padded up
    to a multiple of 4 as the reference does (1080 and 540 already are, 270 becomes 272)."""
    height, width = -(-height // 4) * 4, -(-width // 4) * 4
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, height, width)).astype(np.float32)
    for _ in range(warmup):
        run_fn(x)
    t0 = time.perf_counter()
    for _ in range(frames):
        run_fn(x)
    if sync:
        sync()
    return frames / (time.perf_counter() - t0)


def loss_plot(curves: dict, path: Path, keys) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for k in keys:
        if curves.get(k) and max(curves[k]) > 0:
            ax.plot(curves["step"], curves[k], label=k)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def grid(before: list[np.ndarray], after: list[np.ndarray], path: Path) -> None:
    """Row 1: inputs, row 2: outputs (all resized to the first input's size)."""
    from PIL import Image

    from recap.ml.style.data import save_rgb

    h, w = before[0].shape[:2]

    def fit(a):
        return np.asarray(Image.fromarray(a).resize((w, h))) if a.shape[:2] != (h, w) else a

    rows = [np.concatenate([fit(a) for a in row], axis=1) for row in (before, after)]
    save_rgb(np.concatenate(rows, axis=0), path)


# -- the pipeline -----------------------------------------------------------------------------
def _device(requested: str) -> str:
    import torch

    if requested in ("auto", "", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(requested).startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return str(requested)


FLICKER_FRAMES = 12  # the test clip's first frames, measured while training


def flicker_probe(p: dict, seed: int, folder: Path | None, device: str):
    """``probe(model) -> {warp_error_rel, frame_diff_rel}`` on the test clip's first frames,
    through the bundle's pre/post-processing (as the run's final measurement), for training to
    call every ``flicker_every`` steps; None when that is 0."""
    import itertools

    import torch

    from recap.ml.style import reference, temporal
    from recap.ml.tasks import get_task

    if int(p.get("flicker_every") or 0) <= 0:
        return None
    task = get_task("style")
    meta = task.describe(task.prepare(None, p), p)
    frames = list(itertools.islice(clip_frames(p, seed, folder)(), FLICKER_FRAMES))
    clip = temporal.ClipProbe(frames)

    def probe(model) -> dict:
        def run(x):
            return model(torch.from_numpy(x).to(device)).float().cpu().numpy()

        return clip.measure([reference.run_frame(f, meta, run) for f in frames])

    return probe


def train_arrays(
    ctx, p: dict, arch: str, device: str, seed: int, folder: Path | None, content=None
):
    """Train the family's model for resolved params ``p``; returns (Trained, extras).

    ``content`` (N, S, S, 3 uint8) overrides the params' data for the transformer. ``extras``:
    held-out images, golden frames, the style image, keyframe indices.
    """
    import torch

    from recap.ml.style import losses, nets, train
    from recap.ml.tasks.base import Trained

    extras: dict = {}
    if arch == "transformer":
        layers = _csv(p["style_layers"])
        vgg = make_vgg(p, sorted({*layers, p["content_layer"]}), seed)
        extras["perceptual_weights"] = {"source": vgg.source, "sha256": vgg.sha256}
        style = style_image(p, seed, folder)  # first: one file, checked before the folder
        if content is None:
            content = content_images(p, seed, Path(ctx.out_dir), folder)
            n_hold = min(4, max(1, len(content) // 8))
            extras["held"] = [np.asarray(c) for c in content[:n_hold]]
            content = content[n_hold:]
        extras["style"] = style
        s = torch.from_numpy(style).permute(2, 0, 1)[None].float() / 255
        weights = [float(v) for v in _csv(p["style_layer_weights"])] or None
        loss_fn = losses.PerceptualLoss(
            vgg, s, layers, p["content_layer"], float(p["content_weight"]),
            float(p["style_weight"]), float(p["tv_weight"]), weights,
        )  # fmt: skip
        model = nets.TransformerNet(p["filters"], int(p["res_blocks"]), bool(p["skips"]))
        result = train.train_transformer(
            model, loss_fn, content, steps=int(p["steps"]), batch_size=int(p["batch_size"]),
            lr=float(p["lr"]), device=device, precision=str(p["precision"]),
            channels_last=bool(p["channels_last"]), compile=bool(p["compile"]),
            cudnn_benchmark=bool(p["cudnn_benchmark"]), align=8 if p["gpu_form"] else 0,
            phase=bool(p.get("phase_convs")), log_every=int(p["log_every"]), seed=seed, ctx=ctx,
            probe=flicker_probe(p, seed, folder, device), probe_every=int(p["flicker_every"]),
        )  # fmt: skip
        keys = ("content_loss", "style_loss", "tv_loss", "total_loss")
    else:
        weight = float(p["perceptual_weight"])
        vgg = make_vgg(p, ["relu2_2", "relu3_3"], seed) if weight else None
        if vgg is not None:
            extras["perceptual_weights"] = {"source": vgg.source, "sha256": vgg.sha256}
        frames = clip_frames(p, seed, folder)
        extras["keys"] = [int(k) for k in _csv(p["keyframes"])]
        pairs, masks = keyframe_pairs(p, frames, extras["keys"], folder)
        model = nets.PatchNet(p["filters"], int(p["res_blocks"]))
        result = train.train_patch(
            model, vgg, pairs, masks, steps=int(p["steps"]), batch_size=int(p["batch_size"]),
            patch=int(p["patch"]), lr=float(p["lr"]), device=device,
            l1_weight=float(p["l1_weight"]), perceptual_weight=weight,
            log_every=int(p["log_every"]), seed=seed, ctx=ctx,
            probe=flicker_probe(p, seed, folder, device), probe_every=int(p["flicker_every"]),
        )  # fmt: skip
        keys = ("l1_loss", "perceptual_loss", "total_loss")
        extras["held"] = [pairs[0][0]]
        extras["pairs"], extras["masks"] = pairs, masks
    extras.setdefault("held", [])
    extras["golden"] = extras["held"][:2]
    metrics = {k: result["curves"][k][-1] for k in keys if result["curves"].get(k)}
    metrics["train_seconds"] = round(result["seconds"], 2)
    if "images_per_s" in result:
        metrics["train_images_per_s"] = round(result["images_per_s"], 2)
        if result.get("steady_images_per_s"):
            metrics["train_steady_images_per_s"] = round(result["steady_images_per_s"], 2)
    trained = Trained(model=model.float().cpu().eval(), metrics=metrics)
    trained.state.update(record=model.config(), curves=result["curves"], curve_keys=keys)
    return trained, extras


def train_model(ctx, task, table, prep, params, device: str, seed: int):
    """The style task's ``train`` for the core's pipeline: content from the table's train files."""
    from recap.ml.style import data

    p = resolve_params(params, None, str(params.get("arch") or "transformer"))
    files = [Path(f) for f in table[table["split"] == "train"]["file"]]
    content = data.content_cache(files, int(p["size"]), Path(ctx.out_dir) / "cache")
    trained, _ = train_arrays(ctx, p, p["arch"], device, seed, None, content=content)
    return trained


def run_style(ctx, folder: Path | None, arch: str) -> dict:
    """Train, export through every target, measure one style model; returns the run's summary."""
    from recap.ml import require_ml

    require_ml()
    import torch

    from recap.ml import bundle as bundlemod
    from recap.ml import targets as targetreg
    from recap.ml.style import data, export, reference, temporal
    from recap.ml.tasks import get_task

    task = get_task("style")
    p = resolve_params(ctx.params, folder, arch)
    chosen = targetreg.parse(p["targets"])  # an unknown target fails before training
    check_params(p, arch, folder)  # so does every other bad value: not after hours of training
    device = _device(ctx.device)
    if int(p["threads"]) and device == "cpu":
        # tiny uses one thread: on a shared 2-core machine, more threads than free cores made a
        # step 4x slower (measured), not faster
        torch.set_num_threads(int(p["threads"]))
    torch.manual_seed(ctx.seed)
    np.random.seed(ctx.seed)
    record = recorded_params(p, folder)
    hook = getattr(ctx, "record_params", None)
    if callable(hook):
        hook(record)
    out = Path(ctx.out_dir)
    if p["perceptual"] == "random":
        ctx.flag("not_comparable", NOT_COMPARABLE)

    trained, extras = train_arrays(ctx, p, arch, device, ctx.seed, folder)
    model = trained.model
    if "style" in extras:
        data.save_rgb(extras["style"], out / "style.png")
        ctx.save_artifact("style.png", kind="input")
    prep = task.prepare(None, p)
    training = {
        "experiment": Path(folder).name if folder else None,
        "params": p,
        "seed": ctx.seed,
        "device": device,
        "perceptual": p["perceptual"],
        "perceptual_weights": extras.get("perceptual_weights"),
    }
    meta = bundlemod.model_meta(task, prep, p, training)
    meta["architecture"] = model.config()
    torch.save(
        {"task": task.name, "record": model.config(), "prep": prep.as_dict(),
         "state_dict": model.state_dict(), "meta": meta},
        out / "model.pth",
    )  # fmt: skip
    data.save_rgb(extras["golden"][0], out / "golden-input.png")  # for `recap exp export`
    (out / "config.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    ctx.save_artifact("model.pth", kind="weights", metadata=model.config())
    ctx.save_artifact("config.json", kind="config")
    ctx.save_artifact("golden-input.png", kind="golden")

    summary: dict = dict(trained.metrics)
    curves = trained.state["curves"]
    (out / "curves.json").write_text(json.dumps(curves), encoding="utf-8")
    ctx.save_artifact("curves.json", kind="metrics")
    loss_plot(curves, out / "loss.png", trained.state["curve_keys"])
    # kept in the run folder; the site draws the same curves from the logged metrics, so the
    # pages do not show them twice
    ctx.save_artifact("loss.png", kind="file")

    # exports through every target of the core's registry, parity per target ------------------
    parity_all, ok, bundles = {}, True, {}
    for target in chosen:
        _note(ctx, f"export {target.name} and check parity")
        tmeta = meta
        if target.name == "barracuda":
            tmeta = {**meta, **_io(task.describe(prep, p, fixed=True))}
        dest = out / "bundle" / target.name
        bmeta = export.write_bundle(task, target, model, prep, tmeta, dest, extras["golden"])
        bundles[target.name] = (dest, bmeta)
        rep = bmeta["parity"]
        parity_all[target.name] = {
            "max_abs_diff_255": rep["max_abs_diff_255"],
            "ok": rep["ok"],
            "opset": bmeta.get("opset"),
            "engine": target.engine,
        }
        ok &= rep["ok"]
        summary[f"parity_{target.name}_max_diff"] = rep["max_abs_diff_255"]
        for f, kind in bundlemod.bundle_files(dest):
            ctx.save_artifact(f, kind=kind, metadata={"target": target.name})
    summary["parity_ok"] = int(ok)
    (out / "parity.json").write_text(json.dumps(parity_all, indent=2), encoding="utf-8")
    ctx.save_artifact("parity.json", kind="report")
    if not ok:
        ctx.flag("parity", "an export differs from torch by more than 0.5 (0-255): parity.json")

    # before/after grid of held-out images -------------------------------------------------
    run_torch = export.torch_runner(model)
    meta_dyn = {**meta, **task.describe(prep, p)}
    after = [reference.run_frame(h, meta_dyn, run_torch) for h in extras["held"]]
    grid(list(extras["held"]), after, out / "before-after.png")
    ctx.save_artifact("before-after.png", kind="image")

    # speed per backend on this machine -----------------------------------------------------
    _note(ctx, f"time stylising at {p['speed_sizes']} per backend")
    speed = speed_table(model, bundles, p, device)
    summary.update({f"fps_{k}": v for k, v in speed.items()})

    # temporal stability on the test clip (the stylised clip is written as a video) ---------
    frames_fn = clip_frames(p, ctx.seed, folder)
    _note(ctx, "stylise the test clip and measure its flicker")
    with data.VideoWriter(out / "stylised.mp4", fps=12) as writer:

        def stylised():
            for f in frames_fn():
                y = reference.run_frame(f, meta_dyn, run_torch)
                writer.write(y)
                yield y

        stab = temporal.stability(frames_fn(), stylised())
        summary["clip_frames"] = writer.count
    ctx.save_artifact("stylised.mp4", kind="video")
    for k in ("warp_error", "warp_error_input", "warp_error_rel", "frame_diff", "frame_diff_rel"):
        if stab.get(k) is not None:
            summary[k] = stab[k]

    sanity = task.sanity(trained, prep, None, p)
    summary.update(sanity.summary)
    for name, message in sanity.flags.items():
        ctx.flag(name, message)
    if arch == "patch":
        summary["keyframe_l1"] = _keyframe_l1(extras["pairs"], extras["masks"], meta_dyn, run_torch)
        unseen = _unseen_l1(p, frames_fn, extras["keys"], meta_dyn, run_torch)
        if unseen is not None:
            summary["unseen_l1"] = unseen
    metrics = {
        "speed_fps": speed,
        "speed_threads": torch.get_num_threads(),
        "stability": stab,
        "parity": parity_all,
        "device": device,
        "perceptual": p["perceptual"],
        # which loss network's weights: a run is comparable with another on the same file
        "perceptual_weights": extras.get("perceptual_weights"),
        "comparable": p["perceptual"] != "random",
        **sanity.report,
    }
    (out / "style-metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    ctx.save_artifact("style-metrics.json", kind="metrics")
    summary["not_comparable"] = int(p["perceptual"] == "random")
    for k, v in summary.items():
        ctx.set_summary(k, v)
    return summary


NOT_COMPARABLE = (
    "perceptual=random: the loss network is a randomly initialised VGG (no ImageNet weights), "
    "so this result is not comparable with a real run"
)


def _note(ctx, line: str) -> None:
    """A stage of the run after training, in its log and on ``recap exp run``'s spinner."""
    note = getattr(ctx, "note", None)
    if callable(note):
        note(line)


def _io(section: dict) -> dict:
    """The parts of a model.json section that change with the input shape."""
    keys = ("inputs", "outputs", "preprocess", "postprocess")
    out = {k: section[k] for k in keys}
    out["input"], out["output"] = section["inputs"][0], section["outputs"][0]
    return out


def speed_table(model, bundles: dict, p: dict, device: str = "cpu") -> dict:
    """Frames/s at each of ``speed_sizes`` on this machine: torch eager, TorchScript and the
    sentis ONNX through onnxruntime on the CPU (at most 10 frames each), and on a GPU torch eager
    fp32 and fp16 channels_last (``speed_frames`` each; the frame uploaded from the host, the
    output left on the device)."""
    import copy

    import torch

    from recap.ml.style import export

    frames = int(p["speed_frames"])
    out = {}
    runners = {"torch": (export.torch_runner(model), min(frames, 10), None)}
    if "torchscript" in bundles:
        d, m = bundles["torchscript"]
        runners["torchscript"] = (export.runner_for(d, m), min(frames, 10), None)
    if "sentis" in bundles:
        d, m = bundles["sentis"]
        runners["onnxruntime"] = (export.runner_for(d, m), min(frames, 10), None)
    if device.startswith("cuda"):
        for name, dtype, cl in (("cuda_fp32", torch.float32, False),
                                ("cuda_fp16_cl", torch.float16, True)):  # fmt: skip
            net = copy.deepcopy(model).to(device, dtype)
            if cl:
                net = net.to(memory_format=torch.channels_last)

            def run(x, net=net, dtype=dtype, cl=cl):
                t = torch.from_numpy(x).to(device, dtype)
                return net(t.contiguous(memory_format=torch.channels_last) if cl else t)

            runners[name] = (run, frames, torch.cuda.synchronize)
        if p.get("compile"):
            # the engine-like path: fp16, channels_last, the GPU form, compiled with CUDA graphs
            from recap.ml.style import nets

            torch.backends.cudnn.benchmark = bool(p["cudnn_benchmark"])
            net = copy.deepcopy(model).to(device, torch.float16)
            net = nets.gpu_form(net, phase=bool(p.get("phase_convs")))
            net = torch.compile(net.to(memory_format=torch.channels_last), mode="reduce-overhead")

            def run_c(x, net=net):
                t = torch.from_numpy(x).to(device, torch.float16)
                return net(t.contiguous(memory_format=torch.channels_last))

            runners["cuda_fp16_cl_compiled"] = (run_c, frames, torch.cuda.synchronize)
    for text in _csv(p["speed_sizes"]):
        w, h = size_of(text)
        for name, (fn, n, sync) in runners.items():
            warm = 3 if name.endswith("_compiled") else 1  # compile, then CUDA graph capture
            with torch.inference_mode():
                out[f"{name}_{h}p"] = round(measure_fps(fn, w, h, n, warm, sync=sync), 3)
    return out


def keyframe_pairs(p: dict, frames_fn, keys: list[int], folder: Path | None):
    """[(original, stylised)] uint8 pairs and optional masks for the keyframe indices.

    Stylised keyframes come from ``keyframes_dir`` (``<index>.png``, the user's paintings); the
    synthetic clip uses :func:`data.toy_stylise` as its stand-in artist.
    """
    from recap.errors import InvalidInput
    from recap.ml.style import data

    wanted = set(keys)
    originals = {i: f for i, f in enumerate(frames_fn()) if i in wanted}
    missing = wanted - set(originals)
    if missing:
        raise InvalidInput(f"keyframes {sorted(missing)} are past the clip's end")
    kdir = p.get("keyframes_dir") or ""
    pairs, masks = [], []
    for i in keys:
        src = originals[i]
        if kdir:
            path = _resolve_path(kdir, folder, "keyframes_dir") / f"{i}.png"
            dst = data.load_rgb(path)
            if dst.shape != src.shape:
                raise InvalidInput(
                    f"{path} is {_wh(dst)}, frame {i} is {_wh(src)}: same size, please"
                )
        elif str(p["clip"]) == "synthetic":
            dst = data.toy_stylise(src)
        else:
            raise InvalidInput("keyframes_dir: a folder of stylised keyframes (<index>.png)")
        pairs.append((src, dst))
        if p.get("masks"):
            path = _resolve_path(str(p["masks"]), folder, "masks") / f"{i}.png"
            m = data.load_rgb(path)
            if m.shape != src.shape:
                raise InvalidInput(
                    f"{path} is {_wh(m)}, frame {i} is {_wh(src)}: same size, please"
                )
            masks.append((m[..., 0] > 127).astype(np.uint8))
    return pairs, (masks or None)


def _wh(pixels: np.ndarray) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}"


def _keyframe_l1(pairs, masks, meta, run_fn) -> float:
    """Mean L1 (0-255) between the stylised keyframes and the artist's paintings of them, over
    the pixels the masks keep: how well the model learned the look, for any clip."""
    from recap.ml.style import reference

    errs = []
    for k, (src, painted) in enumerate(pairs):
        diff = np.abs(reference.run_frame(src, meta, run_fn).astype(np.float32) - painted)
        keep = masks[k].astype(bool) if masks is not None else np.ones(diff.shape[:2], bool)
        errs.append(float(diff[keep].mean()) if keep.any() else 0.0)
    return round(float(np.mean(errs)), 4)


def _unseen_l1(p, frames_fn, keys, meta, run_fn) -> float | None:
    """Mean L1 (0-255) on the frames that were not painted against the stand-in artist: only the
    synthetic clip has a ground truth there (a real clip's other frames were never painted)."""
    from recap.ml.style import data, reference

    if str(p["clip"]) != "synthetic" or p.get("keyframes_dir"):
        return None
    errs = [
        np.abs(
            reference.run_frame(f, meta, run_fn).astype(np.float32)
            - data.toy_stylise(f).astype(np.float32)
        ).mean()
        for i, f in enumerate(frames_fn())
        if i not in keys
    ]
    return round(float(np.mean(errs)), 4) if errs else None
