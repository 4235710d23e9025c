"""Open text in the user's editor ($VISUAL, then $EDITOR) and read it back."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from recap.errors import RecapError


def edit_text(text: str, suffix: str = ".md") -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, name = tempfile.mkstemp(prefix="recap-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            code = subprocess.call([*shlex.split(editor), str(path)])
        except FileNotFoundError:
            raise RecapError(f"editor {editor!r} not found; set $EDITOR or use --no-edit") from None
        if code != 0:
            raise RecapError(f"editor {editor!r} exited with status {code}; nothing was saved")
        return path.read_text(encoding="utf-8")
    finally:
        path.unlink(missing_ok=True)
