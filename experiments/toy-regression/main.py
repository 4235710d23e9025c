"""Fit a line to seeded noisy points with full-batch gradient descent (pure Python)."""

import json
import random


def make_points(n, slope, intercept, noise, rng):
    xs = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    return [(x, slope * x + intercept + rng.gauss(0.0, noise)) for x in xs]


def mse(points, a, b):
    return sum((a * x + b - y) ** 2 for x, y in points) / len(points)


def run(ctx):
    p = ctx.params
    rng = random.Random(ctx.seed)
    points = make_points(p["n_points"], p["slope"], p["intercept"], p["noise"], rng)
    n_val = max(1, len(points) // 5)
    val, train = points[:n_val], points[n_val:]
    a, b = (rng.uniform(-1, 1), rng.uniform(-1, 1)) if p["init"] == "random" else (0.0, 0.0)
    for epoch in range(p["epochs"]):
        # Gradients of the mean squared error with respect to slope a and intercept b.
        ga = sum(2 * (a * x + b - y) * x for x, y in train) / len(train)
        gb = sum(2 * (a * x + b - y) for x, y in train) / len(train)
        a, b = a - p["lr"] * ga, b - p["lr"] * gb
        losses = {"train_mse": mse(train, a, b), "val_mse": mse(val, a, b)}
        ctx.log_metrics(losses, step=epoch, epoch=epoch)
        ctx.progress(epoch + 1, p["epochs"], **losses)  # "epoch N/M ... ETA" in run.log
    result = {"slope": a, "intercept": b, "train_mse": mse(train, a, b), "val_mse": mse(val, a, b)}
    with open(ctx.path("fit.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    ctx.save_artifact("fit.json", kind="result")
    for key, value in result.items():
        ctx.set_summary(key, value)
    if abs(a - p["slope"]) > 0.5:
        ctx.flag("slope_off", f"fitted slope {a:.3f} is far from the true {p['slope']}")
    print(f"slope {a:.4f} intercept {b:.4f} val_mse {result['val_mse']:.6f}")
