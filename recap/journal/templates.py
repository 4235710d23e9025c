"""The template of a new weekly entry: Introduction, one section per active project, Conclusion.

A log overrides it with ``template = "path"`` in recap.toml; the file may use ``$title``, ``$week``,
``$date`` and ``$projects`` (the project sections), and should keep the two markers where the
week's links and runs go.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from recap.errors import InvalidInput
from recap.journal.render import LINKS_MARKER, RUNS_MARKER

BUILTIN = f"""\
## Introduction

$projects
{LINKS_MARKER}

{RUNS_MARKER}

## Conclusion

"""


def render(root: Path, cfg: dict, *, title: str, week: str, day: str) -> str:
    text = BUILTIN
    if cfg.get("template"):
        path = root / str(cfg["template"])
        # Only a file of the log itself (after '..' and symlinks): recap.toml may come from a
        # shared repository, and the template ends up in a published post.
        resolved = path.resolve()
        if not resolved.is_relative_to(root.resolve()):
            raise InvalidInput(
                f"recap.toml: template {cfg['template']!r} is outside the log root {root}"
            )
        try:
            text = resolved.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInput(f"recap.toml: template {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"recap.toml: template {path} cannot be read: {exc}") from None
    projects = "".join(f"## {name}\n\n" for name in cfg.get("projects", []))
    try:
        return Template(text).substitute(title=title, week=week, date=day, projects=projects)
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"template: unknown or malformed placeholder {exc}") from None
