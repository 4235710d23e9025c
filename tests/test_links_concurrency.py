"""Many processes capturing at once: every row lands, nothing errors."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys
from recap.db import connect
from recap.links.store import add_bookmark
conn = connect()
w = int(sys.argv[1])
for i in range(250):
    add_bookmark(conn, f"https://w{w}.example/page/{i}", tags=[f"w{w}"], offline=True)
add_bookmark(conn, "https://shared.example/", tags=[f"w{w}"], offline=True)
"""


def test_eight_processes_adding_250_each(log_root, db):
    env = {**os.environ, "RECAP_ROOT": str(log_root)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(w)], env=env, stderr=subprocess.PIPE, text=True
        )
        for w in range(8)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    assert errors == [""] * 8
    assert (
        db.execute(
            "SELECT count(*) FROM bookmark WHERE coalesce(url_key, url) LIKE 'https://w%'"
        ).fetchone()[0]
        == 2000
    )
    # The one URL every process added is one bookmark carrying every process's tag.
    (tags,) = db.execute(
        "SELECT tags FROM bookmark WHERE coalesce(url_key, url) = 'https://shared.example/'"
    ).fetchone()
    assert tags == '["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"]'
    assert (
        db.execute("SELECT count(*) FROM bookmark_fts WHERE bookmark_fts MATCH 'page'").fetchone()[
            0
        ]
        == 2000
    )
