"""Tests own their state: every test gets a fresh log root (folder + database) of its own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


_TORCH_THREADS: list[int] = []


@pytest.fixture(autouse=True)
def torch_threads():
    """Put torch's thread count back after each test that ran training in this process.

    A run's ``threads`` param (and tests timing one thread) call ``torch.set_num_threads``,
    which stays for the rest of the worker; figures pinned by later tests (a model's error to
    1e-5) depend on it through the order of float sums, so on the order xdist gives the tests.
    The default is read once, from a fresh interpreter with this worker's environment.
    """
    yield
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if not _TORCH_THREADS:
        code = "import torch; print(torch.get_num_threads())"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        _TORCH_THREADS.append(int(out.stdout) if out.returncode == 0 else os.cpu_count() or 1)
    if torch.get_num_threads() != _TORCH_THREADS[0]:
        torch.set_num_threads(_TORCH_THREADS[0])


@pytest.fixture(autouse=True)
def log_root(tmp_path, monkeypatch) -> Path:
    """A fresh log root for every test, found through RECAP_ROOT."""
    from recap import paths
    from recap.logroot import init_root

    root, _ = init_root(tmp_path / "log", title="Test log")
    monkeypatch.setenv("RECAP_ROOT", str(root))
    monkeypatch.delenv("RECAP_DEBUG", raising=False)
    monkeypatch.setenv("EDITOR", "true")
    # Tables fit the terminal when COLUMNS is set; tests that want that set it themselves.
    monkeypatch.delenv("COLUMNS", raising=False)
    paths.set_root_override(None)
    yield root
    paths.set_root_override(None)


@pytest.fixture
def db(log_root) -> sqlite3.Connection:
    """A plain connection to the test's database, for asserting on stored rows (STAMP columns,
    integer milliseconds on disk since m004, read back as their text as recap reads them)."""
    from recap.db.stamps import convert

    sqlite3.register_converter("STAMP", convert)
    conn = sqlite3.connect(log_root / "recap.db", detect_types=sqlite3.PARSE_DECLTYPES)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


@pytest.fixture
def cli():
    """Run recap in-process through its real entry point (errors, exit codes and all)."""
    from typer.testing import CliRunner

    from recap.cli import main

    def invoke(*args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        with runner.isolation(input=input) as streams:
            out, err = streams[0], streams[1]
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            return Result(code, out.getvalue().decode(), err.getvalue().decode())

    return invoke


@pytest.fixture
def recap_proc():
    """Run recap as a separate process (``python -m recap``), as a user would."""

    def run(*args: str, input: str | None = None, env: dict | None = None, timeout=120, **kw):
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "recap", *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            **kw,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
