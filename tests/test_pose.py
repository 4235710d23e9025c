"""Pose: the numpy reference decode equals the task's torch decode (ties and borders included),
flip pairs, PCK, COCO OKS AP through pycocotools, the mean-pose sanity check, stick figures."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recap.ml.pose import decode, metrics  # noqa: E402
from recap.ml.pose.skeleton import COCO_KEYPOINTS, Skeleton, flip_joints  # noqa: E402


def _maps(seed: int, n: int = 6, k: int = 17, h: int = 16, w: int = 12) -> np.ndarray:
    """Random heat maps with ties and peaks on the borders and corners, on purpose."""
    rng = np.random.default_rng(seed)
    hm = rng.random((n, k, h, w), dtype=np.float32)
    # coarse values: many exact ties, between maxima and between neighbours
    hm[:2] = np.round(hm[:2] * 3) / 3
    hm[2] = 0.0  # all equal: argmax is the first cell, no shift
    hm[3, :, 0, :] = 2.0  # top row holds the maximum (ties along it)
    hm[3, :, :, -1] = 2.0  # and the right column
    hm[4, 0, -1, -1] = 5.0  # bottom-right corner
    hm[4, 1, 0, 0] = 5.0
    hm[4, 2, 5, 5] = 5.0  # inner peak with equal neighbours in x: no x shift
    hm[4, 2, 5, 4] = hm[4, 2, 5, 6] = 1.0
    return hm


@pytest.mark.parametrize("seed", range(4))
def test_numpy_argmax_decode_equals_torch_decode_with_ties_and_borders(seed):
    from recap.ml.pose import torch_ops

    hm = _maps(seed)
    cells_t, conf_t = torch_ops.decode_argmax(torch.from_numpy(hm))
    for i in range(len(hm)):
        cells, conf = decode.decode_argmax(hm[i])
        np.testing.assert_array_equal(cells, cells_t[i].numpy())  # exact: steps of 0.25
        np.testing.assert_array_equal(conf, conf_t[i].numpy())
    # the rule itself, on the planted cases
    c, _ = decode.decode_argmax(hm[2])
    assert (c == 0).all()  # a flat map: the first cell, no shift on the border
    c, _ = decode.decode_argmax(hm[4])
    assert c[0].tolist() == [11.0, 15.0] and c[1].tolist() == [0.0, 0.0]
    assert c[2, 0] == 5.0  # equal neighbours: no shift


def test_quarter_shift_goes_toward_the_higher_neighbour():
    hm = np.zeros((1, 7, 7), np.float32)
    hm[0, 3, 3], hm[0, 3, 4], hm[0, 2, 3] = 1.0, 0.5, 0.25
    cells, conf = decode.decode_argmax(hm)
    assert cells[0].tolist() == [3.25, 2.75] and conf[0] == 1.0


@pytest.mark.parametrize("beta", [1.0, 25.0])
def test_numpy_soft_argmax_equals_torch(beta):
    from recap.ml.pose import torch_ops

    hm = _maps(7)
    cells_t, conf_t = torch_ops.decode_soft_argmax(torch.from_numpy(hm), beta)
    for i in range(len(hm)):
        cells, conf = decode.decode_soft_argmax(hm[i], beta)
        np.testing.assert_allclose(cells, cells_t[i].numpy(), atol=1e-5)
        np.testing.assert_array_equal(conf, conf_t[i].numpy())
    flat = decode.decode_soft_argmax(np.zeros((1, 5, 9), np.float32))[0][0]
    np.testing.assert_allclose(flat, [4.0, 2.0], atol=1e-6)  # uniform: the centre


def test_gaussian_target_decodes_back_to_the_joint():
    """Targets drawn by the loss decode (argmax + quarter shift) to within a quarter cell."""
    from recap.ml.pose import torch_ops

    rng = np.random.default_rng(0)
    joints = torch.from_numpy(rng.uniform(4, 44, size=(3, 17, 2)).astype(np.float32))
    hm = torch_ops.gaussian_targets(joints, (12, 16), (48, 64), sigma=1.5)
    assert hm.shape == (3, 17, 16, 12) and float(hm.max()) <= 1.0
    cells, _ = torch_ops.decode_argmax(hm)
    px = torch_ops.cells_to_input(cells, (48, 64), (12, 16)).numpy()
    for i in range(3):
        ref = decode.cells_to_input(decode.decode_argmax(hm[i].numpy())[0], (48, 64), (12, 16))
        np.testing.assert_array_equal(px[i], ref)
    err = np.abs(px - joints.numpy())
    assert err.max() <= 0.25 * 4 + 1e-5  # stride 4: at most a quarter cell per axis


def test_heatmap_loss_ignores_unlabelled_joints():
    from recap.ml.pose import torch_ops

    loss = torch_ops.HeatmapLoss((48, 64), sigma=1.5)
    joints = torch.zeros(2, 17, 3)
    joints[..., :2] = 20.0
    joints[..., 2] = 2
    target = torch_ops.gaussian_targets(joints, (12, 16), (48, 64), 1.5)
    assert float(loss(target, joints)) == 0.0
    bad = target.clone()
    bad[:, 3] = 7.0  # joint 3 wrong everywhere ...
    assert float(loss(bad, joints)) > 0
    joints[:, 3, 2] = 0  # ... but unlabelled: it no longer counts
    assert float(loss(bad, joints)) == 0.0


def test_flip_pairs_swap_left_and_right():
    sk = Skeleton.coco()
    names = sk.names
    assert len(sk.flip_pairs) == 8
    assert (names.index("left_wrist"), names.index("right_wrist")) in sk.flip_pairs
    assert sk.flip_perm[names.index("nose")] == names.index("nose")
    rng = np.random.default_rng(1)
    j = np.concatenate([rng.uniform(0, 48, (17, 2)), np.full((17, 1), 2.0)], 1).astype(np.float32)
    f = flip_joints(j, 48, sk.flip_pairs)
    lw, rw = names.index("left_wrist"), names.index("right_wrist")
    assert f[lw, 0] == pytest.approx(48 - j[rw, 0]) and f[lw, 1] == j[rw, 1]
    np.testing.assert_allclose(flip_joints(f, 48, sk.flip_pairs), j, atol=1e-5)  # an involution


def test_flipped_stick_figure_image_matches_flipped_joints(tmp_path):
    """A mirrored image gives mirrored, swapped joints: the figure's left side stays on the
    image's right (it faces the camera), and the drawn colours follow the pixels, not labels."""
    from PIL import Image

    from recap.ml.pose import torch_ops
    from recap.ml.pose.data import LEFT, RIGHT, make_stick_figures, read_coco

    ann = make_stick_figures(tmp_path / "src", 12, canvas=(96, 96), seed=3)
    ps = read_coco(ann, tmp_path / "crops", (48, 64))
    sk = ps.skeleton
    x = torch.from_numpy(np.stack([np.asarray(Image.open(f)) for f in ps.files])).permute(
        0, 3, 1, 2
    )
    j = torch.from_numpy(ps.joints)
    xf, jf = torch_ops.flip_batch(x, j, torch.ones(len(x), dtype=torch.bool), sk.flip_perm)
    ls, rs = sk.names.index("left_shoulder"), sk.names.index("right_shoulder")
    assert (j[:, ls, 0] > j[:, rs, 0]).all() and (jf[:, ls, 0] > jf[:, rs, 0]).all()
    np.testing.assert_allclose(jf[:, ls, 0].numpy(), 48 - j[:, rs, 0].numpy(), atol=1e-5)
    # in the mirrored image, the pixel under the (new) left wrist has the right side's colour
    lw = sk.names.index("left_wrist")
    hits = 0
    for i in range(len(x)):
        px, py = (int(v) for v in jf[i, lw, :2])
        color = xf[i, :, py, min(px, 47)].numpy().astype(int)
        hits += int(np.abs(color - RIGHT).sum() < np.abs(color - LEFT).sum())
    assert hits >= len(x) - 2  # resizing can blur a thin limb's colour on one or two


