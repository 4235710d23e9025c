"""Markers in an entry body that expand into generated sections, and text clean-up for output.

``recap new`` writes the markers into the template; the week's bookmarks and runs are computed
at render time (``recap.week``), so ``recap show`` and the site always reflect the database.
"""

from __future__ import annotations

import re

LINKS_MARKER = "<!-- recap:links -->"
RUNS_MARKER = "<!-- recap:runs -->"
MARKERS = (LINKS_MARKER, RUNS_MARKER)

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s")


def drop_empty_sections(body: str) -> str:
    """Leave out headings whose section holds no text (only blank lines or unfilled markers).

    A heading with sub-headings that have text is kept. Fenced code is text, never structure.
    """
    lines = body.replace("\r\n", "\n").split("\n")
    heads: list[tuple[int, int]] = []  # (line index, level)
    inside = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            inside = not inside
            continue
        m = None if inside else _HEADING.match(line)
        if m:
            heads.append((i, len(m.group(1))))
    drop: set[int] = set()
    for n, (i, level) in enumerate(heads):
        end = len(lines)
        for j, lvl in heads[n + 1 :]:
            if lvl <= level:
                end = j
                break
        content = [
            ln
            for k, ln in enumerate(lines[i + 1 : end], start=i + 1)
            if ln.strip() and ln.strip() not in MARKERS and k not in {h for h, _ in heads}
        ]
        if not content:
            drop.add(i)
    kept = [ln for k, ln in enumerate(lines) if k not in drop and ln.strip() not in MARKERS]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n") + "\n"


def is_blank(body: str) -> bool:
    """True when a body has nothing a reader would see but headings and markers."""
    return not drop_empty_sections(body).strip()
