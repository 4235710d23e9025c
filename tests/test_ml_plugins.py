"""The plug-in points of the ML core: a task and a target defined in this file alone run through
the shared pipeline end to end; unknown names are one-line errors listing the known ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


# -- a fake task: the mean colour of an 8x8 image -> which channel is brightest ----------------
class BrightestChannel:
    """Implements the Task contract without fastai: its own data, model, loop and decode."""

    name = "brightest"
    primary = "accuracy"
    direction = "max"
    columns = ("label",)
    tolerances = {"raw": 1e-5, "input": 1e-6, "score": 1e-5}

    def synthetic(self, out, params, seed):
        import pandas as pd
        from PIL import Image

        rng = np.random.default_rng(seed)
        rows = []
        out.mkdir(parents=True, exist_ok=True)
        for i in range(int(params["n_images"])):
            c = i % 3
            px = rng.integers(0, 100, size=(8, 8, 3)).astype(np.uint8)
            px[..., c] += 150
            Image.fromarray(px).save(out / f"{i}.png")
            split = "test" if i < 6 else ("valid" if i < 12 else "train")
            rows.append({"file": str(out / f"{i}.png"), "split": split, "label": "rgb"[c]})
        return pd.DataFrame(rows)

    def prepare(self, table, params):
        from recap.ml.tasks.base import Prepared

        return Prepared(self.name, (8, 8), None, None, ["r", "g", "b"])

    def golden_files(self, table, n=16):
        return list(table[table["split"] == "test"]["file"])

    def build(self, record):
        import torch

        return torch.nn.Sequential(
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 3)
        )

    def train(self, ctx, table, prep, params, device, precision, seed):
        import torch

        from recap.ml.tasks.base import Trained

        model = self.build({})
        with torch.no_grad():  # "training": the identity is the right answer
            model[2].weight.copy_(torch.eye(3))
            model[2].bias.zero_()
        ctx.log_metrics({"train_loss": 0.0}, step=0, epoch=0)
        return Trained(model, {"accuracy": 1.0}, state={"record": {"name": "brightest"}})

    def describe(self, prep, params):
        return {
            "inputs": [
                {"name": "pixels", "shape": ["batch", 3, "height", "width"], "dtype": "float32"}
            ],
            "outputs": [{"name": "scores", "shape": ["batch", 3], "dtype": "float32"}],
            "preprocess": {"scale": 1 / 255, "resize": None},
            "postprocess": {"decode": "labels[argmax(scores)]"},
            "labels": prep.labels,
        }

    def example_inputs(self, prep, meta):
        import torch

        return (torch.zeros(1, 3, 8, 8),)

    def load_input(self, path, meta):
        from PIL import Image

        return np.asarray(Image.open(path).convert("RGB"))

    def preprocess(self, pixels, meta):
        x = pixels.astype(np.float32) / 255
        return {"pixels": np.ascontiguousarray(x.transpose(2, 0, 1)[None])}

    def postprocess(self, outputs, meta):
        scores = np.asarray(outputs[0]).reshape(-1)
        return {"label": meta["labels"][int(scores.argmax())], "scores": scores}

    def framework_predict(self, trained, prep, table, files):
        return None  # no separate framework: the reference is compared with torch

    def compare(self, ref, other, meta):
        return ref["label"] == other["label"], {
            "score": float(np.abs(ref["scores"] - other["scores"]).max())
        }

    def sanity(self, trained, prep, table, params):
        from recap.ml.tasks.base import Sanity

        return Sanity({"fake_sane": 1}, {"fake": "a flag from the fake task"})

    def summary(self, trained, prep, params):
        return {"accuracy": trained.metrics["accuracy"]}


# -- a fake target: the weights in an .npz, run by numpy ----------------------------------------
class NumpyTarget:
    name = "numpyref"
    family = "numpy"
    engine = "numpy"
    model_file = "model.npz"
    operators = None

    def export(self, model, example, dest, meta):
        lin = model[2]
        np.savez(dest / self.model_file, w=lin.weight.detach().numpy(), b=lin.bias.detach().numpy())
        return {"model": self.model_file, "opset": None, "exporter": "numpy.savez"}

    def load(self, dest, meta):
        npz = np.load(dest / self.model_file)
        w, b = npz["w"], npz["b"]

        class Runner:
            def run(self, inputs):
                return [inputs["pixels"].mean(axis=(2, 3)) @ w.T + b]

        return Runner()

    def operator_report(self, dest, meta):
        return {"engine": "numpy", "operators": {"MatMul": 1}, "unsupported": [], "ok": True}


@pytest.fixture
def plugins():
    from recap.ml import targets, tasks

    task, target = tasks.register(BrightestChannel()), targets.register(NumpyTarget())
    yield task, target
    tasks.unregister(task.name)
    targets.unregister(target.name)


def _folder(
    base: Path, name="fake-plugins", task="brightest", targets="numpyref,torchscript"
) -> Path:
    folder = base / name
    folder.mkdir(parents=True)
    (folder / "experiment.toml").write_text(
        f"""name = "{name}"
