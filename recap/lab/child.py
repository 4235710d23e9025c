"""The child process of ``recap exp run``: import the entry point, call it with a RunContext.

``python -m recap.lab.child JOB.json``. Its stdout and stderr are the run's log file (file
descriptors handed over by the parent), so it never blocks on a pipe. It knows nothing about the
database: everything goes through the context's ``events.jsonl``; a crash leaves its traceback
in ``error.txt`` for the parent to record.

Exit codes: 0 succeeded, 1 the entry point raised, 130 interrupted (SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

ERROR_FILE = "error.txt"
EXIT_INTERRUPTED = 130


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


def main(job_path: str) -> int:
    from recap.lab.context import RunContext

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    _die_with_parent()
    if job.get("parent_pid") and os.getppid() != job["parent_pid"]:
        return 143  # the recording parent died before we could ask to follow it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out_dir = Path(job["out_dir"])
    error_file = out_dir / job.get("error_file", ERROR_FILE)
    ctx = RunContext(
        job["params"],
        out_dir,
        seed=job["seed"],
        device=job["device"],
        run_id=job["run_id"],
        folder=Path(job["folder"]),
    )
    code = 0
    try:
        ctx.seed_everything()
        fn = _load_entry(Path(job["folder"]), job["entry_file"], job["entry_func"])
        fn(ctx)
    except KeyboardInterrupt:
        # The terminal's Ctrl-C and the parent's forwarded one may both arrive: record once.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        error_file.write_text("interrupted (SIGINT)\n", encoding="utf-8")
        code = EXIT_INTERRUPTED
    except SystemExit as exc:
        if exc.code not in (0, None):
            code = exc.code if isinstance(exc.code, int) else 1
            error_file.write_text(f"exited with {exc.code}\n", encoding="utf-8")
    except BaseException:
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        error_file.write_text(tb, encoding="utf-8")
        code = 1
    finally:
        try:
            ctx._emit({"type": "environment", **_runtime_environment()})
        finally:
            ctx.close()
            sys.stdout.flush()
            sys.stderr.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