def test_pck_and_pixel_error():
    truth = np.zeros((2, 3, 2))
    boxes = np.array([[0, 0, 100, 50], [0, 0, 20, 40]], float)
    pred = truth.copy()
    pred[0, :, 0] = [4.0, 6.0, 11.0]  # box size 100: 0.05 -> 5 px, 0.1 -> 10 px
    pred[1, :, 0] = [1.0, 3.0, 5.0]  # box size 40: 2 px, 4 px
    vis = np.array([[2, 2, 2], [2, 2, 0]])
    p05 = metrics.pck(pred, truth, vis, boxes, 0.05)
    p10 = metrics.pck(pred, truth, vis, boxes, 0.1)
    assert p05["mean"] == pytest.approx(2 / 5) and p10["mean"] == pytest.approx(4 / 5)
    np.testing.assert_allclose(p10["per_joint"], [1.0, 1.0, 0.0])
    assert metrics.pixel_error(pred, truth, vis) == pytest.approx((4 + 6 + 11 + 1 + 3) / 5)


def test_oks_ap_of_a_perfect_prediction_is_one_and_drops_when_wrong():
    rng = np.random.default_rng(0)
    n = 6
    truth = rng.uniform(10, 90, (n, 17, 2))
    vis = np.full((n, 17), 2)
    vis[0, :3] = 0
    boxes = np.tile([5.0, 5.0, 90.0, 90.0], (n, 1))
    sigmas = Skeleton.coco().sigmas
    perfect = metrics.oks_ap(truth, np.ones(n), truth, vis, boxes, sigmas)
    assert perfect["oks_ap"] == pytest.approx(1.0)
    off = metrics.oks_ap(truth + 15, np.ones(n), truth, vis, boxes, sigmas)
    assert off["oks_ap"] < 0.5


