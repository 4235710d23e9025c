"""Training-curve PNGs from metric rows (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

import io

# Bump when the drawing changes, so cached PNGs are redrawn.
PLOT_VERSION = "1"


def curves_png(series: dict[str, list[tuple[float, float]]], title: str) -> bytes:
    """One line per metric key over steps; deterministic bytes for the same data."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=80)
    # Fixed margins: tight_layout costs more than the drawing itself.
    ax = fig.add_axes((0.1, 0.15, 0.86, 0.75))
    for key, points in sorted(series.items()):
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
    from matplotlib.ticker import MaxNLocator

    # Few ticks and a figure-level title: tick and title layout dominate the drawing time.
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel("step")
    fig.text(0.5, 0.95, title, ha="center", fontsize=10)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    # No Software/date metadata: the same data must give the same bytes (incremental builds).
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