entry = "recap.ml.pipeline:run"
outputs = ["parity.json"]
[ml]
task = "{task}"
[params.n_images]
type = "int"
default = 24
help = "images"
[params.targets]
type = "str"
default = "{targets}"
help = "targets"
[metric]
primary = "accuracy"
direction = "max"
tolerance = 0.0
"""
    )
    return folder


def test_a_fake_task_and_target_from_this_file_run_end_to_end(plugins, tmp_path):
    from recap.lab.context import RunContext, read_events
    from recap.ml import pipeline

    folder = _folder(tmp_path)
    out = tmp_path / "run"
    with RunContext.standalone(out, {}, folder=folder) as ctx:
        summary = pipeline.run(ctx)
    # the task's summary, sanity and flag, and parity through both targets
    assert summary["accuracy"] == 1.0 and summary["fake_sane"] == 1
    assert summary["parity_ok"] == 1 and summary["parity_agreement"] == 1.0
    assert summary["parity_images"] == 6
    assert summary["parity_max_raw_diff_numpy"] <= 1e-6
    assert summary["parity_max_raw_diff_torchscript"] <= 1e-6
    assert "parity_max_score_diff" in summary
    assert ctx.flags == {"fake": "a flag from the fake task"}
    # the bundle of the fake target: model.json with the task's section and the target's fields
    meta = json.loads((out / "bundle" / "numpyref" / "model.json").read_text())
    assert meta["task"] == "brightest" and meta["target"] == "numpyref"
    assert meta["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    assert meta["exporter"] == "numpy.savez" and len(meta["sha256"]) == 64
    golden = json.loads((out / "bundle" / "numpyref" / "golden.json").read_text())
    assert golden["expected"]["label"] in "rgb"
    # TorchScript took the dynamic dims from model.json: a 5x7 input runs
    ts_meta = json.loads((out / "bundle" / "torchscript" / "model.json").read_text())
    from recap.ml.targets import get_target

    runner = get_target("torchscript").load(out / "bundle" / "torchscript", ts_meta)
    assert runner.run({"pixels": np.ones((1, 3, 5, 7), np.float32)})[0].shape == (1, 3)
    # resolved params recorded, config.json the same values
    events = read_events(out)
    recorded = [e["values"] for e in events if e["type"] == "params"]
    assert recorded == [json.loads((out / "config.json").read_text())]
    assert recorded[0]["n_images"] == 24
    kinds = {e["path"]: e["kind"] for e in events if e["type"] == "artifact"}
    assert kinds["bundle/numpyref/model.npz"] == "file" and kinds["parity.json"] == "report"


def test_unknown_task_and_target_are_one_line_errors_listing_the_known(cli, log_root, tmp_path):
    from recap.errors import InvalidInput
    from recap.ml import targets, tasks

    with pytest.raises(InvalidInput) as exc:
        tasks.get_task("segment")
    assert str(exc.value).startswith("unknown task 'segment' (known: ")
    assert "classify" in str(exc.value) and "keypoint" in str(exc.value)
    with pytest.raises(InvalidInput, match=r"unknown target 'unity' \(known: barracuda, "):
        targets.get_target("unity")
    # through the CLI: the spec check reads the same registries
    for name, task, tgts, message in (
        ("bad-task", "segment", "sentis", "unknown task 'segment' (known: "),
        ("bad-target", "classify", "sentis,unity", "unknown target 'unity' (known: "),
    ):
        _folder(log_root / "experiments", name, task, tgts)
        r = cli("exp", "run", name)
        assert r.exit_code == 2, r.output
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("exp", "export", "nope", "--target", "unity")
    assert r.exit_code == 2 and "unknown target 'unity'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_registering_twice_needs_replace(plugins):
    from recap.errors import InvalidInput
    from recap.ml import tasks

    with pytest.raises(InvalidInput, match="already registered"):
        tasks.register(BrightestChannel())
    assert tasks.register(BrightestChannel(), replace=True).name == "brightest"


def test_a_family_file_is_merged_and_checked(tmp_path):
    from recap.errors import InvalidInput
    from recap.lab.spec import load_spec

    (tmp_path / "fam.toml").write_text(
        'project = "p"\nentry = "recap.ml.pipeline:run"\n'
        '[params.size]\ntype = "int"\ndefault = 0\nhelp = "size"\n'
        "[ml.presets.tiny]\nsize = 8\n[tolerances]\nparity_ok = 0\n"
    )
    folder = tmp_path / "one"
    folder.mkdir()
    toml = (
        'name = "one"\nextends = "../fam.toml"\n[ml]\ntask = "classify"\n'
        "[ml.presets.tiny]\nsize = 16\n"
        '[metric]\nprimary = "accuracy"\ndirection = "max"\ntolerance = 0.1\n'
    )
    (folder / "experiment.toml").write_text(toml)
    spec = load_spec(folder)
    # tables merge key by key; the folder wins
    assert spec.project == "p" and spec.entry_is_module and spec.params["size"].default == 0
    assert spec.ml == {"task": "classify", "presets": {"tiny": {"size": 16}}}
    assert spec.tolerances == {"parity_ok": 0.0} and spec.extends == (tmp_path / "fam.toml")
    (folder / "experiment.toml").write_text(toml.replace("size = 16", "sise = 16"))
    with pytest.raises(InvalidInput, match="ml.presets.tiny.sise: a preset sets declared params"):
        load_spec(folder)
    (folder / "experiment.toml").write_text(toml.replace("../fam.toml", "../nope.toml"))
    with pytest.raises(InvalidInput, match="extends: ../nope.toml not found"):
        load_spec(folder)
    (tmp_path / "fam.toml").write_text('name = "x"\n')
    (folder / "experiment.toml").write_text(toml)
    with pytest.raises(InvalidInput, match="fam.toml: name: unknown key"):
        load_spec(folder)


def test_data_without_the_tasks_columns_is_one_line(tmp_path):
    from PIL import Image

    from recap.errors import InvalidInput
    from recap.ml import data
    from recap.ml.tasks import get_task

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("file,split,points\na.png,train,1 2\n")
    params = {"data": str(tmp_path / "m.csv")}
    with pytest.raises(InvalidInput, match="task 'classify' needs column\\(s\\) label"):
        data.load_table(params, get_task("classify"), 0, tmp_path, tmp_path)
    table = data.load_table(params, get_task("keypoint"), 0, tmp_path, tmp_path)
    assert table["points"].tolist() == ["1 2"]
