"""Printing helpers shared by the commands: JSON for machines, tables and text for people.

Tables fit the terminal (``COLUMNS`` or the real width): the widest column is cut with an
ellipsis until the row fits, unless ``--wide`` was given (``set_wide``). Colour only on a TTY
with ``NO_COLOR`` unset; long text goes through ``$PAGER`` when the user set one. rich is
imported only when it is used, so start-up stays cheap.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence

_state = {"wide": False}


def set_wide(value: bool) -> None:
    _state["wide"] = bool(value)


def width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


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
    headers: Sequence[str],
    rows: Iterable[Sequence],
    empty: str = "nothing",
    sample: int = 200,
    detail: Sequence[int] = (),
) -> int:
    """:func:`print_table` for any number of rows: column widths come from the first ``sample``
    rows, then rows are printed as they arrive. Returns how many rows were printed.
    ``detail``: as :func:`print_table`'s."""
    import itertools

    it = iter(rows)
    head = [["" if v is None else str(v) for v in row] for row in itertools.islice(it, sample)]
    if not head:
        print(empty, flush=True)
        return 0
    head = [[" ".join(cell.split()) for cell in row] for row in head]
    natural = [len(h) for h in headers]
    for row in head:
        for i, cell in enumerate(row):
            natural[i] = min(max(natural[i], len(cell)), 60)
    total = width()
    narrow = fitted() and sum(natural) + 2 * (len(natural) - 1) > total
    keep = [i for i in range(len(headers)) if not (narrow and i in detail)]
    widths = [natural[i] for i in keep]
    if fitted():
        widths = fit_widths(widths, total)
    bold = ("\033[1m", "\033[0m") if color() else ("", "")

    cut = _cut if fitted() else (lambda c, _w: c)  # in a pipe nothing is cut (past 60: unaligned)

    def fmt(cells):
        cells = [cells[i] for i in keep]
        return "  ".join(cut(c, widths[i]).ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    write = sys.stdout.write
    rule = "  ".join("-" * w for w in widths)
    write(bold[0] + fmt(headers) + bold[1] + "\n" + rule + "\n")
    n = 0
    for row in itertools.chain(head, it):
        if n >= len(head):
            row = [" ".join(("" if v is None else str(v)).split()) for v in row]
        write(fmt(row) + "\n")
        if narrow and detail:
            write("".join(line + "\n" for line in _detail_lines(headers, row, detail)))
        n += 1
    sys.stdout.flush()
    return n


def fit_widths(
    natural: list[int], total: int, gap: int = 2, floor: int = 8, keep: Sequence[int] = ()
) -> list[int]:
    """Column widths that fit ``total`` characters: the widest column gives way first.

    The first column (an id or a name to type back) is never cut; the ``keep`` columns (other
    names to type back, such as a slug) only once the others are down to ``floor``.
    """
    widths = list(natural)
    budget = total - gap * (len(widths) - 1)
    others = [k for k in range(1, len(widths)) if k not in keep]
    # first keep every column readable, the kept ones whole; then whatever it takes
    for cols, least in (
        (others, floor),
        (range(1, len(widths)), floor),
        (range(1, len(widths)), 2),
    ):
        while sum(widths) > budget:
            i = max(cols, key=lambda k: widths[k], default=None)
            if i is None or widths[i] <= least:
                break
            widths[i] -= 1
    return widths


def fitted() -> bool:
    """Whether output is laid out for a terminal's width: on a TTY, or when COLUMNS says how
    wide; never in a pipe or under ``--wide``. Tables cut and wrap only then, and so do commands
    that wrap their own text (:func:`wrapped`)."""
    return not _state["wide"] and (sys.stdout.isatty() or "COLUMNS" in os.environ)


def wrapped(text: str, first: str, rest: str | None = None) -> list[str]:
    """``text`` wrapped at the terminal's width, its first line after ``first`` and the others
    after ``rest`` (default: ``first``); words and hyphenated names are never split."""
    import textwrap

    rest = first if rest is None else rest
    return textwrap.wrap(
        text, max(width(), len(first) + 20), initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    ) or [first.rstrip()]  # fmt: skip


def _cut(cell: str, w: int) -> str:
    return cell if len(cell) <= w else cell[: max(w - 1, 0)] + "…"


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence],
    empty: str = "nothing",
    wrap: int = 0,
    detail: Sequence[int] = (),
    keep: Sequence[int] = (),
) -> None:
    """An aligned table that fits the terminal; bold headers on a colour TTY.

    When the whole table is wider than the terminal:

    - ``wrap`` (a width, e.g. 32): the last column (prose such as a help text) keeps at least
      that many characters and wraps onto more lines instead of being cut; the other columns
      give way first;
    - ``detail`` (column indices): those columns leave the table and go under each row, as
      ``header: value`` pieces wrapped at the terminal's width, so a long id, a metric's value or
      a run's params are never cut to an ellipsis;
    - ``keep`` (column indices): names to type back, cut only after the other columns.
    """
    rows = [[" ".join(("" if v is None else str(v)).split()) for v in row] for row in rows]
    if not rows:
        print(empty, flush=True)
        return
    if (wrap or detail) and fitted() and all(len(r) == len(headers) for r in rows):
        natural = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        total = width()
        if sum(natural) + 2 * (len(natural) - 1) > total:
            if detail:
                _print_with_details(headers, rows, natural, total, set(detail))
            else:
                _print_wrapped(headers, rows, natural, total, wrap)
            return
    natural = [len(h) for h in headers]
    if all(len(row) == len(natural) for row in rows):
        natural = [
            max(n, *map(len, column))
            for n, column in zip(natural, zip(*rows, strict=True), strict=True)
        ]
    else:
        for row in rows:
            for i, cell in enumerate(row):
                natural[i] = max(natural[i], len(cell))
    widths = fit_widths(natural, width(), keep=keep) if fitted() else natural
    # The last column is not padded, so it may use what is left without trailing spaces.
    bold = ("\033[1m", "\033[0m") if color() else ("", "")
    # One format string pads every cell (as str.ljust does); cells are cut first only when a
    # column is narrower than its longest cell. Rows are written in blocks, not one print each.
    pad = "  ".join(f"{{:<{w}}}" for w in widths).format
    cut = widths != natural

    def fmt(cells):
        if len(cells) != len(widths):  # a short row: only its own cells
            line = "  ".join(_cut(c, w).ljust(w) for c, w in zip(cells, widths, strict=False))
            return line.rstrip()
        if cut:
            cells = [_cut(c, w) for c, w in zip(cells, widths, strict=True)]
        return pad(*cells).rstrip()

    print(bold[0] + fmt(headers) + bold[1])
    print(fmt(["-" * w for w in widths]))
    write = sys.stdout.write
    for start in range(0, len(rows), 1000):
        write("".join(fmt(row) + "\n" for row in rows[start : start + 1000]))
    sys.stdout.flush()


