"""The pose task through the shared pipeline: tiny runs end to end (stick figures, and a tiny
Blender set through ``data=run:<id>``), every export target, parity in pixels, the mean-pose flag,
and what the bundle tells a port (model.json, golden outputs decoded by the numpy reference).

The runs set OMP_NUM_THREADS=1 for the child: on this shared 2-core machine, two OpenMP threads
per process spin against the other engineers' jobs (a training step measured 20 ms of CPU with
one thread and 370 ms with two).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import REPO

pytest.importorskip("torch")

EXPERIMENTS = REPO / "experiments"
TARGETS = ("barracuda", "sentis", "latest", "torchscript")


@pytest.fixture
def pose_exp(log_root, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    shutil.copytree(EXPERIMENTS / "pose", log_root / "experiments" / "pose")
    return log_root


def run_pose(cli, *params):
    args = [a for p in params for a in ("-p", p)]
    r = cli("exp", "run", "pose", *args, "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["status"] == "succeeded", rec["error"]
    return rec


def folder_of(log_root, rec):
    return log_root / "runs" / rec["experiment"] / rec["id"]


@pytest.mark.slow
def test_tiny_pose_run_beats_the_mean_pose_exports_every_target_with_parity(cli, db, pose_exp):
    from recap.ml.pose import decode

    rec = run_pose(cli, "preset=tiny")
    s = rec["summary"]
    # trained: clearly better than always predicting the training set's mean pose
    assert s["pose_sane"] == 1 and rec["flags"] == {}
    assert s["pck@0.1"] > s["mean_pose_pck@0.1"] + 0.2
    assert s["pck_gain_over_mean_pose"] >= 0.1 and s["pose_vs_mean_ratio"] > 1
    assert 0 < s["oks_ap"] <= 1 and s["pixel_error"] > 0
    # parity: the numpy reference through onnxruntime vs the task's torch decode, in pixels
    assert s["parity_ok"] == 1 and s["parity_max_px_diff"] <= 0.5
    assert s["parity_max_raw_diff_onnx"] <= 1e-4 and s["parity_max_raw_diff_torchscript"] <= 1e-4
    out = folder_of(pose_exp, rec)
    for target in TARGETS:
        meta = json.loads((out / "bundle" / target / "model.json").read_text())
        assert meta["task"] == "pose" and meta["target"] == target
        pose = meta["pose"]
        assert pose["names"][9] == "left_wrist" and [9, 10] in pose["flip_pairs"]
        assert [15, 13] in pose["skeleton"]  # COCO's (16, 14), 0-based
        assert pose["heatmap_size"] == [12, 16] and pose["heatmap_stride"] == 4
        assert pose["decode"]["rule"] == "argmax" and pose["threshold"] == 0.2
        assert meta["outputs"][0]["shape"] == ["batch", 17, 16, 12]
        assert "crop_x0" in pose["to_source"]
        # the golden outputs decode, by the numpy reference alone, to the expected joints
        golden = json.loads((out / "bundle" / target / "golden.json").read_text())
        raw = np.asarray(golden["raw_output"], np.float32).reshape(1, 17, 16, 12)
        got = decode.postprocess(raw[0], meta)["points"]
        np.testing.assert_array_equal(got, np.asarray(golden["expected"]["points"], np.float32))
    ops = json.loads((out / "bundle" / "barracuda" / "operators.json").read_text())
    assert ops["ok"] and "ArgMax" not in ops["operators"]
    # the deconvolutions in phase form (faster in onnxruntime), held to the model by parity
    assert "DepthToSpace" in ops["operators"] and "ConvTranspose" not in ops["operators"]
    barracuda = json.loads((out / "bundle" / "barracuda" / "model.json").read_text())
    assert barracuda["opset"] == 9 and barracuda["model_form"] == "PoseNet.onnx_form"
    # what was stored: the summary row, the pictures and the per-joint PCK as artifacts
    row = db.execute("SELECT summary FROM run WHERE id = ?", (rec["id"],)).fetchone()
    assert json.loads(row["summary"])["pck@0.1"] == pytest.approx(s["pck@0.1"])
    paths = {
        r["path"] for r in db.execute("SELECT path FROM artifact WHERE run_id = ?", (rec["id"],))
    }
    assert {"overlays.png", "pck.png", "pck.json", "parity.json", "model.pth"} <= paths
    assert {f"bundle/{t}/model.json" for t in TARGETS} <= paths
    pck = json.loads((out / "pck.json").read_text())
    assert set(pck) == set(pose["names"]) and all(0 <= v["pck@0.1"] <= 1 for v in pck.values())
    from PIL import Image

    from recap.ml.pose import visual

    sheet = Image.open(out / "overlays.png").convert("RGB")
    tiles_h = 2 * 64 * 3  # 8 crops of 48x64 at 3x in rows of 4; the legend strip under them
    assert sheet.width == 4 * 48 * 3 and sheet.height > tiles_h
    strip = np.asarray(sheet.crop((0, tiles_h, sheet.width, sheet.height)))
    legend = set(map(tuple, strip.reshape(-1, 3).tolist()))
    assert {visual.TRUTH, visual.PRED_LEFT, visual.PRED_RIGHT, visual.PRED_MID} <= legend
    assert (strip[:, -8:] == 20).all()  # a right margin: no legend item runs off the sheet
    mirrored_image_gives_mirrored_swapped_joints(out)
    # a finished pose run re-exports from model.pth alone (no data), as any core task
    r = cli("exp", "export", rec["id"], "--target", "barracuda", "--json")
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)
    assert again["ok"] and again["opset"] == 9 and again["max_raw_diff"] <= 1e-4


def mirrored_image_gives_mirrored_swapped_joints(out):
    """The trained model (flip-augmented) on held-out crops and on their mirror images: the
    mirror's joints, mirrored back and swapped by the flip pairs, land on the original's."""
    import torch

    from recap.ml.pose.skeleton import Skeleton, flip_joints
    from recap.ml.pose.train import predict
    from recap.ml.tasks.pose import PoseTask

    ckpt = torch.load(out / "model.pth", weights_only=False)
    model = PoseTask().build(ckpt["record"])
    model.load_state_dict(ckpt["state_dict"])
    prep, meta = ckpt["prep"], ckpt["meta"]
    sk = Skeleton.from_json(meta["pose"])
    from PIL import Image

    golden = np.array(Image.open(out / "bundle" / "sentis" / "golden.png").convert("RGB"))
    pixels = np.ascontiguousarray(golden.transpose(2, 0, 1)[None])
    arch = {"head": "deconv", "input_size": [48, 64]}
    _, pts, _ = predict(model, pixels, prep["mean"], prep["std"], arch)
    _, pts_m, _ = predict(model, pixels[..., ::-1].copy(), prep["mean"], prep["std"], arch)
    back = flip_joints(pts_m, 48, sk.flip_pairs)
    d = np.linalg.norm(back - pts, axis=-1)
    assert np.median(d) <= 3.0, d  # within a heat-map cell for most joints
    # and swapping matters: without it, left and right joints would be far apart
    unswapped = pts_m.copy()
    unswapped[..., 0] = 48 - unswapped[..., 0]
    assert np.median(np.linalg.norm(unswapped - pts, axis=-1)) > np.median(d)


@pytest.mark.slow
def test_a_model_trained_on_a_fixed_pose_is_flagged(cli, db, pose_exp):
    rec = run_pose(cli, "pose=fixed", "n_images=120", "epochs=4", "targets=sentis")
    assert rec["summary"]["pose_sane"] == 0
    assert "mean pose" in rec["flags"]["pose_sanity"]
    assert rec["summary"]["mean_pose_error_norm"] < 0.01  # one pose: the mean is exact
    row = db.execute("SELECT summary FROM run WHERE id = ?", (rec["id"],)).fetchone()
    stored = json.loads(row["summary"])
    assert stored["pose_sane"] == 0 and "pose_sanity" in stored["flags"]


@pytest.fixture
def one_thread():
    """torch on one thread in this process (see the module docstring), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_regression_and_upsample_heads_export_to_barracuda_with_parity(tmp_path, one_thread):
    """The other two heads through the pipeline, one epoch each (parity, not accuracy)."""
    from recap.lab.context import RunContext
    from recap.ml.pipeline import run

    for head in ("regression", "upsample"):
        params = {"head": head, "n_images": 60, "epochs": 1, "targets": "barracuda,torchscript"}
        with RunContext.standalone(tmp_path / head, params) as ctx:
            s = run(ctx, EXPERIMENTS / "pose")
        assert s["parity_ok"] == 1 and s["parity_max_px_diff"] <= 0.5, head
        meta = json.loads((tmp_path / head / "bundle" / "barracuda" / "model.json").read_text())
        ops = json.loads((tmp_path / head / "bundle" / "barracuda" / "operators.json").read_text())
        assert "ArgMax" not in ops["operators"]
        if head == "regression":
            assert (
                meta["outputs"][0]["shape"] == ["batch", 34]
                and meta["pose"]["heatmap_size"] is None
            )
        else:
            assert "Upsample" in ops["operators"] and "ConvTranspose" not in ops["operators"]


