"""Training-curve PNGs from metric rows (matplotlib, imported only when a plot is drawn).

Each metric family gets its own axis (losses, accuracy-like metrics, throughput), so a loss of 2.0
never flattens an accuracy of 0.9; runs are labelled by what differs between them
(``noise=0.5``), and the best point of the primary metric is marked.
"""

from __future__ import annotations

import io

# Bump when the drawing changes, so cached PNGs are redrawn.
PLOT_VERSION = "3"
FAMILIES = ("losses", "metrics", "throughput")
_STYLES = ("-", "--", ":", "-.")


def family(key: str) -> str:
    k = key.lower()
    if "loss" in k or k.endswith("mse") or k.endswith("_error") or "error_px" in k:
        return "losses"
    if "per_s" in k or "throughput" in k or k.endswith("_time") or k.endswith("_secs"):
        return "throughput"
    return "metrics"


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
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = runs if runs is not None else {"": series}
    present = [f for f in FAMILIES if any(family(k) == f for s in runs.values() for k in s)]
    present = present or ["metrics"]
    n = len(present)
    fig = Figure(figsize=(8, 0.6 + 2.3 * n), dpi=80)
    height = 1 / (0.6 + 2.3 * n)
    colors = [f"C{i}" for i in range(10)]
    keys = sorted({k for s in runs.values() for k in s})
    for row, fam in enumerate(present):
        # Fixed margins: tight_layout costs more than the drawing itself.
        bottom = 1 - (0.45 + 2.3 * (row + 1)) * height
        ax = fig.add_axes((0.08, bottom + 0.45 * height, 0.5, 1.75 * height))
        for ri, (label, s) in enumerate(sorted(runs.items())):
            for key in [k for k in keys if k in s and family(k) == fam]:
                pts = s[key]
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                name = " ".join(x for x in (label, key) if x)
                ax.plot(
                    xs,
                    ys,
                    color=colors[ri % 10] if label else None,
                    linestyle=_STYLES[keys.index(key) % 4] if label else "-",
                    marker="o" if len(xs) < 30 else None,
                    markersize=3,
                    label=name[:44],
                )
                if key == primary and ys:
                    best = (min if direction == "min" else max)(range(len(ys)), key=ys.__getitem__)
                    ax.plot([xs[best]], [ys[best]], marker="*", markersize=12, color="black")
        ax.set_title(fam, fontsize=9, loc="left")
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.grid(True, alpha=0.3)
        if row == n - 1:
            ax.set_xlabel(xlabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.text(0.5, 1 - 0.25 * height, title, ha="center", fontsize=10)
    if primary:
        fig.text(0.99, 0.01, f"* best {primary}", ha="right", fontsize=7)
    buf = io.BytesIO()
    # No Software/date metadata: the same data must give the same bytes (incremental builds).
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