def _print_wrapped(headers, rows, natural, total: int, wrap: int) -> None:
    """:func:`print_table` whose last column wraps (continuation lines start under it)."""
    import textwrap

    last = min(natural[-1], max(wrap, total - sum(natural[:-1]) - 2 * (len(natural) - 1)))
    widths = fit_widths(natural[:-1], total - last - 2, floor=8) + [last]
    last = max(total - sum(widths[:-1]) - 2 * (len(widths) - 1), 8)
    widths[-1] = last
    indent = " " * (sum(widths[:-1]) + 2 * (len(widths) - 1))
    bold = ("\033[1m", "\033[0m") if color() else ("", "")

    def lines(cells):
        head = "  ".join(_cut(c, w).ljust(w) for c, w in zip(cells[:-1], widths, strict=False))
        parts = textwrap.wrap(cells[-1], last, break_long_words=True) or [""]
        out = [(head + "  " + parts[0]).rstrip()]
        out += [indent + part for part in parts[1:]]
        return "\n".join(out)

    print(bold[0] + lines(list(headers)) + bold[1])
    print(lines(["-" * w for w in widths]))
    sys.stdout.write("".join(lines(row) + "\n" for row in rows))
    sys.stdout.flush()


def _print_with_details(headers, rows, natural, total: int, detail: set[int]) -> None:
    """:func:`print_table` with the ``detail`` columns moved under each row."""
    keep = [i for i in range(len(headers)) if i not in detail]
    widths = fit_widths([natural[i] for i in keep], total)
    bold = ("\033[1m", "\033[0m") if color() else ("", "")

    def line(cells):
        return "  ".join(_cut(c, w).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [bold[0] + line([headers[i] for i in keep]) + bold[1], line(["-" * w for w in widths])]
    for row in rows:
        out.append(line([row[i] for i in keep]))
        out += _detail_lines(headers, row, detail)
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()


def _detail_lines(headers, row, detail) -> list[str]:
    """A row's ``detail`` cells, indented under it and wrapped at the terminal's width:
    ``header: value`` pieces, or the bare value when there is one detail column (a URL)."""
    cols = sorted(detail)
    pieces = [
        row[i] if len(cols) == 1 else f"{headers[i]}: {row[i]}"
        for i in cols
        if row[i] not in ("", "-")
    ]
    return wrapped("; ".join(pieces), "    ") if pieces else []


def page_markdown(text: str) -> None:
    """Markdown for a person: rendered by rich on a colour TTY, paged through ``$PAGER`` if set."""
    pager = os.environ.get("PAGER")
    if not sys.stdout.isatty():
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    if color():
        from rich.console import Console
        from rich.markdown import Markdown

        console = Console()
        if pager and text.count("\n") > console.size.height:
            with console.pager(styles=True):
                console.print(Markdown(text))
        else:
            console.print(Markdown(text))
        return
    if pager and text.count("\n") > shutil.get_terminal_size().lines:
        import pydoc

        pydoc.pipepager(text, pager)
    else:
        print(text)
