"""Shared helpers for the benchmarks: medians of whole-process timings, side by side with a peer.

Benchmarks report ratios (ours / peer) from medians of several runs: the machines are shared and
noisy, so absolute times alone mean little. Peers (jrnl, buku, mlflow) live in their own virtual
environment, ``build/peers-venv`` (``make bench`` makes it), so they never touch recap's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS_BIN = Path(os.environ.get("PEERS_BIN", REPO / "build" / "peers-venv" / "bin"))
RECAP = [sys.executable, "-m", "recap"]
# An installed package runs from cached bytecode; a shell that sets PYTHONDONTWRITEBYTECODE would
# make every timed start-up recompile recap's modules instead.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def peer(name: str) -> str:
    """The path of a peer's executable in the peers venv, or exit with how to get it."""
    exe = PEERS_BIN / name
    if not exe.exists():
        sys.exit(f"{exe} missing: run 'make bench' (it makes build/peers-venv with {name})")
    return str(exe)


def time_cmd(
    cmd, runs: int = 7, env: dict | None = None, setup=None, warmup: int = 1, **kw
) -> float:
    """Median wall time (s) of running ``cmd`` as a whole process; ``setup()`` runs before each.

    ``cmd`` may be a callable of the run number, for a command that must differ every time."""
    full_env = {**os.environ, **(env or {})}
    samples = []
    for i in range(warmup + runs):
        if setup:
            setup(i)
        t0 = time.perf_counter()
        subprocess.run(
            cmd(i) if callable(cmd) else cmd,
            env=full_env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **{"stdin": subprocess.DEVNULL, **kw},
        )
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def time_fn(fn, runs: int = 7, warmup: int = 1) -> float:
    samples = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def report(
    name: str,
    ours: float,
    theirs: float | None,
    target: str,
    unit: str = "s",
    peer_name: str = "peer",
) -> dict:
    """Print one line and return a JSON-able record."""
    if theirs:
        ratio = ours / theirs
        line = (
            f"{name}: recap {ours * 1000:.1f} ms, {peer_name} {theirs * 1000:.1f} ms, "
            f"ratio {ratio:.2f} (target {target})"
        )
    else:
        ratio = None
        line = f"{name}: {ours * 1000:.1f} ms (target {target})"
    print(line, flush=True)
    return {"name": name, "ours_s": ours, "peer_s": theirs, "ratio": ratio, "target": target}


def save(results: list[dict], name: str) -> None:
    out = REPO / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
