"""`recap exp export RUN --profile ...`: re-export a finished run's model (the ML core)."""

from __future__ import annotations

import typer


def register(exp_app: typer.Typer) -> None:
    """Add the export command to the `exp` group."""
