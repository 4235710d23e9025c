"""pose: see README.md. The work is the shared pipeline's with the ``pose`` task plug-in."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(ctx):
    from recap.ml.pipeline import run

    return run(ctx, HERE)
