"""The README's "A week with recap", run line by line in a fresh log, as a new user would.

The only change to the text: the example feed URL points at a local server serving a saved feed
(no network here). ``recap`` is this checkout's, through a shim on PATH; ``$EDITOR`` saves the
template unchanged, so the entry stays a draft until ``recap publish``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FEEDS = Path(__file__).parent / "data" / "links"


def readme_week() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## A week with recap", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture
def feed_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FEEDS))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_readme_week_is_what_the_commands_do():
    lines = readme_week()
    assert lines[0].startswith("recap init ~/log && cd ~/log")
    assert any("recap new" in line for line in lines) and any("rerun" in line for line in lines)


@pytest.mark.slow
def test_the_readme_week_runs_line_by_line_in_a_fresh_log(tmp_path, feed_server, monkeypatch):
    home = tmp_path / "home"
    bin_dir = tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    shim = bin_dir / "recap"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m recap "$@"\n')
    shim.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if k != "RECAP_ROOT"},
        "HOME": str(home),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "EDITOR": "true",
        "NO_COLOR": "1",
    }
    outputs = []
    script = ["set -e"]
    for line in readme_week():
        line = line.replace("https://example.org/feed.xml", f"{feed_server}/rss20.xml")
        script += [f"echo '>>> {line.split('#')[0].strip()}'", line]
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, outputs[-1][-4000:]
    out = proc.stdout
    log = home / "log"
    assert (log / "experiments/fastai-unity-keypoint/experiment.toml").is_file()
    assert "added 1: https://docs.fast.ai [fastai]" in out
    assert "it shows 1 bookmark(s) and 1 run(s) of the week" in out  # `recap new`: live
    assert "fastai-unity-keypoint" in out and "captured by hand in" in out  # `recap show`
    assert "final:" in out and "reproduced" in out
    posts = list((log / "site/blog").rglob("index.html"))
    week_post = [p for p in posts if "weekly-recap-" in str(p)]
    assert week_post and "docs.fast.ai" in week_post[0].read_text()


@pytest.mark.slow
def test_a_normal_install_ships_every_experiment_folder(tmp_path):
    """A wheel (what `pip install .` installs) carries experiments/ as recap/_experiments, so
    `recap init` finds them without the source tree; new folders need no listing anywhere."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    (src / "experiments" / "later-family").mkdir()
    (src / "experiments" / "later-family" / "experiment.toml").write_text('name = "later-family"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("recap-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(
        p.name for p in (REPO / "experiments").iterdir() if (p / "experiment.toml").is_file()
    )
    for name in [*shipped, "later-family"]:
        assert f"recap/_experiments/{name}/experiment.toml" in names, name
    # a family's shared definition, which its folders extend, ships beside them
    assert "recap/_experiments/fastai-unity-family.toml" in names
    assert not any("__pycache__" in n for n in names if n.startswith("recap/_experiments/"))
