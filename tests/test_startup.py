"""Start-up is a feature: importing the CLI loads no heavy package."""

import subprocess
import sys

HEAVY = (
    "sqlmodel",
    "sqlalchemy",
    "pydantic",
    "torch",
    "fastai",
    "onnx",
    "onnxruntime",
    "mkdocs",
    "bpy",
    "matplotlib",
    "feedparser",
    "httpx",
    "yaml",
)


def test_import_recap_cli_loads_no_heavy_module():
    code = f"import sys, recap.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_runs_without_heavy_modules():
    code = (
        "import sys\nfrom recap.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        f"print('LOADED:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: recap" in out.stdout
    assert out.stdout.strip().endswith("LOADED:")


def test_version_and_module_entry_point():
    from recap import __version__

    out = subprocess.run(
        [sys.executable, "-m", "recap", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"recap {__version__}"
