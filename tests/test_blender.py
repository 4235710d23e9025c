"""Blender datasets: real bpy renders (in the run's child process), COCO read by pycocotools,
byte-identical reruns, the projection checked against rendered markers, shards merged, and a
training run fed by a dataset run."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

from recap.blender.dataset import parse_shard, shard_indices, split_of
from recap.blender.render import strip_png_metadata
from recap.coco import KEYPOINTS as COCO_KEYPOINTS
from recap.coco import SKELETON as COCO_SKELETON
from tests.conftest import REPO

# bpy is looked for, not imported: renders happen in the runs' child processes.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bpy") is None, reason="needs the blender extra (bpy)"
)

EXPERIMENTS = REPO / "experiments"


@pytest.fixture
def exps(log_root):
    for name in ("blender-shapes", "blender-pose"):
        shutil.copytree(EXPERIMENTS / name, log_root / "experiments" / name)
    return log_root


def run_set(cli, *args):
    r = cli("exp", "run", *args, "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["status"] == "succeeded", rec["error"]
    return rec


def run_folder(log_root, rec):
    return log_root / "runs" / rec["experiment"] / rec["id"]


def images_of(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / "images").glob("*.png"))}


# -- fast: no rendering --------------------------------------------------------------------------
def test_shards_are_disjoint_and_cover_the_set():
    parts = [shard_indices(23, f"{k}/4") for k in range(4)]
    assert sorted(i for p in parts for i in p) == list(range(23))
    assert parts[3] == [3, 7, 11, 15, 19]
    assert shard_indices(5, "") == [0, 1, 2, 3, 4]
    for bad in ("4/4", "-1/4", "1/0", "a/b", "3"):
        with pytest.raises(Exception, match="k/n"):
            parse_shard(bad)
    assert [split_of(i) for i in range(5)] == ["train", "train", "train", "valid", "test"]


def test_strip_png_metadata_keeps_pixels_drops_text():
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("render_time", "00:01.23")
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buf, format="PNG", pnginfo=info)
    raw = buf.getvalue()
    assert b"tEXt" in raw
    clean = strip_png_metadata(raw)
    assert b"tEXt" not in clean and b"render_time" not in clean
    assert Image.open(io.BytesIO(clean)).getpixel((1, 1)) == (10, 20, 30)
    # every kept chunk's CRC still checks out
    i = 8
    while i < len(clean):
        (n,) = struct.unpack(">I", clean[i : i + 4])
        crc = struct.unpack(">I", clean[i + 8 + n : i + 12 + n])[0]
        assert zlib.crc32(clean[i + 4 : i + 8 + n]) == crc
        i += 12 + n


def test_bad_shard_and_bad_merge_source(cli, exps, db):
    # A bad shard fails the run in its child at once, with the reason recorded.
    r = cli("exp", "run", "blender-shapes", "-p", "shard=2/2")
    assert r.exit_code == 1 and "shard '2/2': expected k/n with 0 <= k < n" in r.output
    row = db.execute("SELECT status, error FROM run").fetchone()
    assert row["status"] == "failed" and "shard '2/2'" in row["error"]
    r = cli("data", "merge", str(exps), "-o", str(exps / "merged"))
    assert r.exit_code == 2
    assert r.stderr.strip() == f"error: {exps}: no dataset.json (not a Blender dataset run)"


# -- renders -------------------------------------------------------------------------------------
def test_shapes_tiny_render_coco_manifest_and_records(cli, exps, db):
    from pycocotools.coco import COCO

    from recap.ml.data import read_manifest

    rec = run_set(cli, "blender-shapes")
    folder = run_folder(exps, rec)
    imgs = images_of(folder)
    assert sorted(imgs) == [f"{i:05d}.png" for i in range(8)]
    assert all(b"tEXt" not in data for data in imgs.values())
    coco = COCO(str(folder / "coco.json"))
    assert len(coco.getImgIds()) == 8 and len(coco.getAnnIds()) == 8
    names = [c["name"] for c in coco.loadCats(coco.getCatIds())]
    assert names == ["cube", "sphere", "cylinder", "cone", "torus", "monkey"]
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and 0 < w and 0 < h and x + w <= 64 and y + h <= 64
    df = read_manifest(folder / "manifest.csv")
    assert list(df["split"]) == [split_of(i) for i in range(8)]
    assert set(df["label"]) <= set(names)
    # what was stored: the set's sha256 as the primary metric, the versions, the artifacts
    row = db.execute("SELECT summary, environment FROM run WHERE id = ?", (rec["id"],)).fetchone()
    summary = json.loads(row["summary"])
    # bpy's version is in the record and the cache key: a new Blender means a new render
    assert json.loads(row["environment"])["packages"]["bpy"] == summary["bpy"]
    doc = json.loads((folder / "dataset.json").read_text())
    assert summary["dataset_sha256"] == doc["sha256"] and len(doc["sha256"]) == 64
    assert summary["bpy"] == doc["bpy"] and summary["cycles_device"] == "CPU"
    kinds = dict(db.execute("SELECT path, kind FROM artifact WHERE run_id = ?", (rec["id"],)))
    assert kinds["coco.json"] == "coco" and kinds["contact.png"] == "contact-sheet"
    from PIL import Image

    with Image.open(folder / "contact.png") as sheet:
        assert sheet.size == (4 * 160, 2 * 160)


def test_pose_tiny_keypoints_and_visibility(cli, exps):
    from pycocotools.coco import COCO

    from recap.ml.data import points_of, read_manifest

    rec = run_set(cli, "blender-pose", "-p", "figures=2")
    folder = run_folder(exps, rec)
    coco = COCO(str(folder / "coco.json"))
    (cat,) = coco.loadCats(coco.getCatIds())
    assert cat["keypoints"] == list(COCO_KEYPOINTS)
    assert cat["skeleton"] == [list(p) for p in COCO_SKELETON]
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 16
    flags = []
    for ann in anns:
        kps = ann["keypoints"]
        assert len(kps) == 51
        for x, y, v in zip(kps[0::3], kps[1::3], kps[2::3], strict=True):
            assert v in (0, 1, 2)
            if v == 0:
                assert x == 0 and y == 0
            else:
                assert 0 <= x < 64 and 0 <= y < 64
            flags.append(v)
        assert ann["num_keypoints"] == sum(v > 0 for v in kps[2::3])
    # both visible and occluded joints occur (ray cast), in a believable share
    assert flags.count(2) > len(flags) / 3 and flags.count(1) > 0
    df = read_manifest(folder / "manifest.csv")
    assert all(points_of(p).shape == (17, 2) for p in df["points"])


def test_rerun_is_byte_identical(cli, exps, db):
    rec = run_set(cli, "blender-pose", "-p", "n_images=5", "-p", "size=32")
    r = cli("rerun", rec["id"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == f"run {rec['id']}: reproduced"
    new = db.execute("SELECT id FROM run WHERE parent_id = ?", (rec["id"],)).fetchone()["id"]
    a, b = run_folder(exps, rec), exps / "runs" / "blender-pose" / new
    assert images_of(a) == images_of(b)
    for name in ("coco.json", "manifest.csv", "contact.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_two_shards_merged_equal_unsharded(cli, exps):
    base = ("blender-shapes", "-p", "n_images=7", "-p", "size=32", "-p", "samples=2")
    whole = run_folder(exps, run_set(cli, *base))
    s0 = run_set(cli, *base, "-p", "shard=0/2")
    s1 = run_set(cli, *base, "-p", "shard=1/2")
    assert sorted(images_of(run_folder(exps, s1))) == ["00001.png", "00003.png", "00005.png"]
    r = cli("data", "merge", s0["id"], "-o", str(exps / "half"))
    assert r.exit_code == 2 and "miss 3 of 7 images (indices 1, 3, 5)" in r.stderr
    out = exps / "merged"
    r = cli("data", "merge", s1["id"], s0["id"][-6:], "-o", str(out), "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["images"] == 7 and result["shards"] == 2
    assert images_of(out) == images_of(whole)
    for name in ("coco.json", "manifest.csv", "contact.png"):
        assert (out / name).read_bytes() == (whole / name).read_bytes()
    assert result["sha256"] == json.loads((whole / "dataset.json").read_text())["sha256"]
    r = cli("data", "merge", s0["id"], s1["id"], "-o", str(out))
    assert r.exit_code == 2 and "not empty" in r.stderr
    # Two render processes on one machine make the same set.
    two = run_folder(exps, run_set(cli, *base, "-p", "workers=2"))
    assert images_of(two) == images_of(whole)
    assert (two / "coco.json").read_bytes() == (whole / "coco.json").read_bytes()
    assert not list(two.glob(".worker-*"))


@pytest.mark.slow
def test_marker_centroids_match_annotations():
    proc = subprocess.run(
        [sys.executable, "-m", "recap.blender.checks", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == 6
    for row in rows:
        assert row["offset_px"] <= 0.5, row


@pytest.mark.slow
def test_training_run_records_the_dataset_run(cli, exps, db):
    shutil.copytree(
        EXPERIMENTS / "fastai-unity-keypoint", exps / "experiments" / "fastai-unity-keypoint"
    )
    for family in EXPERIMENTS.glob("fastai-unity-family.*"):  # the family's shared params
        shutil.copy(family, exps / "experiments")
    data = run_set(cli, "blender-pose", "-p", "n_images=20", "-p", "size=32")
    r = cli("exp", "run", "fastai-unity-keypoint", "-p", "data=run:bogus1", "-p", "epochs=1")
    assert r.exit_code == 2 and r.stderr.strip() == "error: no run 'bogus1' (see 'recap exp runs')"
    short = data["id"][-6:]
    train = run_set(cli, "fastai-unity-keypoint", "-p", f"data=run:{short}", "-p", "epochs=1")
    # recorded: the full id in the params (what a rerun replays), the dataset in the environment
    assert train["params"]["data"] == f"run:{data['id']}"
    row = db.execute("SELECT params, environment FROM run WHERE id = ?", (train["id"],)).fetchone()
    env = json.loads(row["environment"])
    assert json.loads(row["params"])["data"] == f"run:{data['id']}"
    assert env["data_run"] == data["id"] and env["data_experiment"] == "blender-pose"
    sha = json.loads((run_folder(exps, data) / "dataset.json").read_text())["sha256"]
    assert env["data_sha256"] == sha
    assert train["summary"]["parity_ok"] == 1
    # the model trained on the dataset's 17 joints
    bundle = sorted((run_folder(exps, train) / "bundle").glob("*/model.json"))[0]
    meta = json.loads(bundle.read_text())
    assert meta["keypoints"]["count"] == 17 and meta["output"]["shape"][-1] == 34
