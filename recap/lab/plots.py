"""Metric curves of a run as a PNG (matplotlib, imported only here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from recap.errors import MissingExtra


def curve_png(conn: sqlite3.Connection, run_id: str, path) -> Path | None:
    """Write one panel per metric key (value against step, else epoch, else order) to ``path``.

    Returns the path, or None when the run logged no metrics.
    """
    rows = conn.execute(
        "SELECT key, step, epoch, value FROM metric WHERE run_id = ? ORDER BY key, id", (run_id,)
    ).fetchall()
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtra("site", "matplotlib") from exc
    series: dict[str, tuple[list, list]] = {}
    for i, r in enumerate(rows):
        xs, ys = series.setdefault(r["key"], ([], []))
        xs.append(
            r["step"] if r["step"] is not None else r["epoch"] if r["epoch"] is not None else i
        )
        ys.append(r["value"])
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(6, 2.4 * n), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes[:, 0], sorted(series.items()), strict=True):
        ax.plot(xs, ys, linewidth=1.2)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ys and min(ys) > 0 and max(ys) / max(min(ys), 1e-300) > 100:
            ax.set_yscale("log")  # losses spanning decades read better on a log axis
    fig.suptitle(f"run {run_id}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
