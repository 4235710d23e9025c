"""Docs come from the code: every command has help text and is documented in docs/guide/."""

from pathlib import Path

import typer.main

from recap.cli import app

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _commands(group, prefix: str = "recap"):
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, path)


def test_every_command_has_help_and_is_documented():
    root = typer.main.get_command(app)
    docs = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    missing_help = [p for p, c in _commands(root) if not (c.help or "").strip()]
    undocumented = [p for p, c in _commands(root) if p not in docs]
    assert missing_help == []
    assert undocumented == []
    assert len(list(_commands(root))) > 10
