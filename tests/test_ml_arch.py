"""The user's own architectures: resnet18/34 and timm bodies with fastai's head, pretrained only
from local files, exported through every target including Barracuda's opset 9."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastai")
pytest.importorskip("timm")

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = REPO / "experiments"


def _run(out: Path, **params):
    from recap.lab.context import RunContext
    from recap.ml.pipeline import run

    folder = EXPERIMENTS / "fastai-unity-classify"
    with RunContext.standalone(out, {"preset": "tiny", **params}, folder=folder) as ctx:
        return run(ctx), ctx


@pytest.mark.slow
def test_resnet18_classify_exports_to_barracuda_opset_9_with_parity(tmp_path):
    import onnx

    out = tmp_path / "run"
    summary, _ = _run(
        out, arch="resnet18", targets="barracuda", epochs=1, n_images=64, batch_size=16
    )
    assert summary["parity_ok"] == 1 and summary["parity_agreement"] == 1.0
    assert summary["parity_max_raw_diff_onnx"] <= 1e-4
    assert summary["parity_max_prob_diff"] <= 1e-4
    bundle = out / "bundle" / "barracuda"
    model = onnx.load(str(bundle / "model.onnx"))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 9
    ops = json.loads((bundle / "operators.json").read_text())
    # fastai's head: AdaptiveConcatPool2d (avg + max pooling, concatenated), BatchNorm1d, Linear
    assert ops["ok"] and ops["unsupported"] == []
    assert {"Concat", "GlobalAveragePool", "BatchNormalization", "MatMul"} <= set(ops["operators"])
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "resnet18" and config["pretrained"] is False
    import torch

    ckpt = torch.load(out / "model.pth", weights_only=True)
    assert ckpt["record"]["name"] == "vision" and ckpt["record"]["arch"] == "resnet18"


def test_pretrained_without_weights_is_one_line_naming_the_file(tmp_path, monkeypatch):
    from recap.errors import NotFound
    from recap.ml import models

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty cache
    expected = tmp_path / "torch-home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(NotFound) as exc:
        _run(tmp_path / "run", arch="resnet18", pretrained=True, n_images=40, epochs=1)
    message = str(exc.value)
    assert f"looked for {expected}" in message and "\n" not in message
    assert "nothing is downloaded" in message
    missing = tmp_path / "nope.pth"
    record = models.vision_record("resnet34", 3, pretrained=True, weights=str(missing))
    with pytest.raises(NotFound, match=f"looked for {missing}"):
        models.build(record, load_pretrained=True)


def test_pretrained_weights_from_a_local_file_are_loaded(tmp_path):
    import torch
    import torchvision

    from recap.ml import models

    torch.manual_seed(1)
    donor = torchvision.models.resnet18(weights=None)
    torch.save(donor.state_dict(), tmp_path / "r18.pth")
    record = models.vision_record("resnet18", 3, pretrained=True, weights=str(tmp_path / "r18.pth"))
    model = models.build(record, load_pretrained=True)
    assert torch.equal(model[0][0].weight, donor.conv1.weight)  # the body's first conv
    # rebuilding a trained run never needs the file (its own weights follow)
    (tmp_path / "r18.pth").unlink()
    assert models.build(record)[0][0].weight.shape == donor.conv1.weight.shape


def test_a_timm_body_with_fastais_head_exports_through_every_target(tmp_path):
    import torch
    from PIL import Image

    from recap.errors import InvalidInput
    from recap.ml import bundle, models
    from recap.ml.targets import get_target, names
    from recap.ml.tasks import get_task
    from recap.ml.tasks.base import Prepared

    task = get_task("keypoint")
    prep = Prepared("keypoint", (32, 32), [0.5] * 3, [0.25] * 3, info={"n_points": 2})
    model, record = task.model("resnet10t", prep, {})
    assert record["source"] == "timm" and record["y_range"] == [-1.1, 1.1]
    torch.manual_seed(0)
    Image.new("RGB", (32, 32), (90, 30, 200)).save(tmp_path / "g.png")
    meta = bundle.model_meta(task, prep)
    for name in names():
        dest = tmp_path / name
        out = bundle.export_bundle(
            task, get_target(name), model, prep, meta, dest, tmp_path / "g.png"
        )
        golden = json.loads((dest / "golden.json").read_text())
        assert len(golden["expected"]["points"]) == 2, name
        if name == "barracuda":
            assert out["opset"] == 9
            assert json.loads((dest / "operators.json").read_text())["ok"]
    with pytest.raises(InvalidInput, match="unknown architecture 'resnet9000'"):
        models.vision_record("resnet9000", 3)
