"""The child process of ``recap exp run``: import the entry point, call it with a RunContext.

``python -m recap.lab.child JOB.json``. Its stdout and stderr are the run's log file (file
descriptors handed over by the parent), so it never blocks on a pipe. It knows nothing about the
database: everything goes through the context's ``events.jsonl``; a crash leaves its traceback
in ``error.txt`` for the parent to record.

Exit codes: 0 succeeded, 1 the entry point raised, 130 interrupted (SIGINT).

Under the launcher (``recap.lab.launch``, torchrun) one child runs per rank: ``RANK`` and
``WORLD_SIZE`` come from torchrun, the job's ``dist`` section says how the run was launched. Only
rank 0's context writes (events, artifacts); every rank writes its pid, and its traceback when it
fails, to ``.ranks/`` so the parent can name the rank that failed and leave no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

ERROR_FILE = "error.txt"
MISSING_EXTRA_FILE = "missing-extra.json"
EXIT_INTERRUPTED = 130


#: where each rank writes its pid and, when it fails, its traceback (inside the run folder)
RANKS_DIR = ".ranks"


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us if the recording parent dies, so no orphan runs unrecorded."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _load_entry(folder: Path, file: str, func: str):
    import importlib.util

    # The experiment folder is importable, so its main.py can import its own helper modules.
    sys.path.insert(0, str(folder))
    if not file.endswith(".py"):  # a shared entry point: package.module:func
        fn = getattr(importlib.import_module(file), func, None)
        if not callable(fn):
            raise SystemExit(f"{file} has no function {func}()")
        return fn
    path = folder / file
    spec = importlib.util.spec_from_file_location(f"recap_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, func, None)
    if not callable(fn):
        raise SystemExit(f"{path} has no function {func}()")
    return fn


def _runtime_environment() -> dict:
    """torch / CUDA / GPU details, only when the experiment imported torch itself."""
    env: dict = {}
    torch = sys.modules.get("torch")
    if torch is None:
        return env
    env["torch"] = getattr(torch, "__version__", None)
    try:
        env["cuda"] = torch.version.cuda
        env["cuda_available"] = bool(torch.cuda.is_available())
        if env["cuda_available"]:
            env["gpu"] = torch.cuda.get_device_name(0)
            env["cudnn"] = torch.backends.cudnn.version()
    except Exception as exc:  # a broken CUDA set-up must not fail a finished run
        env["cuda_error"] = str(exc)
    return env


def _rank() -> tuple[int, int, int]:
    """(rank, local rank, world size) as torchrun set them; (0, 0, 1) for a plain child."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))


def main(job_path: str) -> int:
    from recap.errors import MissingExtra
    from recap.lab.context import RunContext

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    dist = job.get("dist")
    _die_with_parent()
    # under the launcher our parent is torchrun (recap.lab.launch), which follows the recorder
    parent = os.environ.get("RECAP_LAUNCHER_PID") if dist else job.get("parent_pid")
    if parent and os.getppid() != int(parent):
        return 143  # our parent died before we could ask to follow it
    rank, local_rank, world = _rank() if dist else (0, 0, 1)
    out_dir = Path(job["out_dir"])
    error_file = out_dir / job.get("error_file", ERROR_FILE)
    if dist:
        ranks = out_dir / RANKS_DIR
        ranks.mkdir(exist_ok=True)
        (ranks / f"pid-{rank}").write_text(str(os.getpid()), encoding="utf-8")
        if rank != 0:
            error_file = ranks / f"error-{rank}.txt"

    def _terminated(*_):
        if dist:  # torchrun stops the other ranks with SIGTERM when one fails
            error_file.write_text("stopped by the launcher (SIGTERM)\n", encoding="utf-8")
        sys.exit(143)

    signal.signal(signal.SIGTERM, _terminated)
    # ranks other than 0 write into a scratch folder: an entry point that knows nothing of ranks
    # (it writes its files itself) cannot clobber rank 0's outputs
    ctx = RunContext(
        job["params"],
        out_dir if rank == 0 else out_dir / RANKS_DIR / f"rank-{rank}",
        seed=job["seed"],
        device=job["device"],
        run_id=job["run_id"],
        folder=Path(job["folder"]),
        rank=rank,
        local_rank=local_rank,
        world_size=world,
        dist=dist,
    )
    code = 0
    try:
        ctx.seed_everything()
        fn = _load_entry(Path(job["folder"]), job["entry_file"], job["entry_func"])
        fn(ctx)
        if dist and world > 1 and rank == 0 and not _trained_data_parallel():
            ctx.flag(
                "distributed",
                "the run trained without recap.ml.distributed's wrapper: each rank trained "
                "alone, rank 0's results are the run's (not data-parallel)",
            )
    except KeyboardInterrupt:
        # The terminal's Ctrl-C and the parent's forwarded one may both arrive: record once.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        error_file.write_text("interrupted (SIGINT)\n", encoding="utf-8")
        code = EXIT_INTERRUPTED
    except MissingExtra as exc:  # not a result: the parent forgets the run and says what to install
        (out_dir / MISSING_EXTRA_FILE).write_text(
            json.dumps({"extra": exc.extra, "module": exc.module}), encoding="utf-8"
        )
        (out_dir / ERROR_FILE).write_text(f"{exc}\n", encoding="utf-8")
        code = 1
    except SystemExit as exc:
        if exc.code not in (0, None):
            code = exc.code if isinstance(exc.code, int) else 1
            if not (dist and code == 143):  # keep the launcher's "stopped" note
                error_file.write_text(f"exited with {exc.code}\n", encoding="utf-8")
    except BaseException:
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        error_file.write_text(tb, encoding="utf-8")
        if dist and rank == 0:  # the parent reads the rank's own file first
            (out_dir / RANKS_DIR / "error-0.txt").write_text(tb, encoding="utf-8")
        code = 1
    finally:
        try:
            _leave_group()
            ctx._emit({"type": "environment", **_runtime_environment()})
        finally:
            ctx.close()
            sys.stdout.flush()
            sys.stderr.flush()
    return code


def _trained_data_parallel() -> bool:
    mod = sys.modules.get("recap.ml.distributed")
    return bool(mod is not None and mod.was_wrapped())


def _leave_group() -> None:
    """Destroy the process group the entry point made (torch warns at exit otherwise)."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # a broken group (a peer died) must not hide the run's own error
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
