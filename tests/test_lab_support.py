"""Shared set-up for the lab tests (no tests here): the toy experiment, made-up experiments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOY = REPO / "experiments" / "toy-regression"


def add_toy(root: Path) -> Path:
    dest = root / "experiments" / "toy-regression"
    shutil.copytree(TOY, dest)
    return dest


def make_exp(
    root: Path,
    name: str,
    body: str,
    outputs=(),
    params: str = "",
    primary: str = "score",
    extra: str = "",
) -> Path:
    """An experiment folder whose main.py runs ``body`` (indented into ``run(ctx)``)."""
    folder = root / "experiments" / name
    folder.mkdir(parents=True, exist_ok=True)
    outs = ", ".join(f'"{o}"' for o in outputs)
    (folder / "experiment.toml").write_text(
        f'name = "{name}"\nproject = "test"\ndescription = "made by a test"\n'
        f'entry = "main.py:run"\noutputs = [{outs}]\n{params}\n'
        f'[metric]\nprimary = "{primary}"\ndirection = "max"\ntolerance = 0.0\n{extra}'
    )
    (folder / "main.py").write_text(
        "import os, sys, time\n\n\ndef run(ctx):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return folder


def env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
        ),
    }


def spawn(*args, **kw) -> subprocess.Popen:
    """``python -m recap ARGS`` in the background, as a user's shell would start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "recap", *map(str, args)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_dirs(root: Path, name: str) -> list[Path]:
    base = root / "runs" / name
    return sorted(base.iterdir()) if base.is_dir() else []
