"""Printing helpers shared by the commands: JSON for machines, plain tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def stream_json(items: Iterable) -> int:
    """A JSON array written item by item, byte-identical to :func:`print_json` of the list, so
    a listing of a million rows never holds them all. Returns how many items were written."""
    write = sys.stdout.write
    n = 0
    for item in items:
        text = json.dumps(item, indent=2, ensure_ascii=False, default=str)
        write(("[\n  " if n == 0 else ",\n  ") + text.replace("\n", "\n  "))
        n += 1
    write("[]\n" if n == 0 else "\n]\n")
    sys.stdout.flush()
    return n


def stream_table(
    headers: Sequence[str], rows: Iterable[Sequence], empty: str = "nothing", sample: int = 200
) -> int:
    """:func:`print_table` for any number of rows: column widths come from the first ``sample``
    rows, then rows are printed as they arrive. Returns how many rows were printed."""
    import itertools

    it = iter(rows)
    head = [["" if v is None else str(v) for v in row] for row in itertools.islice(it, sample)]
    if not head:
        print(empty, flush=True)
        return 0
    widths = [len(h) for h in headers]
    for row in head:
        for i, cell in enumerate(row):
            widths[i] = min(max(widths[i], len(cell)), 60)

    def fmt(cells):
        out = []
        for i, cell in enumerate(cells):
            cell = cell if len(cell) <= widths[i] else cell[: widths[i] - 1] + "…"
            out.append(cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    write = sys.stdout.write
    write(fmt(headers) + "\n" + fmt(["-" * w for w in widths]) + "\n")
    n = 0
    for row in itertools.chain(head, it):
        if n >= len(head):
            row = ["" if v is None else str(v) for v in row]
        write(fmt(row) + "\n")
        n += 1
    sys.stdout.flush()
    return n


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
