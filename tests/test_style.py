"""The style family: networks, exports, the perceptual loss's weights, video, flicker, stylize."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"
ALLOWED_BARRACUDA = {"Pad", "Upsample", "InstanceNormalization", "Conv", "Relu", "Add", "Mul"}


def _onnx_nodes(path: Path):
    import onnx

    m = onnx.load(str(path))
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    return m, opset


# -- temporal stability -------------------------------------------------------------------------
def test_warping_error_is_zero_for_identical_frames_and_higher_for_flicker():
    from recap.ml.style import data, temporal

    frame = next(data.synthetic_clip(1, 64, 96, seed=1))
    same = temporal.stability([frame] * 5, [frame] * 5)
    assert same["pairs"] == 4
    assert same["warp_error"] == 0.0 and same["frame_diff"] == 0.0
    assert same["warp_error_rel"] == 1.0  # 0 / 0: as stable as the input

    clip = list(data.synthetic_clip(8, 64, 96, seed=2))
    stable = temporal.stability(clip, clip)
    flicker = temporal.stability(clip, list(data.synthetic_clip(8, 64, 96, seed=2, flicker=25)))
    assert stable["warp_error_rel"] == pytest.approx(1.0)
    assert flicker["warp_error"] > 2 * stable["warp_error"]
    assert flicker["frame_diff"] > stable["frame_diff"]
    assert 0 <= flicker["occluded_fraction"] < 0.5


def test_clip_probe_measures_what_stability_does_and_the_flicker_growth_rule():
    from recap.ml.style import data, temporal

    clip = list(data.synthetic_clip(6, 64, 96, seed=2))
    noisy = list(data.synthetic_clip(6, 64, 96, seed=2, flicker=25))
    probe = temporal.ClipProbe(clip)
    whole = temporal.stability(clip, noisy)
    got = probe.measure(noisy)
    assert got["warp_error_rel"] == pytest.approx(whole["warp_error_rel"], rel=1e-9)
    assert got["frame_diff_rel"] == pytest.approx(whole["frame_diff_rel"], rel=1e-9)
    assert probe.measure(clip)["warp_error_rel"] == pytest.approx(1.0)

    grew = temporal.flicker_grows([250, 500, 750, 1000], [0.9, 0.6, 0.7, 0.8])
    assert grew["flag"] and grew["lowest_step"] == 500 and grew["growth"] == pytest.approx(1 / 3)
    assert "0.6 at step 500 -> 0.8 at the end (+33%)" in grew["rule"]
    assert not temporal.flicker_grows([1, 2, 3], [0.9, 0.6, 0.7])["flag"]  # +17%: under 20%
    assert not temporal.flicker_grows([1, 2], [0.5, 0.9])["flag"]  # too few to judge
    assert not temporal.flicker_grows([1, 2, 3], [0.5, None, 0.9])["flag"]


def test_palette_only_rule_on_loss_curves():
    from recap.ml.style import temporal

    steps = 40
    falling = [1000 * 0.9**i for i in range(steps)]
    flat = [500.0] * steps
    low_content = [10.0] * steps
    high_content = [5000.0] * steps
    assert temporal.palette_only(flat, low_content)["flag"] is True
    assert temporal.palette_only(falling, low_content)["flag"] is False
    assert temporal.palette_only(flat, high_content)["flag"] is False  # content not matched yet
    assert temporal.palette_only(flat[:4], low_content[:4])["flag"] is False


# -- reference pre/post-processing ---------------------------------------------------------------
@pytest.mark.parametrize("value_range", ["0-255", "-1-1"])
def test_reference_round_trip_and_padding(value_range):
    from recap.ml.style import reference

    meta = reference.section(value_range, 4, None)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    x = reference.preprocess(pixels, meta)
    lo, hi = meta["preprocess"]["value_range"]
    assert x.shape == (1, 3, 30, 50) and x.min() >= lo and x.max() <= hi + 1e-5
    out = reference.run_frame(pixels, meta, lambda a: a)  # the identity "model"
    assert out.shape == pixels.shape and np.array_equal(out, pixels)
    padded, _ = reference.pad_to_multiple(pixels, 4)
    assert padded.shape == (32, 52, 3)
    over = reference.postprocess(np.full((1, 3, 2, 2), 1e4, np.float32), meta)
    assert over.max() == 255  # clamped


# -- the perceptual network's weights -------------------------------------------------------------
def test_missing_vgg_weights_is_one_line_naming_the_file(tmp_path, monkeypatch):
    from recap.errors import NotFound
    from recap.ml.style import losses

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(NotFound) as err:
        losses.VGGFeatures("vgg16")
    msg = str(err.value)
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert str(expected) in msg and "\n" not in msg
    with pytest.raises(NotFound, match="nowhere.pth"):
        losses.VGGFeatures("vgg19", weights=tmp_path / "nowhere.pth")


def test_vgg_weights_load_from_a_path_and_random_only_when_asked(tmp_path):
    import torch
    from torchvision.models import vgg as tv_vgg

    from recap.ml.style import losses

    torch.manual_seed(3)
    features = tv_vgg.make_layers(tv_vgg.cfgs["D"])  # torchvision's vgg16 state dict keys
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full checkpoint has these: ignored
    torch.save(state, tmp_path / "vgg16.pth")
    vgg = losses.VGGFeatures("vgg16", ["relu1_2", "relu2_2"], weights=tmp_path / "vgg16.pth")
    assert vgg.source == str(tmp_path / "vgg16.pth")
    assert vgg.sha256 == hashlib.sha256((tmp_path / "vgg16.pth").read_bytes()).hexdigest()
    assert torch.equal(vgg.features[0].weight, features[0].weight)
    assert len(vgg.features) == 9  # cut after relu2_2
    a = losses.VGGFeatures("vgg16", ["relu1_2"], random_init=True, seed=1)
    b = losses.VGGFeatures("vgg16", ["relu1_2"], random_init=True, seed=1)
    assert a.source == "random" and torch.equal(a.features[0].weight, b.features[0].weight)
    x = torch.rand(1, 3, 32, 32)
    feats = vgg(x)
    assert set(feats) == {"relu1_2", "relu2_2"} and feats["relu2_2"].shape == (1, 128, 16, 16)
    g = losses.gram(feats["relu1_2"])
    assert g.shape == (1, 64, 64) and torch.allclose(g, g.transpose(1, 2))


def test_a_wrong_or_partial_vgg_file_is_one_line(tmp_path, monkeypatch):
    """Named as torchvision names it, the file's sha256 must start with the name's digits (as
    torchvision checks); any file must hold a VGG's features.N state dict."""
    import torch

    from recap.errors import InvalidInput
    from recap.ml.style import losses

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = losses.weights_file("vgg16")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    with pytest.raises(InvalidInput, match=r"vgg16-397923af\.pth: its sha256 starts [0-9a-f]{8}, "):
        losses.VGGFeatures("vgg16")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "resnet.pth")
    with pytest.raises(InvalidInput, match=r"resnet\.pth is not vgg16's ImageNet state dict") as e:
        losses.VGGFeatures("vgg16", weights=tmp_path / "resnet.pth")
    assert "\n" not in str(e.value)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(InvalidInput, match=r"junk\.pth is not vgg16's"):
        losses.VGGFeatures("vgg16", weights=tmp_path / "junk.pth")


