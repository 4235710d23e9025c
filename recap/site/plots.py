"""Training-curve PNGs from metric rows, drawn with Pillow (imported only when a plot is drawn).

Each metric family gets its own axis (losses, accuracy-like metrics, throughput), so a loss of 2.0
never flattens an accuracy of 0.9; runs are labelled by what differs between them
(``noise=0.5``), and the best point of the primary metric is marked.

Why not matplotlib: a site's first build draws a plot per run and per post, and matplotlib cost
about 40 ms a plot plus 0.3-0.5 s to import (most of a first build's render). These plots need
lines, nice ticks, a grid, a legend and a few labels, which Pillow draws in a few milliseconds:
everything is drawn at twice the size and halved (anti-aliased lines and text), in DejaVu Sans
(the font matplotlib ships) when it is installed. ``recap exp show --plot`` keeps matplotlib.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

# Bump when the drawing changes, so cached PNGs are redrawn.
PLOT_VERSION = "6"
FAMILIES = ("losses", "metrics", "throughput")
_STYLES = ("-", "--", ":", "-.")
# matplotlib's default colours (tab10), so a site keeps the look it had.
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# Layout in final pixels (the old 8 x (0.6 + 2.3 n) inch figure at 80 dpi).
WIDTH = 640
TOP = 48
ROW = 184
LEFT = 56
AXES_W = 316
AXES_TOP = 44  # from the top of a row's band
AXES_H = 140
SS = 2  # drawn at twice the size, then halved: anti-aliasing for lines and text
GRID = (231, 231, 231)
# dash patterns in final pixels (on, off, ...), as matplotlib's for a 1.5 pt line at 80 dpi
_DASHES = {"--": (6.2, 2.7), ":": (1.7, 2.7), "-.": (6.4, 2.7, 1.7, 2.7)}


def family(key: str) -> str:
    k = key.lower()
    if "loss" in k or k.endswith("mse") or k.endswith("_error") or "error_px" in k:
        return "losses"
    if "per_s" in k or "throughput" in k or k.endswith("_time") or k.endswith("_secs"):
        return "throughput"
    return "metrics"


@lru_cache(maxsize=8)
def _font(px: int):
    """DejaVu Sans at ``px`` pixels (matplotlib's copy when present), else Pillow's own."""
    from importlib.util import find_spec
    from pathlib import Path

    from PIL import ImageFont

    spec = find_spec("matplotlib")
    for base in spec.submodule_search_locations or [] if spec else []:
        path = Path(base) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), px)
    return ImageFont.load_default(px)


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, most: int, integer: bool = False) -> tuple[float, list]:
    """Ticks at 1, 2, 2.5 or 5 times a power of ten, at most ``most`` intervals over [lo, hi]."""
    raw = (hi - lo) / max(most, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = 10 * mag
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw * (1 - 1e-9) and not (integer and m * mag < 1):
            step = m * mag
            break
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(k * step)
        k += 1
    return step, ticks


def tick_label(value: float, step: float) -> str:
    """A tick's text with as many decimals as the step needs ('0.25', '120', '1e-05')."""
    if abs(value) >= 1e6 or step < 1e-4:
        return f"{value + 0.0:.3g}" if abs(value) > step * 1e-6 else "0"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step * 10**decimals, 6) % 1:
        decimals += 1  # steps like 0.25
    return f"{round(value, decimals) + 0.0:.{decimals}f}"  # + 0.0: never "-0.00"


def log_scale(values: list[float]) -> bool:
    """Whether the positive values span 30x or more (a decade and a half). Values at or below
    zero (a total-variation loss switched off) are then left out, as NaNs are."""
    pos = [v for v in values if v > 0]
    return len(pos) > 1 and max(pos) >= 30 * min(pos)


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks (as exponents) between 10**lo and 10**hi: the powers of ten, with 2x and 5x in
    between when fewer than three decades show."""
    steps = (1.0,) if hi - lo >= 3 else (1.0, 2.0, 5.0)
    out = []
    for k in range(math.floor(lo), math.ceil(hi) + 1):
        out += [math.log10(m * 10.0**k) for m in steps]
    return [t for t in out if lo - 1e-9 <= t <= hi + 1e-9]


def log_tick_label(exponent: float) -> str:
    """A log tick's text: ``0.01``, ``2``, ``500``, ``2e+04``."""
    v = 10.0**exponent
    if 1 <= v < 1e4:
        return f"{v:.0f}"
    return f"{v:.2g}" if 0.01 <= v < 1 else f"{v:.0e}"