def test_mean_pose_sanity_flags_a_constant_model_and_passes_a_good_one():
    rng = np.random.default_rng(0)
    n, k = 40, 17
    boxes = np.column_stack([rng.uniform(0, 20, n), rng.uniform(0, 20, n), np.full(n, 40.0),
                             np.full(n, 60.0)])  # fmt: skip
    norm = rng.uniform(0, 1, (n, k, 2))
    truth = metrics.denormalise(norm, boxes)
    vis = np.full((n, k), 2)
    mean = metrics.mean_pose(truth, vis, boxes)
    np.testing.assert_allclose(mean, norm.mean(0), atol=1e-9)
    constant = metrics.denormalise(np.broadcast_to(mean, norm.shape), boxes)
    bad = metrics.compare_mean_pose(constant, truth, vis, boxes, mean)
    assert not bad["pose_sane"] and bad["pose_vs_mean_ratio"] == pytest.approx(1.0)
    assert bad["pck_gain_over_mean_pose"] == pytest.approx(0.0)
    assert "mean pose" in metrics.sanity_message(bad)
    good = metrics.compare_mean_pose(truth + 0.5, truth, vis, boxes, mean)
    assert good["pose_sane"] and good["pck_gain_over_mean_pose"] > 0.5
    # another constant pose (not the mean) is no better
    other = metrics.denormalise(np.full(norm.shape, 0.3), boxes)
    assert not metrics.compare_mean_pose(other, truth, vis, boxes, mean)["pose_sane"]


def test_stick_figures_read_back_as_crops(tmp_path):
    from recap.ml.pose.data import make_stick_figures, read_coco

    ann = make_stick_figures(tmp_path / "src", 20, canvas=(96, 96), seed=1)
    again = make_stick_figures(tmp_path / "again", 20, canvas=(96, 96), seed=1)
    assert ann.read_bytes() == again.read_bytes()
    ps = read_coco(ann, tmp_path / "crops", (48, 64))
    assert len(ps) == 20 and ps.joints.shape == (20, 17, 3)
    assert ps.skeleton.names == list(COCO_KEYPOINTS)
    assert set(ps.split) == {"train", "valid", "test"}
    # joints inside the crop, and mapped back through the crop box to the source exactly
    assert (ps.joints[..., 2] == 2).all()
    import json

    coco = json.loads(ann.read_text())
    src = np.asarray(coco["annotations"][5]["keypoints"], np.float32).reshape(17, 3)[:, :2]
    back = decode.input_to_source(ps.joints[5, :, :2], ps.crop_boxes[5], (48, 64))
    np.testing.assert_allclose(back, src, atol=1e-3)


