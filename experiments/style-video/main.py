"""style-video: see README.md. The work is shared by the family: recap.ml.style.experiment."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(ctx):
    from recap.ml.style.experiment import run_style

    return run_style(ctx, HERE, arch="patch")
