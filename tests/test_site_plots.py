"""The site's training-curve PNGs (Pillow): layout, determinism, the best point, bad values."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pytest
from PIL import Image

from recap.site import plots
from recap.site.plots import curves_png, nice_ticks, tick_label

LOSS = {"": {"loss": [(s, 1.0 / (s + 1)) for s in range(20)]}}


def image(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def dark(px) -> bool:
    return max(px) < 60


def test_one_axis_per_family_and_same_bytes_for_same_data():
    one = curves_png({}, "run r-1", LOSS, "loss", "min", "step")
    assert image(one).size == (plots.WIDTH, plots.TOP + plots.ROW)
    runs = {
        "lr=0.1": {"loss": [(0, 2.0), (1, 1.0)], "accuracy": [(0, 0.5), (1, 0.7)]},
        "lr=0.01": {"loss": [(0, 2.5), (1, 1.5)], "images_per_s": [(0, 100.0), (1, 110.0)]},
    }
    three = curves_png({}, "training curves", runs, "accuracy", "max", "epoch")
    assert image(three).size == (plots.WIDTH, plots.TOP + 3 * plots.ROW)
    # Incremental builds rely on it: the same data gives the same bytes, other data others.
    assert curves_png({}, "run r-1", LOSS, "loss", "min", "step") == one
    other = {"": {"loss": [(s, 1.0 / (s + 2)) for s in range(20)]}}
    assert curves_png({}, "run r-1", other, "loss", "min", "step") != one


def test_runs_get_their_own_colours_in_lines_and_legend():
    runs = {
        "a": {"loss": [(s, 1.0 / (s + 1)) for s in range(10)]},
        "b": {"loss": [(s, 2.0 / (s + 1)) for s in range(10)]},
    }
    img = image(curves_png({}, "training curves", runs, "loss", "min", "step"))
    colours = {Image.new("RGB", (1, 1), c).getpixel((0, 0)) for c in plots.COLORS[:2]}
    inside = {
        img.getpixel((x, y))
        for x in range(plots.LEFT, plots.LEFT + plots.AXES_W)
        for y in range(plots.AXES_TOP, plots.AXES_TOP + plots.AXES_H)
    }
    legend = {
        img.getpixel((x, y))
        for x in range(plots.LEFT + plots.AXES_W + 5, plots.WIDTH)
        for y in range(plots.AXES_TOP, plots.AXES_TOP + 40)
    }
    for c in colours:
        assert c in inside and c in legend


@pytest.mark.parametrize("direction", ["min", "max"])
def test_the_best_point_is_starred(direction):
    img = image(curves_png({}, "run r-1", LOSS, "loss", direction, "step"))
    # x from -0.95 to 19.95 and y over the data with 5% margins: the star's centre in pixels.
    lo, hi = 1 / 20, 1.0
    pad = (hi - lo) * 0.05

    def at(x, y):
        px = plots.LEFT + (x + 0.95) / 20.9 * plots.AXES_W
        py = plots.AXES_TOP + plots.AXES_H - (y - lo + pad) / (hi - lo + 2 * pad) * plots.AXES_H
        return round(px), round(py)

    best, worst = (at(19, lo), at(0, hi)) if direction == "min" else (at(0, hi), at(19, lo))
    assert dark(img.getpixel(best))
    assert not dark(img.getpixel(worst))  # the line's colour and a dot, not the black star
    # the star is explained in the legend, under the line it marks (not in a far corner)
    lx = plots.LEFT + plots.AXES_W + 10
    star_row = plots.AXES_TOP + 6 + 12
    assert dark(img.getpixel((lx + 9, star_row)))
    w, h = img.size
    corner = [img.getpixel((x, y)) for x in range(w - 160, w) for y in range(h - 14, h)]
    assert not any(dark(px) for px in corner)


def test_values_that_are_not_numbers_are_left_out():
    pts = [(0, 1.0), (1, math.nan), (2, math.inf), (3, 0.5), (4, -math.inf), (5, 0.25)]
    data = curves_png({}, "t", {"": {"loss": pts}}, "loss", "min", "step")
    clean = curves_png({}, "t", {"": {"loss": [(0, 1.0), (3, 0.5), (5, 0.25)]}}, "loss")
    assert image(data).size == image(clean).size
    # Only NaNs or a single value: still a picture, no error.
    image(curves_png({}, "t", {"": {"loss": [(0, math.nan)]}}, "loss"))
    image(curves_png({}, "t", {"": {"acc": [(0, 0.5)]}}, "acc", "max"))
    image(curves_png({}, "t", {"": {}}, ""))


def test_nice_ticks_and_their_labels():
    step, ticks = nice_ticks(0.0, 1.0, 4)
    assert step == 0.25 and ticks == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [tick_label(t, step) for t in ticks] == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    step, ticks = nice_ticks(-0.05, 1.05, 4)  # at most 4 intervals
    assert step == 0.5 and ticks == [0.0, 0.5, 1.0]
    step, ticks = nice_ticks(-0.95, 19.95, 5, integer=True)
    assert step == 5 and ticks == [0, 5, 10, 15]
    step, ticks = nice_ticks(0.2, 0.8, 4, integer=True)
    assert step == 1 and ticks == []
    assert tick_label(120.0, 10.0) == "120" and tick_label(2e-5, 1e-5) == "2e-05"
    assert tick_label(-1e-17, 0.5) == "0.0" and tick_label(-0.5, 0.5) == "-0.5"
    assert tick_label(3e6, 1e6) == "3e+06" and tick_label(1e-20, 1e-5) == "0"


def test_drawing_site_plots_does_not_import_matplotlib(tmp_path):
    code = (
        "import sys\n"
        "from recap.site.plots import curves_png\n"
        "data = curves_png({}, 't', {'': {'loss': [(0, 1.0), (1, 0.5)]}}, 'loss')\n"
        "assert data[:4] == b'\\x89PNG'\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "False"


def test_losses_spanning_decades_are_drawn_on_a_log_axis():
    """1000, 100, 10: on a log axis the middle point sits half way up; on a linear one it would
    lie near the bottom. Non-positive values (a loss switched off) are left out there."""
    from recap.site.plots import log_scale, log_tick_label, log_ticks

    data = {"": {"loss": [(0, 1000.0), (1, 100.0), (2, 10.0)], "tv_loss": [(0, 0.0), (2, 0.0)]}}
    img = image(curves_png({}, "run r-1", data, "loss", "min", "step"))
    middle = (plots.LEFT + plots.AXES_W // 2, plots.AXES_TOP + plots.AXES_H // 2)
    blue = Image.new("RGB", (1, 1), plots.COLORS[0]).getpixel((0, 0))
    near = [
        img.getpixel((middle[0] + dx, middle[1] + dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1)
    ]
    assert blue in near
    linear = {"": {"loss": [(0, 3.0), (1, 2.0), (2, 1.0)]}}
    assert not log_scale([3.0, 2.0, 1.0]) and log_scale([0.0, 1000.0, 10.0])
    assert image(curves_png({}, "r", linear, "loss")).size == img.size
    assert [log_tick_label(t) for t in log_ticks(2.78, 4.55)] == [
        "1000", "2000", "5000", "1e+04", "2e+04",
    ]  # fmt: skip
    assert [log_tick_label(t) for t in log_ticks(-3.2, 1.5)] == ["1e-03", "0.01", "0.1", "1", "10"]