def _limits(values: list[float], integer: bool = False) -> tuple[float, float]:
    """The data range with 5% margins; a flat range is widened so it still has ticks."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo <= abs(hi) * 1e-12:
        pad = abs(hi) * 0.05 or (1.0 if integer else 0.05)
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _dash(points: list[tuple[float, float]], pattern: tuple[float, ...]) -> list[list]:
    """The pieces of a polyline that a dash pattern draws (pattern lengths in pixels)."""
    pieces: list[list] = []
    index, left, on = 0, pattern[0], True
    current = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while seg - pos > left:
            pos += left
            t = pos / seg
            p = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            if on:
                current.append(p)
                pieces.append(current)
            current = [p]
            on = not on
            index = (index + 1) % len(pattern)
            left = pattern[index]
        left -= seg - pos
        if on:
            current.append((x1, y1))
        else:
            current = [(x1, y1)]
    if on and len(current) > 1:
        pieces.append(current)
    return pieces


def _star(x: float, y: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        a = -math.pi / 2 + i * math.pi / 5
        rr = r if i % 2 == 0 else r * 0.38
        pts.append((x + rr * math.cos(a), y + rr * math.sin(a)))
    return pts


def curves_png(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    runs: dict[str, dict[str, list[tuple[float, float]]]] | None = None,
    primary: str = "",
    direction: str = "min",
    xlabel: str = "step",
) -> bytes:
    """One axis per metric family; deterministic bytes for the same data.

    ``series`` (key -> points) draws one run; ``runs`` (run label -> key -> points) draws several,
    one colour per run and one line style per key. The best point of ``primary`` is starred.
    Points whose value is not a finite number are left out (the line breaks there).
    """
    from PIL import Image, ImageDraw

    runs = runs if runs is not None else {"": series}
    present = [f for f in FAMILIES if any(family(k) == f for s in runs.values() for k in s)]
    present = present or ["metrics"]
    height = TOP + ROW * len(present)
    img = Image.new("RGB", (WIDTH * SS, height * SS), "white")
    draw = ImageDraw.Draw(img)
    keys = sorted({k for s in runs.values() for k in s})
    small, medium, large = _font(8 * SS), _font(10 * SS), _font(11 * SS)
    tick_font = _font(10 * SS)

    def s(v: float) -> float:
        return v * SS

    for row, fam in enumerate(present):
        top, left = row * ROW + AXES_TOP, LEFT
        right, bottom = left + AXES_W, top + AXES_H
        lines = []  # (label, colour, style, points)
        for ri, (label, data) in enumerate(sorted(runs.items())):
            mine = [k for k in keys if k in data and family(k) == fam]
            for ki, key in enumerate(mine):
                colour = COLORS[ri % 10] if label else COLORS[ki % 10]
                style = _STYLES[keys.index(key) % 4] if label else "-"
                name = " ".join(x for x in (label, key) if x)[:44]
                lines.append((name, colour, style, key, list(data[key])))
        xs = [p[0] for ln in lines for p in ln[4] if _finite(p[0]) and _finite(p[1])]
        ys = [p[1] for ln in lines for p in ln[4] if _finite(p[0]) and _finite(p[1])]
        integer_x = all(float(x).is_integer() for x in xs)
        x0, x1 = _limits(xs, integer_x)
        # losses spanning two decades or more (a style loss from 3e4 to 3e2) on a log axis, as
        # matplotlib users draw them: on a linear one every curve but the largest lies flat
        logy = fam == "losses" and log_scale(ys)
        y0, y1 = _limits([math.log10(y) for y in ys if y > 0] if logy else ys)
        xstep, xticks = nice_ticks(x0, x1, 5, integer=integer_x)
        if logy:
            ystep, yticks = 1.0, log_ticks(y0, y1)
        else:
            ystep, yticks = nice_ticks(y0, y1, 4)

        def px(x, x0=x0, x1=x1, left=left):
            return s(left + (x - x0) / (x1 - x0) * AXES_W)

        def py(y, y0=y0, y1=y1, bottom=bottom, logy=logy):
            if logy:
                y = math.log10(y) if y > 0 else -math.inf
            return s(bottom - (y - y0) / (y1 - y0) * AXES_H)

        for t in xticks:
            x = px(t)
            draw.line([(x, s(top)), (x, s(bottom))], fill=GRID, width=2)
            draw.line([(x, s(bottom)), (x, s(bottom + 4))], fill="black", width=2)
            draw.text(
                (x, s(bottom + 6)), tick_label(t, xstep), fill="black", font=tick_font, anchor="ma"
            )
        for t in yticks:
            y = py(10.0**t if logy else t)
            draw.line([(s(left), y), (s(right), y)], fill=GRID, width=2)
            draw.line([(s(left - 4), y), (s(left), y)], fill="black", width=2)
            label = log_tick_label(t) if logy else tick_label(t, ystep)
            draw.text((s(left - 6), y), label, fill="black", font=tick_font, anchor="rm")
        for _name, colour, style, key, pts in lines:
            # Runs of finite points; a NaN or an infinity breaks the line as matplotlib does.
            parts, current = [], []
            for x, y in pts:
                if _finite(x) and _finite(y) and (y > 0 or not logy):
                    current.append((px(x), py(y)))
                elif current:
                    parts.append(current)
                    current = []
            if current:
                parts.append(current)
            for part in parts:
                pieces = (
                    [part] if style == "-" else _dash(part, tuple(s(v) for v in _DASHES[style]))
                )
                for piece in pieces:
                    if len(piece) > 1:
                        draw.line(piece, fill=colour, width=3, joint="curve")
                if len(pts) < 30:
                    for x, y in part:
                        draw.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=colour)
            finite = [(x, y) for x, y in pts if _finite(x) and _finite(y) and (y > 0 or not logy)]
            if key == primary and finite:
                pick = min if direction == "min" else max
                bx, by = pick(finite, key=lambda p: p[1])
                draw.polygon(_star(px(bx), py(by), s(6.7)), fill="black")
        draw.rectangle((s(left), s(top), s(right), s(bottom)), outline="black", width=2)
        name = f"{fam} (log scale)" if logy else fam
        draw.text((s(left), s(top - 4)), name, fill="black", font=medium, anchor="ld")
        if row == len(present) - 1:
            draw.text(
                (s(left + AXES_W / 2), s(bottom + 20)),
                xlabel,
                fill="black",
                font=tick_font,
                anchor="ma",
            )
        # The legend to the right of the axes, one row per line.
        lx, ly = s(right + 10), s(top + 6)
        for name, colour, style, _key, _pts in lines:
            sample = [(lx, ly), (lx + s(18), ly)]
            pieces = (
                [sample] if style == "-" else _dash(sample, tuple(s(v) for v in _DASHES[style]))
            )
            for piece in pieces:
                draw.line(piece, fill=colour, width=3)
            draw.text((lx + s(24), ly), name, fill="black", font=small, anchor="lm")
            ly += s(12)
        if any(ln[3] == primary for ln in lines):  # the star's meaning, under the lines it marks
            draw.polygon(_star(lx + s(9), ly, s(5)), fill="black")
            draw.text(
                (lx + s(24), ly), f"best {primary}"[:44], fill="black", font=small, anchor="lm"
            )
    draw.text((s(WIDTH / 2), s(20)), title, fill="black", font=large, anchor="mm")
    out = img.reduce(SS)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