# -- networks and the barracuda export -----------------------------------------------------------
@pytest.mark.parametrize("cin,cout,k", [(3, 32, 9), (32, 3, 9), (5, 7, 5), (16, 16, 7)])
def test_phase_conv_is_the_plain_convolution(cin, cout, k):
    """The phase form of a stride-1 convolution (four 2x2 phases, a (k//2+1)-tap kernel, pixel
    shuffle back) gives the plain convolution's output and weight, bias and input gradients."""
    import torch
    from torch import nn

    from recap.ml.style import nets

    torch.manual_seed(1)
    conv = nn.Conv2d(cin, cout, k).double()
    x = torch.randn(2, cin, 12 + k - 1, 16 + k - 1, dtype=torch.float64, requires_grad=True)
    outs = []
    for fn in (conv, lambda t: nets.phase_conv(t, conv, 8)):
        conv.zero_grad()
        x.grad = None
        y = fn(x)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        outs.append([y.detach(), x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()])
    assert outs[0][0].shape == (2, cout, 12, 16)
    for a, b in zip(*outs, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)
    # an odd side has no phase form: the layer falls back to the aligned convolution
    layer = nets.ConvLayer(3, 8, 9).double()
    nets.gpu_form(layer, 8, phase=True)
    odd = torch.rand(1, 3, 11, 12, dtype=torch.float64)
    assert layer.phase and torch.allclose(layer(odd), layer.conv(layer.pad(odd)), atol=1e-9)