def test_random_rotation_and_scale_move_pixels_and_joints_alike():
    """Blobs drawn at the joints, rotated and scaled as an image, peak where the joints went."""
    from recap.ml.pose import torch_ops

    rng = np.random.default_rng(2)
    joints = torch.zeros(4, 17, 3)
    joints[..., :2] = torch.from_numpy(rng.uniform(14, 34, (4, 17, 2)).astype(np.float32))
    joints[..., 1] += 8
    joints[..., 2] = 2
    blobs = torch_ops.gaussian_targets(joints, (48, 64), (48, 64), sigma=1.5)  # K "channels"
    rot = torch.tensor([0.0, 0.5, -0.6, 0.3])
    scale = torch.tensor([1.0, 0.8, 1.2, 1.25])
    moved, new = torch_ops.random_affine(blobs, joints, rot, scale)
    cells, _ = torch_ops.decode_argmax(moved)
    found = torch_ops.cells_to_input(cells, (48, 64), (48, 64))
    inside = new[..., 2] > 0
    assert inside.float().mean() > 0.8
    err = (found - new[..., :2]).norm(dim=-1)[inside]
    assert float(err.max()) < 1.0  # within a pixel: same transform for pixels and joints
    np.testing.assert_allclose(new[0].numpy(), joints[0].numpy(), atol=1e-4)  # identity
    outside = torch.tensor([[[47.0, 63.0, 2.0]]])
    _, gone = torch_ops.random_affine(
        torch.zeros(1, 1, 64, 48), outside, torch.zeros(1), torch.tensor([1.3])
    )
    assert float(gone[0, 0, 2]) == 0  # pushed out of the frame: unlabelled


@pytest.mark.parametrize("hw", [(6, 5), (8, 6)])
def test_phase_form_of_a_deconvolution_stage_equals_it(hw):
    """Transposed convolution + batch norm + ReLU == four 2x2 phase convolutions, interleaved."""
    from torch import nn

    from recap.ml.pose.models import PhaseDeconv

    torch.manual_seed(0)
    t = nn.ConvTranspose2d(5, 7, 4, stride=2, padding=1, bias=False)
    bn = nn.BatchNorm2d(7)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    stage = nn.Sequential(t, bn, nn.ReLU()).eval()
    x = torch.randn(2, 5, *hw)
    with torch.no_grad():
        want = stage(x)
        got = PhaseDeconv(t, bn)(x)
    assert got.shape == want.shape == (2, 7, 2 * hw[0], 2 * hw[1])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert float(want.abs().max()) > 0.5  # not a trivially zero output


def test_legacy_onnx_export_writes_the_phase_form_and_matches_torch(tmp_path):
    """barracuda (opset 9): no ConvTranspose or BatchNormalization left, DepthToSpace in their
    place, every operator one Barracuda imports; onnxruntime equals the trained network."""
    import onnx
    import onnxruntime as ort

    from recap.ml import targets
    from recap.ml.pose import models
    from recap.ml.targets.onnx import BARRACUDA_OPS

    rec = {"name": "pose", "backbone": "small", "width": 8, "depth": 3, "head": "deconv",
           "head_channels": 16, "heatmap_stride": 2, "input_size": [24, 32], "k": 17}  # fmt: skip
    torch.manual_seed(1)
    model = models.build(rec)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
    model.eval()
    assert models.onnx_form(model.train()) is model  # training mode: left alone
    model.eval()
    meta = {"inputs": [{"name": "input", "shape": ["batch", 3, 32, 24]}],
            "outputs": [{"name": "output", "shape": ["batch", 17, 16, 12]}]}  # fmt: skip
    info = targets.get_target("barracuda").export(
        model, (torch.zeros(1, 3, 32, 24),), tmp_path, meta
    )
    assert info["model_form"] == "PoseNet.onnx_form" and info["opset"] == 9
    ops = {n.op_type for n in onnx.load(str(tmp_path / "model.onnx")).graph.node}
    assert "DepthToSpace" in ops and not ops & {"ConvTranspose", "BatchNormalization"}
    form = models.onnx_form(model)
    assert form.head[-1].post is model.head[-1]  # the 1x1 heat-map conv moved before the shuffle
    assert len(model.head) == 10 and len(form.head) == 3  # three stages of three, then the 1x1
    assert ops <= BARRACUDA_OPS
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 24)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], want, atol=1e-4, rtol=1e-4)
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())  # untouched
    # the upsampling head has no deconvolution: exported as it is
    up = models.build({**rec, "head": "upsample"}).eval()
    assert models.onnx_form(up) is up
