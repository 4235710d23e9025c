"""benchmarks/pose_full_device.py: the packed set gives the pose task the crops and joints the
original render gives; the device run goes through the pose experiment and reports parity."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dev():
    spec = importlib.util.spec_from_file_location(
        "pose_full_device", ROOT / "benchmarks" / "pose_full_device.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render_like(folder: Path, n: int = 20) -> Path:
    """A folder laid out as a blender-pose run (dataset.json, coco.json, images/), made from
    stick figures on a 128 px canvas (figures near the border: crop regions get clipped)."""
    from recap.ml.pose.data import make_stick_figures

    ann = make_stick_figures(folder, n, canvas=(128, 128), seed=3)
    coco = json.loads(ann.read_text())
    splits = ["train", "train", "train", "valid", "test"]
    records = [
        {"index": i, "file": im["file_name"], "split": splits[i % 5]}
        for i, im in enumerate(coco["images"])
    ]
    (folder / "coco.json").write_text(json.dumps(coco))
    doc = {"params": {"scene": "pose", "n_images": n}, "seed": 3, "sha256": "ab" * 32}
    (folder / "dataset.json").write_text(json.dumps({**doc, "records": records}))
    return folder


def test_pack_gives_the_same_crops_joints_and_splits(tmp_path, dev):
    from recap.ml.pose.data import read_coco

    src = _render_like(tmp_path / "render")
    prov = dev.pack(src, tmp_path / "pack", quality=95, shards=[])
    assert prov["images"] == 20 and prov["source_sha256"] == "ab" * 32
    assert prov["splits"] == {"train": 12, "valid": 4, "test": 4}
    assert prov["pack_sha256"] == dev.pack_sha256(tmp_path / "pack")
    import zipfile

    with zipfile.ZipFile(tmp_path / "pack" / "images.zip") as z:
        assert sorted(z.namelist()) == [f"images/{i:05d}.webp" for i in range(20)]
    assert sorted(f.name for f in (tmp_path / "pack").iterdir()) == [
        "coco.json.gz", "images.zip", "provenance.json"
    ]  # fmt: skip

    splits = {
        r["file"]: r["split"] for r in json.loads((src / "dataset.json").read_text())["records"]
    }
    want = read_coco(src / "coco.json", tmp_path / "a", (48, 64), splits=splits)
    manifest = dev.unpack(tmp_path / "pack", tmp_path / "work", quick=False)
    import pandas as pd

    from recap.ml.tasks.pose import PoseTask

    rows = pd.read_csv(manifest, dtype=str)
    got = read_coco(
        manifest.parent / "coco.json",
        tmp_path / "b",
        (48, 64),
        splits=dict(zip(rows["file"], rows["split"], strict=True)),
    )
    np.testing.assert_array_equal(got.split, want.split)
    np.testing.assert_allclose(got.joints, want.joints, atol=2e-3)  # shifted, rounded to 1e-3
    np.testing.assert_allclose(got.boxes, want.boxes, atol=2e-3)
    np.testing.assert_array_equal(got.crop_boxes[:, 2:], want.crop_boxes[:, 2:])
    from recap.ml.pose.data import load_pixels

    a = load_pixels(want.files).astype(np.float64)
    b = load_pixels(got.files).astype(np.float64)
    assert np.abs(a - b).mean() < 6  # the same pixels up to WebP's loss
    # the crops really differ from one figure to the next (not all one picture)
    assert np.abs(a[0] - a[1]).mean() > 10
    # the task reads the unpacked folder as it reads a blender-pose run
    table = PoseTask().read_table(manifest, {"input_w": 48, "input_h": 64}, 0, tmp_path / "c")
    assert len(table) == 20 and set(table["split"]) == {"train", "valid", "test"}


def test_quick_unpack_keeps_a_few_of_each_split_and_a_changed_pack_is_caught(
    tmp_path, dev, monkeypatch
):
    src = _render_like(tmp_path / "render", n=30)
    dev.pack(src, tmp_path / "pack", quality=60, shards=[])
    monkeypatch.setattr(dev, "QUICK", {"train": 4, "valid": 2, "test": 1})
    manifest = dev.unpack(tmp_path / "pack", tmp_path / "work", quick=True)
    lines = manifest.read_text().splitlines()[1:]
    assert [ln.split(",")[1] for ln in lines].count("train") == 4 and len(lines) == 7
    assert all(len(ln.split(",")[2].split()) == 34 for ln in lines)  # 17 joints, x y
    coco = json.loads((manifest.parent / "coco.json").read_text())
    assert len(coco["images"]) == len(coco["annotations"]) == 7
    assert len(list((manifest.parent / "images").iterdir())) == 7
    before = dev.pack_sha256(tmp_path / "pack")
    archive = tmp_path / "pack" / "images.zip"
    archive.write_bytes(archive.read_bytes() + b"\0")
    assert dev.pack_sha256(tmp_path / "pack") != before


@pytest.mark.slow
def test_quick_device_run_reports_metrics_and_parity_per_target(tmp_path, dev, monkeypatch):
    """The whole device path on the CPU: resnet18 at 256x192, one epoch on a few crops."""
    import torch

    torch.set_num_threads(2)
    src = _render_like(tmp_path / "render", n=20)
    dev.pack(src, tmp_path / "pack", quality=80, shards=[])
    out = tmp_path / "run"
    args = dev.argparse.Namespace(
        data=tmp_path / "pack", device="cpu", quick=True, epochs=0, out=out, threads=0,
        check_sha=True, train_budget_s=300,
    )  # fmt: skip
    monkeypatch.delenv("OUT", raising=False)
    res = dev.device_run(args)
    assert res["epochs"] == 1 and res["params"]["preset"] == "full"
    assert res["params"]["arch"] == "resnet18" and res["params"]["input_h"] == 256
    assert res["params"]["precision"] == "fp32"  # auto on the CPU
    assert res["images_per_s"] > 0
    assert set(res["parity"]) == {"barracuda", "sentis", "latest", "torchscript"}
    assert all(t["golden_px"] <= 0.5 for t in res["parity"].values())
    assert res["parity_ok"] == 1
    for key in ("pck@0.05", "pck@0.1", "oks_ap", "mean_pose_pck@0.1"):
        assert 0.0 <= res[key] <= 1.0
    assert res["sanity"].startswith(("sane", "flagged"))
    text = dev.table(res)
    assert "barracuda" in text and "PCK@0.1" in text
    assert (out / "parity.json").is_file() and (
        out / "bundle" / "barracuda" / "model.onnx"
    ).is_file()
    shutil.rmtree(out)


def test_a_training_budget_caps_the_presets_epochs(tmp_path, dev):
    """A timed calibration: a budget far below one epoch's time gives 1 epoch, a generous one
    the preset's 60."""
    import torch

    torch.set_num_threads(2)
    src = _render_like(tmp_path / "render", n=10)
    dev.pack(src, tmp_path / "pack", quality=60, shards=[])
    tight = dev.fit_epochs(tmp_path / "pack", "cpu", 1e-3, batch=2, steps=1, warmup=1)
    assert tight["epochs"] == 1 and tight["preset_epochs"] == 60
    assert tight["calibrated_images_per_s"] > 0
    loose = dev.fit_epochs(tmp_path / "pack", "cpu", 1e9, batch=2, steps=1, warmup=1)
    assert loose["epochs"] == 60
