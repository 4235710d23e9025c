"""Runs past one process: the run's child started through torchrun, one process per device.

recap does not schedule processes itself. ``recap exp run NAME --processes N`` (``--gpus N`` on
GPUs) starts ``python -m recap.lab.launch``, which is ``torch.distributed.run`` (torchrun) in
the recording parent's process tree: it starts ``python -m recap.lab.child JOB`` once per
device with ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` set, watches them (every 0.1 s) and stops
the others when one fails. Several machines: ``--nodes``, ``--node-rank``, ``--main-address``,
``--main-port`` pass through to torchrun (the docs show the Slurm form).

This module is also that launcher's entry point::

    python -m recap.lab.launch TORCHRUN-ARGS... -m recap.lab.child JOB

It asks Linux to stop it when the recording parent dies (as the plain child does), tells its
workers its pid (they follow it the same way), then hands over to torchrun's own ``main``.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from recap.lab.child import RANKS_DIR  # the child owns its run folder's layout

LR_RULES = ("none", "linear", "sqrt")


@dataclass
class Launch:
    """How many processes a run spans, and where they meet (torchrun's terms)."""

    processes: int = 1  # per node: one per device
    nodes: int = 1
    node_rank: int = 0
    main_address: str | None = None
    main_port: int | None = None
    gpus: bool = False  # --gpus: one process per GPU, NCCL
    lr_rule: str = "none"

    def __post_init__(self):
        from recap.errors import InvalidInput

        if self.processes < 1 or self.nodes < 1:
            raise InvalidInput("--processes and --nodes must be at least 1")
        if not 0 <= self.node_rank < self.nodes:
            raise InvalidInput(f"--node-rank {self.node_rank}: expected 0..{self.nodes - 1}")
        if self.nodes > 1 and not self.main_address:
            raise InvalidInput("--nodes > 1 needs --main-address (the node-rank 0 machine)")
        if self.lr_rule not in LR_RULES:
            raise InvalidInput(f"--lr-rule {self.lr_rule!r}: expected {', '.join(LR_RULES)}")

    @classmethod
    def replay(cls, environment: dict | None) -> Launch | None:
        """The launch that reruns a recorded run with its world size and LR rule, on this
        machine (a run that spanned machines is replayed as as many processes here)."""
        d = (environment or {}).get("distributed") or {}
        world = int(d.get("world_size") or 1)
        if world <= 1 and d.get("backend") != "nccl":
            return None
        gpus = d.get("backend") == "nccl"
        return cls(processes=world, gpus=gpus, lr_rule=str(d.get("lr_rule") or "none"))

    @property
    def world_size(self) -> int:
        return self.processes * self.nodes

    @property
    def distributed(self) -> bool:
        """Whether the run goes through the launcher at all (a 1-process launch does too)."""
        return self.world_size > 1 or self.gpus or self.main_address is not None

    def backend(self, device: str) -> str:
        return "nccl" if device == "cuda" else "gloo"

    def key(self) -> dict | None:
        """What the cache key adds: batch statistics and the schedule differ with the world."""
        if self.world_size == 1:
            return None  # same arithmetic as a plain run: a plain run's cache still applies
        return {"world_size": self.world_size, "lr_rule": self.lr_rule}

    def job(self, device: str) -> dict:
        """The ``dist`` section of the child's job file."""
        return {
            "world_size": self.world_size,
            "processes_per_node": self.processes,
            "nodes": self.nodes,
            "backend": self.backend(device),
            "launcher": "torchrun",
            "lr_rule": self.lr_rule,
        }

    def command(self, job: Path) -> list[str]:
        """The launcher's command line for ``job`` (torchrun's options, then the child)."""
        cmd = [sys.executable, "-m", "recap.lab.launch"]
        cmd += [f"--nproc-per-node={self.processes}", f"--nnodes={self.nodes}"]
        if self.nodes == 1 and not self.main_address and not self.main_port:
            cmd.append("--standalone")  # a free local port: parallel runs never collide
        else:
            cmd += [
                f"--node-rank={self.node_rank}",
                f"--master-addr={self.main_address or '127.0.0.1'}",
                f"--master-port={self.main_port or 29500}",
            ]
        # no restarts: a failed rank fails the run; check the workers every 0.1 s
        cmd += ["--max-restarts=0", "--monitor-interval=0.1"]
        cmd += ["-m", "recap.lab.child", str(job)]
        return cmd


def lr_for(lr: float, world_size: int, rule: str) -> float:
    """The peak learning rate a run of ``world_size`` processes trains with.

    The batch a step averages over is ``batch_size x world_size``; ``none`` keeps the learning
    rate as given, ``linear`` multiplies it by the world size (Goyal et al. 2017), ``sqrt`` by
    its square root (the usual rule for Adam-type optimisers).
    """
    if rule == "linear":
        return lr * world_size
    if rule == "sqrt":
        return lr * math.sqrt(world_size)
    return lr


# --- after the launcher ended: which rank failed, and no process left behind --------------------

_BLOCK = re.compile(r"\[\d+\]:\n(.*?)(?=\n\[\d+\]:|\n-{10,}|\n={10,}|\Z)", re.S)
# what a rank says when it stopped because another one failed (not the cause)
_CONSEQUENCE = re.compile(
    r"stopped by the launcher|interrupted \(SIGINT\)|Connection (reset|closed) by peer|"
    r"remote worker|remote process|Broken pipe|ProcessGroup\w* .*(aborted|terminated)|"
    r"NCCL communicator was aborted|DistBackendError",
    re.I,
)


def _launcher_failures(log_text: str) -> tuple[list[dict], int | None]:
    """torchrun's failure summary: every failed rank (rank, exit code, its line), and the rank
    it calls the root cause."""
    out, root = [], None
    head, _, root_part = log_text.rpartition("Root Cause (first observed failure):")
    if not _:
        return out, None
    failures_part = head.rpartition("Failures:")[2]
    for part, is_root in ((failures_part, False), (root_part, True)):
        for block in _BLOCK.findall(part):
            r = re.search(r"rank\s*:\s*(\d+)", block)
            if not r:
                continue
            code = re.search(r"exitcode\s*:\s*(-?\d+)", block)
            tb = re.search(r"traceback\s*:\s*([^\n]*)", block)
            detail = tb.group(1).strip() if tb else ""
            if "To enable traceback" in detail or not detail:
                detail = f"exit code {code.group(1)}" if code else "failed"
            rank = int(r.group(1))
            out.append({"rank": rank, "code": int(code.group(1)) if code else None, "line": detail})
            if is_root:
                root = rank
    return out, root


def failure(out_dir: Path, log_text: str) -> str | None:
    """The failed rank's error, as one line (``rank K failed: ...``) and its traceback.

    The cause, not its consequences: a rank that raised (its traceback in ``.ranks/``, the
    earliest written) comes first, then a rank killed by a signal other than the launcher's
    SIGTERM/SIGINT (SIGKILL, out of memory), then torchrun's first observed failure. Ranks that
    only saw a peer go (a closed connection, the launcher's SIGTERM) are never the cause when
    another one is known.
    """
    errors = _rank_errors(Path(out_dir) / RANKS_DIR)
    failed, root = _launcher_failures(log_text)
    lines = {f["rank"]: f["line"] for f in failed}
    causes = sorted(
        (mtime, rank) for rank, (text, mtime) in errors.items() if not _CONSEQUENCE.search(text)
    )
    if causes:
        rank = causes[0][1]
        head = f"rank {rank} failed: {lines[rank]}" if rank in lines else f"rank {rank} failed:"
        return f"{head}\n{errors[rank][0]}"
    signalled = [
        f["rank"]
        for f in failed
        if f["code"] is not None and f["code"] < 0 and -f["code"] not in (2, 15)
    ]
    rank = signalled[0] if signalled else root
    if rank is None and errors:
        rank = min(errors, key=lambda k: (errors[k][1], k))
    if rank is None:
        return None
    head = f"rank {rank} failed: {lines.get(rank, 'see the log')}"
    return f"{head}\n{errors[rank][0]}" if rank in errors else head


def _rank_errors(ranks: Path) -> dict[int, tuple[str, float]]:
    """Each rank's error file: (text, when it was written)."""
    out = {}
    for f in sorted(ranks.glob("error-*.txt")) if ranks.is_dir() else []:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
            out[int(f.stem.split("-")[1])] = (text, f.stat().st_mtime)
        except (ValueError, OSError):
            continue
    return out


def reap(out_dir: Path, job: Path) -> list[int]:
    """Kill any rank of this run still alive after its launcher ended; returns their pids.

    Each rank leads its own process group (torchrun starts them in new sessions) and wrote its
    pid to ``.ranks/pid-<rank>``; a pid counts only while its command line still names ``job``
    (pids are reused).
    """
    killed = []
    ranks = Path(out_dir) / RANKS_DIR
    for f in sorted(ranks.glob("pid-*")) if ranks.is_dir() else []:
        try:
            pid = int(f.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            continue
        if str(job).encode() not in cmdline:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        killed.append(pid)
    return killed


def clean_scratch(out_dir: Path) -> None:
    """Remove the scratch folders of ranks other than 0 (``.ranks/rank-<k>``): nothing there
    belongs to the run."""
    import shutil

    ranks = Path(out_dir) / RANKS_DIR
    for d in ranks.glob("rank-*") if ranks.is_dir() else []:
        shutil.rmtree(d, ignore_errors=True)


def main(argv: list[str]) -> None:
    from recap.lab.child import _die_with_parent

    parent = os.environ.get("RECAP_PARENT_PID")
    _die_with_parent()
    if parent and os.getppid() != int(parent):
        sys.exit(143)  # the recording parent died before we could ask to follow it
    os.environ["RECAP_LAUNCHER_PID"] = str(os.getpid())
    from torch.distributed.run import main as torchrun

    torchrun(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
