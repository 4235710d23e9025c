"""The run context: experiment code and the ML core talk to it without the database."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_lab_support import env


def test_context_and_child_import_nothing_from_the_database():
    code = (
        "import sys, recap.lab.context, recap.lab.child; "
        "bad = [m for m in sys.modules if m.startswith(('recap.db', 'sqlite3', 'sqlmodel', "
        "'typer', 'torch'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_standalone_context_writes_events(tmp_path):
    from recap.lab.context import RunContext, read_events

    with RunContext.standalone(tmp_path / "out", {"lr": 0.1}, seed=3) as ctx:
        assert ctx.params == {"lr": 0.1} and ctx.seed == 3 and ctx.device == "cpu"
        ctx.log_metrics({"loss": 0.5, "acc": 0.9}, step=1, epoch=0)
        ctx.set_summary("acc", 0.9)
        ctx.flag("mean", "no better than the mean")
        ctx.path("sub/model.bin").write_bytes(b"x")
        ctx.save_artifact("sub/model.bin", kind="model", metadata={"opset": 15})
        with pytest.raises(ValueError):
            ctx.save_artifact(tmp_path / "elsewhere.bin")
    events = read_events(tmp_path / "out")
    assert [e["type"] for e in events] == ["metric", "metric", "summary", "flag", "artifact"]
    assert events[0]["key"] == "loss" and events[0]["step"] == 1 and events[0]["epoch"] == 0
    assert events[4] == {
        "type": "artifact",
        "path": "sub/model.bin",
        "kind": "model",
        "metadata": {"opset": 15},
    }
    # A torn last line (a killed child) is skipped, not fatal.
    with open(tmp_path / "out" / "events.jsonl", "a") as fh:
        fh.write('{"type": "metr')
    assert len(read_events(tmp_path / "out")) == 5
    assert json.loads((tmp_path / "out" / "events.jsonl").read_text().splitlines()[2]) == {
        "type": "summary",
        "key": "acc",
        "value": 0.9,
    }


def test_device_auto_without_importing_torch(monkeypatch):
    import importlib.util

    from recap.errors import InvalidInput
    from recap.lab import env

    monkeypatch.setattr(env, "_nvidia_present", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert env.resolve_device("auto") == "cuda"
    monkeypatch.setattr(env, "_nvidia_present", lambda: False)
    assert env.resolve_device("auto") == "cpu"
    assert env.resolve_device("cuda") == "cuda" and env.resolve_device("cpu") == "cpu"
    with pytest.raises(InvalidInput):
        env.resolve_device("gpu")


def test_package_versions_match_importlib_metadata():
    from importlib import metadata

    from recap.lab import env

    names = (*env.KEY_PACKAGES, "pytest", "no-such-package-xyz")

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    assert env.package_versions(names) == {n: version(n) for n in names}
    assert env.package_versions(names)["pytest"] is not None
