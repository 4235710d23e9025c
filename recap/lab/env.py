"""What a run ran on: package versions, Python, git state, and the device for ``--device auto``.

Cheap by design (no torch import in the parent): versions come from package metadata; the child
adds torch/CUDA/GPU details when the experiment itself imported torch.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

# Packages whose version changes what a run computes: part of the cache key and the record.
KEY_PACKAGES = (
    "recap",
    "numpy",
    "torch",
    "torchvision",
    "fastai",
    "onnx",
    "onnxruntime",
    "scikit-learn",
    "pillow",
    "bpy",  # Blender renders: a new Blender may change every pixel
)


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def package_versions(names=KEY_PACKAGES) -> dict[str, str | None]:
    """Installed versions, found the way importlib.metadata finds them (first on sys.path).

    One directory listing per sys.path entry instead of a metadata search per package: this runs
    on every ``recap exp run``, cached hits included, and the ML environment has hundreds of
    distributions.
    """
    wanted = {_norm(n): n for n in names}
    out: dict[str, str | None] = dict.fromkeys(names)
    unsure = set()
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for fn in listing:
            if not fn.endswith((".dist-info", ".egg-info")):
                continue
            name, _, version = fn.rsplit(".", 1)[0].partition("-")
            key = wanted.get(_norm(name))
            if key is None or out[key] is not None or key in unsure:
                continue
            if version and fn.endswith(".dist-info"):
                out[key] = version
            else:
                unsure.add(key)  # an egg-info without a version in its name: ask metadata
    if unsure:
        from importlib import metadata

        for key in unsure:
            try:
                out[key] = metadata.version(key)
            except metadata.PackageNotFoundError:
                out[key] = None
    return out


def python_version() -> str:
    return platform.python_version()


def environment() -> dict:
    """The parent's view of the environment (the child adds torch/CUDA/GPU when it has them)."""
    return {
        "python": python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "executable": sys.executable,
        "packages": package_versions(),
    }


def _nvidia_present() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        if gpus.is_dir() and any(gpus.iterdir()):
            return True
    except OSError:
        pass
    # Sandboxed kernels (gVisor, some containers) show the device nodes but not /proc/driver.
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*"))


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch is installed and an NVIDIA GPU is present, else ``cpu``.

    Decided without importing torch (seconds): the driver's /proc entry and torch's metadata.
    """
    from recap.errors import InvalidInput

    if device not in ("cpu", "cuda", "auto"):
        raise InvalidInput(f"--device {device!r}: expected cpu, cuda or auto")
    if device != "auto":
        return device
    import importlib.util

    return "cuda" if _nvidia_present() and importlib.util.find_spec("torch") else "cpu"


def git_state(folder: Path) -> dict:
    """Commit, dirty flag and diff hash of the repo holding ``folder`` (all None if none)."""
    state = {"commit": None, "dirty": None, "diff_hash": None}

    def git(*args) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            timeout=30,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )

    try:
        head = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return state  # no git at all
    if head.returncode != 0:
        return state  # not a repo, or a repo without commits
    state["commit"] = head.stdout.decode().strip()
    status = git("status", "--porcelain", "--untracked-files=normal")
    diff = git("diff", "HEAD", "--binary")
    state["dirty"] = bool(status.stdout.strip())
    if state["dirty"]:
        # Untracked files count too: a new helper module changes what runs.
        h = hashlib.sha256(diff.stdout)
        h.update(status.stdout)
        state["diff_hash"] = h.hexdigest()
    return state
