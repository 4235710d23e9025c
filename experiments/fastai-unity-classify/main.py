"""fastai-unity-classify: see README.md. The work is shared by the family: recap.ml.experiment."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(ctx):
    from recap.ml.experiment import run_experiment

    return run_experiment(ctx, HERE, task="classify")
