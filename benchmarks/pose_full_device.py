"""The pose experiment's ``full`` preset on a lent GPU, trained on a packed Blender render.

The device has no bpy (Blender 5.0.1 is cp311 only) and no network, so the renders are made
here by a sharded ``blender-pose`` run (``recap exp run blender-pose -p shard=k/n``, joined by
``recap data merge``) and packed small enough for the device's 64 MiB ``carry``:

    python benchmarks/pose_full_device.py pack MERGED_RUN_FOLDER --out .carry/pose-full \\
        --shards RUN_FOLDER,RUN_FOLDER,...

The pack keeps, per image, the region the pose task crops (the person box grown by the
preset's padding at the preset's 192:256 aspect, plus a margin, clipped to the image) at the
render's resolution as WebP (one uncompressed zip: a file each would cost a block each), with
the COCO annotations shifted to it (gzipped; the manifest is written from them on the device),
and ``provenance.json``: the merged set's sha256, the shards' run ids and params,
the pack's own sha256 and settings. Training never sees pixels outside that region (the task's
rotation and scaling act on the crops), so the crops are the render's up to WebP's loss.

On the device (fastai and pycocotools carried as wheels in ``.whl``)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    python3 benchmarks/pose_full_device.py --data .carry/pose-full --device cuda

The run goes through recap's own path: the ``pose`` experiment's entry
(``experiments/pose/main.py``, the shared pipeline and the pose task) with a plain
``RunContext`` (it needs no database), ``preset=full`` and the pack's manifest as ``data``,
exactly what ``recap exp run pose -p preset=full -p data=run:<merged id>`` passes. It prints a
table and one JSON line: training images/s, epochs, PCK@0.05/0.1, OKS AP, the mean-pose
baseline's PCK@0.1, the sanity verdict, and parity per export target. ``--quick`` trains one
epoch on a small subset (a CPU check of the whole path in a minute or two).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INPUT_WH = (192, 256)  # the full preset's input_w, input_h
PADDING = 1.25  # the pose experiment's default padding
MARGIN = 2  # extra source pixels kept round the crop (rounding of the shifted box)
QUICK = {"train": 96, "valid": 32, "test": 8}


# -- pack (here, where the renders are) ----------------------------------------------------------
def pack(src, out: Path, quality: int, shards: list[str], method: int = 6) -> dict:
    """A merged ``blender-pose`` folder (or a list of shard folders of one set, not merged)
    -> the compact pack in ``out`` (see the module doc)."""
    import numpy as np
    from PIL import Image

    from recap.ml.pose.data import crop_box

    folders = [Path(f) for f in (src if isinstance(src, (list, tuple)) else [src])]
    docs = [json.loads((f / "dataset.json").read_text(encoding="utf-8")) for f in folders]
    cocos = [json.loads((f / "coco.json").read_text(encoding="utf-8")) for f in folders]
    dataset = docs[0]
    if any(d["params"] != dataset["params"] or d["seed"] != dataset["seed"] for d in docs):
        raise SystemExit("the folders are not shards of one set (params or seed differ)")
    split = {r["file"]: r["split"] for d in docs for r in d["records"]}
    folder_of = {
        im["file_name"]: f for f, c in zip(folders, cocos, strict=True) for im in c["images"]
    }
    coco = {**cocos[0], "images": [im for c in cocos for im in c["images"]]}
    coco["annotations"] = [a for c in cocos for a in c["annotations"]]
    anns: dict[int, list] = {}
    for a in coco["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    archive = zipfile.ZipFile(out / "images.zip", "w", zipfile.ZIP_STORED)
    images, new_anns = [], []
    t0 = time.perf_counter()
    for n_done, im in enumerate(sorted(coco["images"], key=lambda i: i["id"]), 1):
        mine = anns.get(im["id"], [])
        if len(mine) != 1:
            raise SystemExit(f"{im['file_name']}: {len(mine)} persons; the pack takes one each")
        a = mine[0]
        x, y, w, h = crop_box(a["bbox"], INPUT_WH, PADDING)
        x0, y0 = max(0, x - MARGIN), max(0, y - MARGIN)
        x1 = min(im["width"], x + w + MARGIN)
        y1 = min(im["height"], y + h + MARGIN)
        name = "images/" + Path(im["file_name"]).stem + ".webp"
        with Image.open(folder_of[im["file_name"]] / im["file_name"]) as img:
            region = img.convert("RGB").crop((x0, y0, x1, y1))
        buf = io.BytesIO()
        region.save(buf, "WEBP", quality=quality, method=method)
        archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        lab = kp[:, 2] > 0
        kp[lab, 0] -= x0
        kp[lab, 1] -= y0
        bx, by, bw, bh = a["bbox"]
        images.append(
            {
                "id": im["id"],
                "file_name": name,
                "width": x1 - x0,
                "height": y1 - y0,
                "split": split[im["file_name"]],
                "offset": [x0, y0],
            }
        )
        new_anns.append(
            {
                "id": a["id"],
                "image_id": im["id"],
                "category_id": a["category_id"],
                "bbox": [round(bx - x0, 3), round(by - y0, 3), bw, bh],
                "area": a["area"],
                "iscrowd": 0,
                "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
                "num_keypoints": a["num_keypoints"],
            }
        )
        if n_done % 2000 == 0:
            print(f"packed {n_done}/{len(coco['images'])} ({time.perf_counter() - t0:.0f} s)")
    doc = {
        "info": {**coco.get("info", {}), "packed": "person regions, WebP (pose_full_device.py)"},
        "images": images,
        "annotations": new_anns,
        "categories": coco["categories"],
    }
    _gz(out / "coco.json.gz", json.dumps(doc, separators=(",", ":")).encode())
    archive.close()
    provenance = {
        "what": "blender-pose renders for the pose experiment's full preset, packed for a device",
        "source_folders": [str(f) for f in folders],
        # one merged set: its sha256 (what an unsharded render gives); shards: each one's
        "source_sha256": dataset["sha256"] if len(docs) == 1 else [d["sha256"] for d in docs],
        "complete": sum(d["n_rendered"] for d in docs) == int(dataset["params"]["n_images"])
        if all("n_rendered" in d for d in docs)
        else None,
        "source_params": dataset["params"],
        "seed": dataset["seed"],
        "bpy": dataset.get("bpy"),
        "images": len(images),
        "splits": {s: sum(i["split"] == s for i in images) for s in ("train", "valid", "test")},
        "shards": [_shard_info(Path(s)) for s in shards],
        "pack": {
            "format": "WebP",
            "quality": quality,
            "method": method,
            "region": f"crop_box(bbox, {list(INPUT_WH)}, padding {PADDING}) + {MARGIN} px, "
            "clipped to the image; coordinates shifted by images[].offset",
        },
        "pack_sha256": pack_sha256(out),
        "bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n", "utf-8")
    return provenance


def _gz(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(data)


def _shard_info(folder: Path) -> dict:
    params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
    doc = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    timing = json.loads((folder / "timing.json").read_text(encoding="utf-8"))
    return {
        "run_id": folder.name,
        "params": params.get("params", params),
        "sha256": doc["sha256"],
        "images": doc["n_rendered"],
        "wall_s": round(timing["wall_s"], 1),
        "images_per_s": round(doc["n_rendered"] / timing["wall_s"], 2),
    }


def pack_sha256(folder: Path) -> str:
    """sha256 over the pack's images and annotation files (name and bytes, sorted)."""
    h = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "provenance.json")
    for p in files:
        rel = p.relative_to(folder).as_posix()
        h.update(rel.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


# -- the device run ------------------------------------------------------------------------------
def unpack(data: Path, work: Path, quick: bool) -> Path:
    """The pack as ``coco.json``, ``manifest.csv`` (file, split, points) and ``images/`` in
    ``work``: a ``blender-pose`` run folder's layout. ``quick``: the first few of each split."""
    coco = json.loads(gzip.decompress((data / "coco.json.gz").read_bytes()))
    if quick:
        keep, seen = set(), dict.fromkeys(QUICK, 0)
        for im in coco["images"]:
            if seen[im["split"]] < QUICK[im["split"]]:
                seen[im["split"]] += 1
                keep.add(im["file_name"])
        coco["images"] = [im for im in coco["images"] if im["file_name"] in keep]
        ids = {im["id"] for im in coco["images"]}
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
    work.mkdir(parents=True, exist_ok=True)
    (work / "coco.json").write_text(json.dumps(coco), encoding="utf-8")
    kp = {a["image_id"]: a["keypoints"] for a in coco["annotations"]}
    rows = ["file,split,points"]
    for im in coco["images"]:
        pts = " ".join(f"{v:.3f}" for i, v in enumerate(kp[im["id"]]) if i % 3 != 2)
        rows.append(f"{im['file_name']},{im['split']},{pts}")
    (work / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    names = {im["file_name"] for im in coco["images"]}
    with zipfile.ZipFile(data / "images.zip") as archive:
        archive.extractall(work, [n for n in archive.namelist() if n in names])
    return work / "manifest.csv"


def run_experiment(manifest: Path, out: Path, device: str, overrides: dict) -> dict:
    """The ``pose`` experiment's entry with a plain run context, as ``recap exp run`` calls it."""
    import importlib.util

    from recap.lab.context import RunContext

    folder = ROOT / "experiments" / "pose"
    spec = importlib.util.spec_from_file_location("recap_experiment_main", folder / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = {"preset": "full", "data": str(manifest), **overrides}
    with RunContext.standalone(out, params, seed=0, device=device, folder=folder) as ctx:
        t0 = time.perf_counter()
        summary = module.run(ctx)
        wall = time.perf_counter() - t0
    return {"summary": summary, "wall_s": wall, "params": ctx.params, "flags": ctx.flags}


def target_parity(out: Path) -> dict:
    """Per export target: the largest raw heat-map difference from torch over the parity
    images (parity.json) and the decoded joints' distance from torch's on the bundle's golden
    input (each target's runner, then the numpy reference's decode)."""
    import numpy as np

    from recap.ml import targets
    from recap.ml.tasks.pose import PoseTask

    task = PoseTask()
    report = json.loads((out / "parity.json").read_text(encoding="utf-8"))
    result = {}
    for name, info in report["targets"].items():
        dest = out / "bundle" / name
        meta = json.loads((dest / "model.json").read_text(encoding="utf-8"))
        golden = json.loads((dest / "golden.json").read_text(encoding="utf-8"))
        runner = targets.get_target(name).load(dest, meta)
        x = {
            k: np.asarray(v["values"], np.float32).reshape(v["shape"])
            for k, v in golden["inputs"].items()
        }
        got = task.postprocess(runner.run(x), meta)
        want = np.asarray(golden["expected"]["points"], np.float64)
        px = float(np.linalg.norm(np.asarray(got["points"]) - want, axis=-1).max())
        raw = max(r[f"raw_diff_{name}"] for r in report["images"])
        result[name] = {
            "engine": info["engine"],
            "opset": info["opset"],
            "raw_diff_max": raw,
            "golden_px": px,
            "ok": bool(px <= task.tolerances["px"]),
        }
    return result


def fit_epochs(
    data: Path, device: str, budget_s: float, batch: int = 0, steps: int = 20, warmup: int = 5
) -> dict:
    """The full preset's epochs, or fewer so that training fits ``budget_s``: a few timed
    training steps of the preset's network, loss, optimiser, precision and deterministic
    settings (as the pipeline sets them) on random crops give the images/s."""
    import torch

    from recap.lab.spec import load_spec
    from recap.ml import train
    from recap.ml.pipeline import resolve_params
    from recap.ml.pose import torch_ops
    from recap.ml.tasks.pose import PoseTask

    spec = load_spec(ROOT / "experiments" / "pose").as_dict()
    p = resolve_params(spec, {"preset": "full"})
    coco = json.loads(gzip.decompress((data / "coco.json.gz").read_bytes()))
    n = {s: sum(im["split"] == s for im in coco["images"]) for s in ("train", "valid")}
    w, h, bs = int(p["input_w"]), int(p["input_h"]), int(batch or p["batch_size"])
    train.seed_everything(0, device)
    rec = {"name": "pose", "backbone": p["arch"], "width": int(p["width"]),
           "depth": int(p["depth"]), "head": p["head"], "head_channels": int(p["head_channels"]),
           "heatmap_stride": int(p["heatmap_stride"]), "input_size": [w, h], "k": 17}  # fmt: skip
    model = PoseTask().build(rec).to(device)
    loss_fn = torch_ops.HeatmapLoss((w, h), sigma=float(p["sigma"]))
    opt = torch.optim.AdamW(model.parameters(), lr=float(p["lr"]))
    x = torch.randn(bs, 3, h, w, device=device)
    j = torch.rand(bs, 17, 3, device=device) * torch.tensor([w, h, 0], device=device)
    j[..., 2] = 2
    bf16 = device == "cuda" and p.get("precision", "auto") in ("auto", "bf16")

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = loss_fn(out.float(), j)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    speed = steps * bs / (time.perf_counter() - t0)
    # an epoch: the training crops, plus the validation crops forward only (about a third)
    per_epoch = n["train"] / speed + n["valid"] / (3 * speed)
    preset = int(p["epochs"])
    epochs = max(1, min(preset, int(budget_s // per_epoch)))
    return {
        "epochs": epochs,
        "preset_epochs": preset,
        "budget_s": budget_s,
        "calibrated_images_per_s": round(speed, 1),
        "estimated_train_s": round(epochs * per_epoch, 1),
    }


def events_of(out: Path) -> tuple[list[float], int]:
    from recap.lab.context import read_events

    speeds, epochs = [], 0
    for e in read_events(out):
        if e.get("type") == "metric" and e.get("key") == "images_per_s":
            speeds.append(float(e["value"]))
        if e.get("type") == "progress" and e.get("epochs"):
            epochs = max(epochs, int(e.get("epoch") or 0))
    return speeds, epochs


def device_run(args) -> dict:
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    provenance = json.loads((args.data / "provenance.json").read_text(encoding="utf-8"))
    t_all = time.perf_counter()
    if args.check_sha:
        got = pack_sha256(args.data)
        if got != provenance["pack_sha256"]:
            sys.exit(f"{args.data}: pack sha256 {got} differs from provenance.json's")
    overrides = {}
    if args.quick:
        overrides.update(epochs=1, batch_size=16)
    budget = None
    if args.epochs:
        overrides["epochs"] = args.epochs
    elif not args.quick and args.train_budget_s > 0:
        budget = fit_epochs(args.data, args.device, args.train_budget_s)
        if args.device == "cuda":
            torch.cuda.empty_cache()
        overrides["epochs"] = budget["epochs"]
        print(f"training budget: {json.dumps(budget)}", flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="pose-full-"))
    with tempfile.TemporaryDirectory(prefix="pose-data-") as tmp:
        manifest = unpack(args.data, Path(tmp), args.quick)
        run = run_experiment(manifest, out, args.device, overrides)
    s = run["summary"]
    speeds, epochs = events_of(out)
    parity = target_parity(out)
    training = json.loads((out / "bundle" / next(iter(parity)) / "model.json").read_text())
    params = {k: run["params"].get(k) for k in PARAM_KEYS}
    params["precision"] = training["training"]["precision"]  # "auto" resolved: bf16 on CUDA
    res = {
        "bench": "pose_full_device",
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
        "quick": bool(args.quick),
        "data": {
            "source_sha256": provenance["source_sha256"],
            "pack_sha256": provenance["pack_sha256"],
            "images": provenance["images"],
            "complete": provenance.get("complete"),
            "render_runs": [sh["run_id"] for sh in provenance.get("shards", [])],
        },
        "params": params,
        "epochs": epochs,
        "epochs_chosen": budget,
        "images_per_s": statistics.median(speeds[1:] or speeds) if speeds else None,
        "images_per_s_first_epoch": speeds[0] if speeds else None,
        "pipeline_wall_s": round(run["wall_s"], 1),
        "total_wall_s": round(time.perf_counter() - t_all, 1),
        **{k: s.get(k) for k in METRIC_KEYS},
        "sanity": "sane" if s.get("pose_sane") else f"flagged: {run['flags'].get('pose_sanity')}",
        "parity_ok": s.get("parity_ok"),
        "parity_max_px_diff": s.get("parity_max_px_diff"),
        "parity": parity,
        "out": str(out),
    }
    return res


PARAM_KEYS = ("preset", "arch", "head", "input_w", "input_h", "epochs", "batch_size", "lr",
              "rotate", "scale", "sigma", "precision")  # fmt: skip
METRIC_KEYS = ("pck@0.05", "pck@0.1", "oks_ap", "oks_ap50", "oks_ap75", "pixel_error",
               "mean_pose_pck@0.1", "pck_gain_over_mean_pose", "valid_loss")  # fmt: skip


KEEP = ("overlays.png", "pck.png", "pck.json", "parity.json", "config.json", "events.jsonl")


def table(res: dict) -> str:
    def f(v, fmt="{:.4f}"):
        return "-" if v is None else fmt.format(v)

    p = res["params"]
    lines = [
        f"pose full preset on {res['device']}{' (--quick subset)' if res['quick'] else ''}: "
        f"{p['arch']} + {p['head']} head, {p['input_h']}x{p['input_w']}, batch {p['batch_size']}, "
        f"precision {p['precision']}",
        f"data: {res['data']['images']} Blender renders (pack {res['data']['pack_sha256'][:12]}, "
        f"set {str(res['data']['source_sha256'])[:12]}{_complete(res)})",
        "",
        f"{'quantity':<34} value",
        f"{'epochs':<34} {res['epochs']}",
        f"{'training images/s (median)':<34} {f(res['images_per_s'], '{:.1f}')}",
        f"{'pipeline wall (s)':<34} {res['pipeline_wall_s']}",
        f"{'PCK@0.05':<34} {f(res['pck@0.05'])}",
        f"{'PCK@0.1 (primary)':<34} {f(res['pck@0.1'])}",
        f"{'OKS AP (pycocotools)':<34} {f(res['oks_ap'])}",
        f"{'OKS AP50 / AP75':<34} {f(res['oks_ap50'])} / {f(res['oks_ap75'])}",
        f"{'mean pixel error (input px)':<34} {f(res['pixel_error'], '{:.2f}')}",
        f"{'mean-pose baseline PCK@0.1':<34} {f(res['mean_pose_pck@0.1'])}",
        f"{'sanity':<34} {res['sanity']}",
        f"{'parity (pipeline verdict)':<34} {'ok' if res['parity_ok'] else 'FAILED'} "
        f"(max {f(res['parity_max_px_diff'], '{:.3f}')} px)",
        "",
        f"{'target':<12} {'engine':<12} {'opset':>5} {'max raw diff':>13} {'golden px':>10}  ok",
    ]
    for name, t in res["parity"].items():
        lines.append(
            f"{name:<12} {t['engine']:<12} {str(t['opset'] or '-'):>5} "
            f"{t['raw_diff_max']:>13.2e} {t['golden_px']:>10.3f}  {'yes' if t['ok'] else 'NO'}"
        )
    return "\n".join(lines)


def _complete(res: dict) -> str:
    return "" if res["data"].get("complete") in (True, None) else ", an incomplete set"


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pack"]:
        ap = argparse.ArgumentParser(prog="pose_full_device.py pack", description=pack.__doc__)
        ap.add_argument(
            "src", type=Path, nargs="+", help="a merged blender-pose run folder, or its shards"
        )
        ap.add_argument("--out", type=Path, required=True)
        ap.add_argument("--quality", type=int, default=70, help="WebP quality")
        ap.add_argument("--shards", default="", help="comma-separated shard run folders")
        a = ap.parse_args(argv[1:])
        shards = [s for s in a.shards.split(",") if s]
        prov = pack(a.src if len(a.src) > 1 else a.src[0], a.out, a.quality, shards)
        print(json.dumps({k: v for k, v in prov.items() if k != "shards"}, indent=1))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the pack folder (.carry/pose-full)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument("--quick", action="store_true", help="one epoch on a small subset")
    ap.add_argument("--epochs", type=int, default=0, help="0: the full preset's (or the budget's)")
    ap.add_argument(
        "--train-budget-s",
        type=float,
        default=300,
        help="fewer epochs than the preset's when a timed calibration says they would take "
        "longer than this (0: the preset's epochs whatever they take)",
    )
    ap.add_argument("--out", type=Path, default=None, help="run folder (default: a temp folder)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--check-sha", action="store_true", help="verify the pack's sha256 first")
    args = ap.parse_args(argv)
    res = device_run(args)
    print("\n" + table(res))
    if os.environ.get("OUT"):  # the device's folder that comes back: the small files only
        dest = Path(os.environ["OUT"])
        (dest / "pose_full_device.json").write_text(json.dumps(res, indent=1))
        for name in KEEP:
            if (Path(res["out"]) / name).is_file():
                shutil.copyfile(Path(res["out"]) / name, dest / name)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
