"""Printing helpers shared by the commands: JSON for machines, plain tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_table(headers: Sequence[str], rows: Iterable[Sequence], empty: str = "nothing") -> None:
    """A plain aligned table (no colour codes, so it pipes and greps cleanly)."""
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    if not rows:
        print(empty, flush=True)
        return
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = min(max(widths[i], len(cell)), 60)

    def fmt(cells):
        out = []
        for i, cell in enumerate(cells):
            cell = cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "…"
            out.append(cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    print(fmt(headers))
    print(fmt(["-" * w for w in widths]))
    for row in rows:
        print(fmt(row))
    sys.stdout.flush()
