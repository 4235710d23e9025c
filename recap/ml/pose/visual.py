"""Looking at a pose run: overlays (predicted skeleton vs truth on held-out crops) and a per-joint
PCK bar chart. PIL for the overlays; matplotlib, imported here only, for the chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TRUTH = (255, 255, 255)
PRED_LEFT, PRED_RIGHT, PRED_MID = (255, 120, 0), (0, 160, 255), (80, 255, 80)


def _color(name: str):
    return (
        PRED_LEFT
        if name.startswith("left")
        else PRED_RIGHT
        if name.startswith("right")
        else PRED_MID
    )


LEGEND = (
    ("truth", TRUTH, 1),
    ("predicted left", PRED_LEFT, 2),
    ("predicted right", PRED_RIGHT, 2),
    ("predicted centre", PRED_MID, 2),
)


def overlay_grid(files, pred, truth, vis, skeleton, path: Path, zoom: int = 3, cols: int = 4):
    """One tile per crop: truth as thin white limbs, the prediction in colour (left orange, right
    blue), and a legend strip under the tiles saying so. Returns the PNG path."""
    from PIL import Image, ImageDraw, ImageFont

    tiles = []
    for f, p, t, v in zip(files, pred, truth, vis, strict=False):
        img = Image.open(f).convert("RGB")
        img = img.resize((img.width * zoom, img.height * zoom), Image.NEAREST)
        d = ImageDraw.Draw(img)
        for a, b in skeleton.edges:
            if v[a] > 0 and v[b] > 0:
                d.line([tuple(t[a] * zoom), tuple(t[b] * zoom)], fill=TRUTH, width=1)
            d.line(
                [tuple(p[a] * zoom), tuple(p[b] * zoom)], fill=_color(skeleton.names[a]), width=2
            )
        for j, (x, y) in enumerate(p * zoom):
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=_color(skeleton.names[j]))
        tiles.append(img)
    if not tiles:
        return None
    w, h = tiles[0].size
    rows = -(-len(tiles) // cols)
    sheet_w = cols * w
    size = max(10, min(8 * zoom, sheet_w // 40))  # the legend's text: with the tiles, fitting
    font = ImageFont.load_default(size=size)
    lines, x = [[]], size  # the legend's items flowed into lines as wide as the sheet
    for item in LEGEND:
        width = 3 * size + int(font.getlength(item[0]))
        if lines[-1] and x + width > sheet_w - size:
            lines.append([])
            x = size
        lines[-1].append((x, item))
        x += width + 2 * size
    band = 2 * size * len(lines)
    sheet = Image.new("RGB", (sheet_w, rows * h + band), (20, 20, 20))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * w, (i // cols) * h))
    d = ImageDraw.Draw(sheet)
    for n, line in enumerate(lines):
        y = rows * h + 2 * size * n + size
        for x, (label, colour, width) in line:
            d.line([(x, y), (x + 2 * size, y)], fill=colour, width=width * zoom)
            d.text((x + 3 * size, y), label, fill=(230, 230, 230), font=font, anchor="lm")
    path = Path(path)
    sheet.save(path)
    return path


def pck_chart(names, pck05: np.ndarray, pck10: np.ndarray, path: Path, baseline10=None):
    """Horizontal bars of PCK@0.05 and @0.1 per joint (and the mean pose's @0.1 as ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(names) + 1.2))
    ax.barh(y + 0.2, np.nan_to_num(pck10), height=0.4, label="PCK@0.1")
    ax.barh(y - 0.2, np.nan_to_num(pck05), height=0.4, label="PCK@0.05")
    if baseline10 is not None:
        ax.scatter(
            np.nan_to_num(baseline10), y + 0.2, marker="|", s=120, c="k", label="mean pose @0.1"
        )
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of joints within alpha x box size")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
