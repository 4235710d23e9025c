"""Start-up and `recap new` as whole processes, side by side with jrnl.

Targets (issue 2): `recap --help` no slower than `jrnl --version`; `recap new --no-edit` at most
1.5x jrnl adding a one-line entry. jrnl runs from the peers venv with its config in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RECAP, peer, report, save, time_cmd  # noqa: E402

JRNL_CONFIG = """\
colors: {{body: none, date: none, tags: none, title: none}}
default_hour: 9
default_minute: 0
editor: ''
encrypt: false
highlight: true
indent_character: '|'
journals:
  default: {journal}
linewrap: 79
tagsymbols: '@'
template: false
timeformat: '%Y-%m-%d %H:%M'
version: v4.6
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    jrnl = peer("jrnl")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config" / "jrnl").mkdir(parents=True)
        (tmp / "config" / "jrnl" / "jrnl.yaml").write_text(
            JRNL_CONFIG.format(journal=tmp / "journal.txt")
        )
        jenv = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config"), "HOME": str(tmp)}
        root = tmp / "log"
        subprocess.run([*RECAP, "init", str(root)], check=True, capture_output=True)
        renv = {**os.environ, "RECAP_ROOT": str(root)}
        results = []
        ours = time_cmd([*RECAP, "--help"], args.runs, env=renv)
        theirs = time_cmd([jrnl, "--version"], args.runs, env=jenv)
        results.append(
            report(
                "start-up: recap --help vs jrnl --version", ours, theirs, "<= 1.0", peer_name="jrnl"
            )
        )

        def new_week(i):  # a new week each time, so every run creates an entry
            year, week = 2000 + i // 50, i % 50 + 1
            return [*RECAP, "new", "--week", f"{year}-W{week:02d}", "--no-edit"]

        ours = time_cmd(new_week, args.runs, env=renv)
        theirs = time_cmd(
            [jrnl, "Tried the sentis exporter on the keypoint model."], args.runs, env=jenv
        )
        results.append(
            report(
                "recap new --no-edit vs a one-line jrnl entry",
                ours,
                theirs,
                "<= 1.5",
                peer_name="jrnl",
            )
        )
    save(results, "foundation")


if __name__ == "__main__":
    main()