@pytest.mark.parametrize("arch", ["transformer", "patch"])
def test_gpu_form_gives_the_same_numbers_and_gradients_and_switches_back(arch):
    """The GPU form (pads from slices, RGB convs' channels padded to 8) is a faster way to the same
    outputs and gradients; training switches it off again, so exports see plain Pad + Conv."""
    import torch

    from recap.ml.style import losses, nets

    torch.manual_seed(0)
    net = (nets.TransformerNet((8, 16, 32), 1, skips=True) if arch == "transformer"
           else nets.PatchNet((8, 16, 32), 1).eval()).double()  # fmt: skip
    x = torch.rand(2, 3, 20, 28, dtype=torch.float64) * 255
    grads = []
    for multiple, phase in ((0, False), (8, False), (8, True)):
        nets.gpu_form(net, multiple, phase=phase)
        net.zero_grad()
        y = net(x)
        y.square().mean().backward()
        grads.append((y.detach(), [p.grad.clone() for p in net.parameters()]))
    (y0, g0), *forms = grads
    for y1, g1 in forms:
        assert torch.allclose(y0, y1, rtol=0, atol=1e-9)
        for a, b in zip(g0, g1, strict=True):
            assert torch.allclose(a, b, rtol=1e-7, atol=1e-9)
    layers = [m for m in net.modules() if isinstance(m, nets.ConvLayer)]
    assert {m.align for m in layers} == {8}
    nets.gpu_form(net, 0)
    assert {m.align for m in layers} == {0}
    # the loss network's first conv (3 colour channels) aligned the same way
    vgg = losses.VGGFeatures("vgg16", ["relu1_2", "relu2_2"], random_init=True).double()
    plain = vgg(x / 255)
    vgg.align = 8
    assert all(torch.allclose(plain[k], v, atol=1e-9) for k, v in vgg(x / 255).items())

    # a training call with align leaves the model in the plain form for export
    content = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    if arch == "transformer":
        from recap.ml.style import train

        model = nets.TransformerNet((8, 16, 32), 1)
        loss_fn = losses.PerceptualLoss(vgg.float(), torch.rand(1, 3, 32, 32), ["relu1_2"])
        train.train_transformer(model, loss_fn, content, steps=1, batch_size=2, lr=1e-3,
                                device="cpu", align=8, log_every=1)  # fmt: skip
        assert {m.align for m in model.modules() if isinstance(m, nets.ConvLayer)} == {0}
        assert loss_fn.vgg.align == 0


@pytest.mark.parametrize("skips", [False, True])
def test_transformer_net_any_multiple_of_4_and_barracuda_ops(tmp_path, skips):
    import torch

    from recap.ml.style import export, nets
    from recap.ml.style.experiment import resolve_params
    from recap.ml.targets import get_target
    from recap.ml.tasks import get_task

    net = nets.TransformerNet((8, 16, 32), 1, skips=skips).eval()
    for h, w in ((64, 64), (36, 52)):
        assert net(torch.rand(1, 3, h, w) * 255).shape == (1, 3, h, w)
    task = get_task("style")
    p = resolve_params({"fixed_size": "96x64"}, None, "transformer")
    prep = task.prepare(None, p)
    meta = {"architecture": net.config(), **task.describe(prep, p, fixed=True)}
    golden = [np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)]
    out = export.write_bundle(
        task, get_target("barracuda"), net, prep, meta, tmp_path / "b", golden
    )
    m, opset = _onnx_nodes(tmp_path / "b" / "model.onnx")
    ops = {n.op_type for n in m.graph.node}
    assert opset == 9 and ops <= ALLOWED_BARRACUDA and {"Pad", "Upsample"} <= ops
    for n in m.graph.node:
        if n.op_type == "Pad":  # plain Pad: reflect, pads an attribute (no dynamic-pads subgraph)
            attrs = {a.name: a for a in n.attribute}
            assert attrs["mode"].s == b"reflect" and len(n.input) == 1
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 96]
    assert out["parity"]["ok"] and out["parity"]["max_abs_diff_255"] <= 0.5
    report = json.loads((tmp_path / "b" / "operators.json").read_text())
    assert report["ok"] and report["engine"] == "barracuda"
    assert "InstanceNormalization" in report["engine_notes"]