def test_unknown_head_and_backbone_are_one_line_errors(cli, pose_exp):
    r = cli("exp", "run", "pose", "-p", "head=conv")
    assert r.exit_code != 0 and "head" in r.output and len(r.output.strip().splitlines()) == 1
    from recap.errors import InvalidInput
    from recap.ml.pose.models import build

    with pytest.raises(InvalidInput, match="unknown backbone"):
        build({"backbone": "no_such_net", "k": 17, "head": "deconv", "input_size": [48, 64],
               "heatmap_stride": 4})  # fmt: skip


@pytest.mark.slow
def test_tiny_preset_on_a_tiny_blender_set_beats_the_mean_pose(cli, db, pose_exp):
    """Blender figures (600 renders at 64 px, about 2.5 min here) -> the tiny preset through
    data=run:<id> (about 2 min): better than the mean pose, parity on every target, and the
    training run records which dataset run fed it."""
    pytest.importorskip("bpy")
    shutil.copytree(EXPERIMENTS / "blender-pose", pose_exp / "experiments" / "blender-pose")
    r = cli("exp", "run", "blender-pose", "-p", "n_images=600", "-p", "size=64", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    rec = run_pose(cli, f"data=run:{data['id'][-6:]}")
    s = rec["summary"]
    assert s["pose_sane"] == 1 and rec["flags"] == {}, s
    assert s["pck_gain_over_mean_pose"] >= 0.1
    assert s["parity_ok"] == 1 and s["parity_max_px_diff"] <= 0.5
    out = folder_of(pose_exp, rec)
    assert all((out / "bundle" / t / "model.json").is_file() for t in TARGETS)
    row = db.execute("SELECT params, environment FROM run WHERE id = ?", (rec["id"],)).fetchone()
    assert json.loads(row["environment"])["data_run"] == data["id"]
    meta = json.loads((out / "bundle" / "sentis" / "model.json").read_text())
    assert meta["pose"]["names"][0] == "nose" and len(meta["pose"]["flip_pairs"]) == 8


@pytest.mark.parametrize(
    "given, message",
    [
        (["input_w=47"], r"input_w=47: a multiple of the backbone's stride 8 \(small, depth 2\)"),
        (["preset=full", "input_h=250"], "input_h=250: a multiple of the backbone's stride 32"),
        (["sigma=-1"], "sigma=-1.0: a positive number"),
        (["threshold=1.5"], "threshold=1.5: between 0 and 1"),
        (["scale=1.5"], "scale=1.5: from 0"),
    ],
)
def test_bad_values_are_one_line_before_any_data_or_training(given, message):
    from recap.errors import InvalidInput
    from recap.lab import spec
    from recap.ml.pipeline import resolve_params
    from recap.ml.tasks.pose import PoseTask

    s = spec.load_spec(EXPERIMENTS / "pose")
    as_dict = s.as_dict()

    def resolved(pairs):
        return resolve_params(as_dict, spec.parse_params(s, pairs)[0])

    with pytest.raises(InvalidInput, match=message):
        PoseTask().check(resolved(given))
    for preset in ("tiny", "full"):
        PoseTask().check(resolved([f"preset={preset}"]))  # the presets pass


@pytest.mark.slow
def test_a_bad_crop_size_fails_the_run_in_seconds(cli, db, pose_exp):
    r = cli("exp", "run", "pose", "-p", "input_w=47")
    assert r.exit_code != 0
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == ["  error: input_w=47: a multiple of the backbone's stride 8 (small, depth 2)"]
    row = db.execute("SELECT id, status FROM run").fetchone()
    assert row["status"] == "failed"
    assert db.execute("SELECT count(*) FROM metric").fetchone()[0] == 0  # nothing trained
    assert not (pose_exp / "runs" / "pose" / row["id"] / "model.pth").exists()