def test_an_unknown_target_or_arch_is_one_line(cli):
    r = cli("stylize", "nope", "x.png", "--backend", "tpu")
    assert r.exit_code != 0 and r.stderr.strip().count("\n") == 0 and "backend" in r.stderr
    from recap.errors import InvalidInput
    from recap.ml.style import nets

    with pytest.raises(InvalidInput, match="transformer, patch"):
        nets.build({"arch": "unet"})
    with pytest.raises(InvalidInput, match="three"):
        nets.parse_filters("8,16")


# -- data and video ------------------------------------------------------------------------------
def test_video_round_trip_is_streamed_and_keeps_frames_and_size(tmp_path):
    from recap.ml.style import data

    n = data.write_video(data.synthetic_clip(12, 64, 96, seed=0), tmp_path / "clip.mp4", fps=12)
    assert n == 12
    info = data.video_info(tmp_path / "clip.mp4")
    assert (info["width"], info["height"], info["frames"]) == (96, 64, 12)
    frames = list(data.read_frames(tmp_path / "clip.mp4"))
    assert len(frames) == 12 and frames[0].shape == (64, 96, 3)
    assert not list(tmp_path.glob(".*part*"))  # the temporary name was renamed away


def test_unreadable_videos_and_images_are_one_line_errors_naming_the_file(tmp_path):
    from recap.errors import InvalidInput, NotFound
    from recap.ml.style import data

    good = tmp_path / "clip.mp4"
    data.write_video(data.synthetic_clip(4, 32, 32, seed=0), good, fps=4)
    (tmp_path / "junk.mp4").write_bytes(b"junk")
    (tmp_path / "half.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "junk.png").write_bytes(b"junk")
    for name in ("junk.mp4", "half.mp4"):
        with pytest.raises(InvalidInput, match=f"cannot read video {tmp_path / name}: Invalid"):
            list(data.read_frames(tmp_path / name))
        with pytest.raises(InvalidInput, match="cannot read video"):
            data.video_info(tmp_path / name)
    with pytest.raises(NotFound, match="video .* not found"):
        data.video_info(tmp_path / "none.mp4")
    with pytest.raises(InvalidInput, match=f"cannot read image {tmp_path / 'junk.png'}: not an"):
        data.load_rgb(tmp_path / "junk.png")


def test_content_cache_resizes_and_crops_once(tmp_path):
    from recap.ml.style import data

    for i, (h, w) in enumerate([(40, 80), (90, 30), (50, 50)]):
        data.save_rgb(np.full((h, w, 3), 40 * i, np.uint8), tmp_path / "img" / f"{i}.png")
    files = data.list_images(tmp_path / "img")
    arr = data.content_cache(files, 32, tmp_path / "cache")
    assert arr.shape == (3, 32, 32, 3) and arr.dtype == np.uint8
    assert int(arr[2, 0, 0, 0]) == 80
    cached = list((tmp_path / "cache").glob("content-32-*.npy"))
    assert len(cached) == 1
    before = cached[0].stat().st_mtime_ns
    data.content_cache(files, 32, tmp_path / "cache")
    assert cached[0].stat().st_mtime_ns == before  # reused, not rebuilt


@pytest.mark.slow
def test_a_broken_content_image_or_a_missing_style_is_one_line_and_leaves_no_cache(
    cli, db, log_root, tmp_path
):
    from recap.ml.style import data

    shutil.copytree(EXPERIMENTS / "style-transfer", log_root / "experiments" / "style-transfer")
    imgs = tmp_path / "imgs"
    for i in range(3):
        data.save_rgb(np.full((40, 50, 3), 60 * i, np.uint8), imgs / f"{i}.jpg")
    (imgs / "broken.jpg").write_bytes(b"not a jpeg")
    r = cli("exp", "run", "style-transfer", "-p", f"data={imgs}", "-p", f"style={tmp_path}/no.png")
    assert r.exit_code != 0
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [f"  error: style image '{tmp_path}/no.png' not found"]  # checked first
    r = cli("exp", "run", "style-transfer", "-p", f"data={imgs}", "-p", f"style={imgs}/1.jpg")
    assert r.exit_code != 0
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [f"  error: cannot read image {imgs}/broken.jpg: not an image"]
    statuses = [row[0] for row in db.execute("SELECT status FROM run")]
    assert statuses == ["failed", "failed"]
    runs = log_root / "runs" / "style-transfer"
    assert not list(runs.rglob("*.npy"))  # the half-built content cache was removed


# -- end to end (tiny presets on the CPU) --------------------------------------------------------
def _check_bundles(run_dir: Path, arch: str) -> dict:
    allowed = ALLOWED_BARRACUDA | ({"Tanh", "BatchNormalization"} if arch == "patch" else set())
    parity = json.loads((run_dir / "parity.json").read_text())
    assert set(parity) == {"barracuda", "sentis", "latest", "torchscript"}
    for target, rep in parity.items():
        assert rep["ok"] and rep["max_abs_diff_255"] <= 0.5, (target, rep)
    m, opset = _onnx_nodes(run_dir / "bundle" / "barracuda" / "model.onnx")
    assert opset == 9 and {n.op_type for n in m.graph.node} <= allowed
    _, opset = _onnx_nodes(run_dir / "bundle" / "sentis" / "model.onnx")
    assert opset == 15
    meta = json.loads((run_dir / "bundle" / "sentis" / "model.json").read_text())
    assert meta["task"] == "style" and meta["inputs"][0]["shape"] == [1, 3, "height", "width"]
    assert (run_dir / "bundle" / "torchscript" / "model.pt").exists()
    return parity


@pytest.mark.slow
def test_style_transfer_tiny_run_and_stylize_cli(cli, db, log_root, tmp_path):
    from recap.ml.style import data

    shutil.copytree(EXPERIMENTS / "style-transfer", log_root / "experiments" / "style-transfer")
    r = cli("exp", "run", "style-transfer", "-p", "preset=tiny")
    assert r.exit_code == 0, r.output
    row = db.execute("SELECT id, summary, params FROM run ORDER BY started DESC LIMIT 1").fetchone()
    summary = json.loads(row["summary"])
    assert summary["parity_ok"] == 1 and summary["clip_frames"] == 12
    assert summary["not_comparable"] == 1 and "not_comparable" in summary.get("flags", {})
    run_dir = log_root / "runs" / "style-transfer" / row["id"]
    _check_bundles(run_dir, "transformer")
    recorded = json.loads(row["params"])
    assert recorded == json.loads((run_dir / "config.json").read_text())
    # the record holds the declared params with the values used: a rerun replays them all
    from recap.lab.spec import load_spec, parse_params

    spec = load_spec(log_root / "experiments" / "style-transfer")
    assert set(recorded) == set(spec.params)
    assert recorded["compile"] is False and recorded["clip_size"] == "96x64"
    assert parse_params(spec, recorded, lenient=True)[1] == []  # no "unknown param ... dropped"
    curves = json.loads((run_dir / "curves.json").read_text())
    assert curves["style_loss"][-1] < curves["style_loss"][0]  # it learned something
    # progress in the run's log: steps with the time left, then each stage after training
    log = (run_dir / "run.log").read_text().splitlines()
    steps = [line for line in log if line.startswith("step ")]
    assert len(steps) == 12 and steps[-1].startswith("step 60/60  content_loss=")
    assert steps[-1].endswith("ETA 0:00:00")
    stages = [line for line in log if not line.startswith("step ")]
    assert stages[:1] == ["export barracuda and check parity"]
    assert stages[-1] == "stylise the test clip and measure its flicker"
    info = data.video_info(run_dir / "stylised.mp4")
    assert (info["frames"], info["width"], info["height"]) == (12, 96, 64)
    metrics = json.loads((run_dir / "style-metrics.json").read_text())
    assert metrics["comparable"] is False and "palette_only" in metrics
    assert metrics["perceptual_weights"] == {"source": "random", "sha256": None}
    # flicker measured while training (every 20 steps), the last at the end equal to the final
    probes = metrics["flicker_during_training"]["probes"]
    assert [q["step"] for q in probes] == [20, 40, 60]
    assert probes[-1]["warp_error_rel"] == pytest.approx(summary["warp_error_rel"], rel=1e-9)
    stored = db.execute(
        "SELECT step, value FROM metric WHERE run_id = ? AND key = 'warp_error_rel' ORDER BY step",
        (row["id"],),
    ).fetchall()
    assert [r["step"] for r in stored] == [20, 40, 60]
    assert summary["flicker_grows"] == int(metrics["flicker_during_training"]["flag"])
    kinds = {a["path"]: a["kind"] for a in db.execute("SELECT path, kind FROM artifact")}
    assert kinds["before-after.png"] == "image" and kinds["loss.png"] == "file"  # not shown twice
    assert kinds["bundle/barracuda/model.onnx"] == "onnx"
    assert db.execute(
        "SELECT count(*) FROM metric WHERE run_id = ? AND key = 'style_loss'", (row["id"],)
    ).fetchone()[0] == len(curves["style_loss"])  # fmt: skip

    # recap stylize: a folder of images and a 12-frame video, torch and onnx backends
    src = tmp_path / "in"
    data.write_video(data.synthetic_clip(12, 64, 96, seed=5), src / "clip.mp4", fps=12)
    data.save_rgb(next(data.synthetic_clip(1, 50, 70, seed=6)), src / "still.jpg")
    for backend in ("torch", "onnx"):
        out = tmp_path / f"out-{backend}"
        r = cli("stylize", row["id"], str(src), "--out", str(out), "--backend", backend, "--json")
        assert r.exit_code == 0, r.output
        outputs = json.loads(r.stdout)["outputs"]
        assert {Path(o["output"]).name for o in outputs} == {"clip.mp4", "still.png"}
        info = data.video_info(out / "in" / "clip.mp4")
        assert (info["frames"], info["width"], info["height"]) == (12, 96, 64)
        assert data.load_rgb(out / "in" / "still.png").shape == (50, 70, 3)
    a = data.load_rgb(tmp_path / "out-torch" / "in" / "still.png").astype(int)
    b = data.load_rgb(tmp_path / "out-onnx" / "in" / "still.png").astype(int)
    assert np.abs(a - b).max() <= 1  # same pre/post-processing, parity within rounding
    assert sorted(p.name for p in src.iterdir()) == ["clip.mp4", "still.jpg"]  # nothing beside
    r = cli("stylize", row["id"], str(src / "still.jpg"), "--size", "64x48")
    assert r.exit_code == 0, r.output
    assert data.load_rgb(run_dir / "stylized" / "still.png").shape == (48, 64, 3)


@pytest.mark.slow
def test_style_video_tiny_run_end_to_end(tmp_path):
    from recap.lab.context import RunContext
    from recap.ml.style import data
    from recap.ml.style.experiment import run_style

    with RunContext.standalone(tmp_path / "run", {"preset": "tiny"}) as ctx:
        summary = run_style(ctx, EXPERIMENTS / "style-video", "patch")
    run_dir = tmp_path / "run"
    _check_bundles(run_dir, "patch")
    assert summary["parity_ok"] == 1 and summary["clip_frames"] == 12
    # it learned the painted look: closer to the paintings than the unpainted frames are
    frames = list(data.synthetic_clip(12, 64, 96, seed=0))

    def as_is(idx):
        return np.mean([np.abs(frames[i] - data.toy_stylise(frames[i]).astype(float)).mean()
                        for i in idx])  # fmt: skip

    assert summary["keyframe_l1"] < 0.8 * as_is([0, 6])
    assert summary["unseen_l1"] < 0.8 * as_is([i for i in range(12) if i not in (0, 6)])
    assert summary["flicker_grows"] in (0, 1)  # measured at steps 20, 40, 60 of the patch model
    info = data.video_info(run_dir / "stylised.mp4")
    assert (info["frames"], info["width"], info["height"]) == (12, 96, 64)
    meta = json.loads((run_dir / "bundle" / "sentis" / "model.json").read_text())
    assert meta["preprocess"]["value_range"] == [-1.0, 1.0]


@pytest.mark.slow
def test_perceptual_imagenet_without_weights_stops_the_run_in_one_line(cli, log_root, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(log_root / "no-torch-home"))
    shutil.copytree(EXPERIMENTS / "style-transfer", log_root / "experiments" / "style-transfer")
    r = cli("exp", "run", "style-transfer", "-p", "perceptual=imagenet", "-p", "steps=1")
    assert r.exit_code != 0
    assert "vgg16-397923af.pth" in r.output and "perceptual=random" in r.output


def test_style_experiments_document_every_param_and_name_the_style_task():
    import tomllib

    from recap.lab.spec import load_spec

    for name in ("style-transfer", "style-video"):
        folder = EXPERIMENTS / name
        spec = load_spec(folder)  # checked against the task and target registries
        assert spec.ml["task"] == "style" and spec.project == "style-transfer"
        readme = (folder / "README.md").read_text()
        assert "**Question:**" in readme
        for param in tomllib.loads((folder / "experiment.toml").read_text())["params"]:
            assert f"`{param}`" in readme, (name, param)


@pytest.mark.parametrize(
    "given, expect",
    [
        ([], {"compile": True, "channels_last": True, "cudnn_benchmark": True, "gpu_form": True}),
        (["compile=false", "gpu_form=off"], {"compile": False, "gpu_form": False}),
        (["compile="], {"compile": True}),  # empty: back to the preset's choice
        (["preset=tiny"], {"compile": False, "gpu_form": False, "channels_last": False}),
        (["preset=tiny", "cudnn_benchmark=true"], {"cudnn_benchmark": True}),
    ],
)
def test_the_full_presets_switches_can_be_turned_off(log_root, given, expect):
    """-p compile=false under the full preset is a choice (False is not "empty")."""
    from recap.lab import runner, spec
    from recap.ml.style.experiment import resolve_params

    folder = EXPERIMENTS / "style-transfer"
    s = spec.load_spec(folder)
    pairs = ["preset=full", *given]
    values, _ = spec.parse_params(s, pairs)
    p = resolve_params(values, folder, "transformer")
    assert {k: p[k] for k in expect} == expect
    assert p["phase_convs"] is False  # no preset turns it on
    # what the cache key sees: an explicit false is not the same run as the preset's choice
    key = runner.run_cache_key(s, values, 0, "cpu", log_root, fhash="f", code="c")
    unset, _ = spec.parse_params(s, [pairs[0]] + [g for g in given if g.startswith("preset")])
    same = values == unset
    assert (key == runner.run_cache_key(s, unset, 0, "cpu", log_root, fhash="f", code="c")) == same


@pytest.mark.parametrize(
    "name, arch, given, message",
    [
        ("style-transfer", "transformer", ["fixed_size=961x540"], "fixed_size='961x540': sides"),
        ("style-transfer", "transformer", ["speed_sizes=720p"], "speed_sizes='720p': WIDTHx"),
        ("style-transfer", "transformer", ["clip_size=95x64"], "clip_size='95x64': even sides"),
        ("style-transfer", "transformer", ["clip_frames=1"], "clip_frames=1: at least 2"),
        ("style-transfer", "transformer", ["size=30"], "size=30: a multiple of 4"),
        ("style-transfer", "transformer", ["n_images=1"], "n_images=1: at least 2"),
        ("style-transfer", "transformer", ["filters=8,16"], "filters '8,16': three"),
        ("style-video", "patch", ["keyframes=0,40"], r"keyframes='0,40': .* \(0 to 11\)"),
        ("style-video", "patch", ["keyframes=a"], "keyframes='a': frame indices"),
        ("style-video", "patch", ["patch=10"], "patch=10: a multiple of 4"),
    ],
)
def test_values_used_after_training_are_checked_before_it(name, arch, given, message):
    from recap.errors import InvalidInput
    from recap.lab import spec
    from recap.ml.style.experiment import check_params, resolve_params

    folder = EXPERIMENTS / name
    values, _ = spec.parse_params(spec.load_spec(folder), given)
    p = resolve_params(values, folder, arch)
    with pytest.raises(InvalidInput, match=message):
        check_params(p, arch, folder)
    check_params(resolve_params(spec.parse_params(spec.load_spec(folder), [])[0], folder, arch),
                 arch, folder)  # the defaults pass  # fmt: skip


@pytest.mark.slow
def test_a_bad_clip_fails_the_run_before_training(cli, db, log_root, tmp_path):
    shutil.copytree(EXPERIMENTS / "style-transfer", log_root / "experiments" / "style-transfer")
    (tmp_path / "clip.mp4").write_bytes(b"junk")
    r = cli("exp", "run", "style-transfer", "-p", f"clip={tmp_path / 'clip.mp4'}")
    assert r.exit_code != 0
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [f"  error: cannot read video {tmp_path / 'clip.mp4'}: Invalid data found "
                      "when processing input"]  # fmt: skip
    row = db.execute("SELECT id, status FROM run").fetchone()
    assert row["status"] == "failed"
    run_dir = log_root / "runs" / "style-transfer" / row["id"]
    assert not (run_dir / "model.pth").exists() and not (run_dir / "curves.json").exists()
    assert db.execute("SELECT count(*) FROM metric").fetchone()[0] == 0  # no step was trained


def test_a_bool_param_left_to_the_preset_takes_only_true_false_or_empty(tmp_path):
    from recap.errors import InvalidInput
    from recap.lab import spec

    s = spec.load_spec(EXPERIMENTS / "style-transfer")
    assert s.params["compile"].default == "" and s.params["skips"].default is False
    with pytest.raises(InvalidInput, match=r"param compile \(bool\): 'maybe' is not a valid bool"):
        spec.parse_params(s, ["compile=maybe"])
    with pytest.raises(InvalidInput, match=r"param skips \(bool\): '' is not a valid bool"):
        spec.parse_params(s, ["skips="])  # a plain bool has no "preset's" value
    folder = tmp_path / "style-transfer"
    shutil.copytree(EXPERIMENTS / "style-transfer", folder)
    toml = folder / "experiment.toml"
    toml.write_text(
        toml.read_text().replace(
            'default = false\nhelp = "additive', 'default = "no"\nhelp = "additive'
        )
    )
    with pytest.raises(InvalidInput, match="params.skips.default: expected bool"):
        spec.load_spec(folder)


def test_content_from_a_blender_dataset_run(log_root):
    from recap.ml.style import data
    from recap.ml.style.experiment import content_images, resolve_params

    run = log_root / "runs" / "blender-render" / "20261204-abcd1234"
    for i in range(3):
        data.save_rgb(np.full((48, 80, 3), 60 * i, np.uint8), run / "images" / f"{i}.png")
    p = resolve_params({"data": "run:20261204-abcd", "size": 32}, None, "transformer")
    arr = content_images(p, 0, log_root / "out", None)
    assert arr.shape == (3, 32, 32, 3) and int(arr[2, 5, 5, 0]) == 120


def test_patch_training_ignores_masked_out_pixels():
    import torch

    from recap.ml.style import nets, train

    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pairs = [(src, 255 - src)]
    torch.manual_seed(0)
    net = nets.PatchNet((4, 8, 8), 1)
    masked = train.train_patch(
        net, None, pairs, [np.zeros((32, 32), np.uint8)], steps=2, batch_size=2, patch=16,
        lr=1e-3, device="cpu", log_every=1,
    )  # fmt: skip
    assert masked["curves"]["l1_loss"] == [0.0, 0.0]  # nothing to learn where the mask is 0
    open_ = train.train_patch(
        net, None, pairs, None, steps=2, batch_size=2, patch=16, lr=1e-3, device="cpu",
        log_every=1,
    )  # fmt: skip
    assert min(open_["curves"]["l1_loss"]) > 0.1


def test_keyframes_and_masks_of_another_size_are_one_line(tmp_path):
    from recap.errors import InvalidInput
    from recap.ml.style import data
    from recap.ml.style.experiment import keyframe_pairs

    frames = list(data.synthetic_clip(4, 64, 96, seed=0))
    kdir, mdir = tmp_path / "keys", tmp_path / "masks"
    data.save_rgb(np.zeros((32, 48, 3), np.uint8), kdir / "0.png")  # painted at half size
    p = {"keyframes_dir": str(kdir), "clip": str(tmp_path / "clip.mp4"), "masks": ""}
    with pytest.raises(InvalidInput, match=rf"{kdir / '0.png'} is 48x32, frame 0 is 96x64"):
        keyframe_pairs(p, lambda: iter(frames), [0], None)
    data.save_rgb(np.zeros((64, 96, 3), np.uint8), kdir / "0.png")
    data.save_rgb(np.zeros((64, 90, 3), np.uint8), mdir / "0.png")
    with pytest.raises(InvalidInput, match=rf"{mdir / '0.png'} is 90x64, frame 0 is 96x64"):
        keyframe_pairs({**p, "masks": str(mdir)}, lambda: iter(frames), [0], None)
    data.save_rgb(np.full((64, 96, 3), 255, np.uint8), mdir / "0.png")
    pairs, masks = keyframe_pairs({**p, "masks": str(mdir)}, lambda: iter(frames), [0], None)
    assert len(pairs) == 1 and masks[0].shape == (64, 96) and masks[0].all()
