"""``keypoint``: a few points per image, regressed as (x, y) in [-1, 1] (fastai's PointScaler).

Sanity: the model must beat "always predict the training mean" (``recap.ml.sanity``).
"""

from __future__ import annotations

from recap.ml.tasks._image import FastaiImageTask
from recap.ml.tasks.base import BASE_TOLERANCES, Prepared, Sanity

Y_RANGE = (-1.1, 1.1)


def _get_points(row):
    import torch

    from recap.ml.data import points_of

    return torch.tensor(points_of(row["points"]))


class KeypointTask(FastaiImageTask):
    name = "keypoint"
    primary = "keypoint_error_px"
    direction = "min"
    columns = ("points",)
    tolerances = {**BASE_TOLERANCES, "px": 0.5}
    y_range = Y_RANGE

    def synthetic(self, out, params, seed):
        from recap.ml import data

        return data.make_markers(
            out,
            int(params["n_images"]),
            int(params["size"]),
            seed,
            n_points=int(params.get("n_points", 1)),
            moving=params.get("marker", "moving") != "fixed",
        )

    def prepare(self, table, params):
        from recap.ml.data import points_of

        return self.prepare_image(table, params, n_points=len(points_of(table["points"].iloc[0])))

    def targets(self, rows, prep):
        import numpy as np
        import torch
        from PIL import Image

        from recap.ml.data import points_of

        # Scaled by each stored image's own size, as fastai's PointScaler does: a squish resize
        # is linear, so [-1, 1] coordinates are the same before and after it.
        sizes = []
        for f in rows["file"]:
            with Image.open(f) as img:
                sizes.append(img.size)
        pts = np.stack([points_of(s) for s in rows["points"]])
        wh = np.asarray(sizes, dtype=np.float32)[:, None, :]
        return torch.from_numpy(pts * 2 / wh - 1).float()

    def y_block(self, prep, params):
        from fastai.vision.data import PointBlock

        return PointBlock, _get_points

    def n_out(self, prep):
        return 2 * prep.info["n_points"]

    def small(self, prep, params):
        return {
            "name": "keypoint_cnn",
            "n_out": self.n_out(prep),
            "width": int(params["width"]),
            "depth": int(params["depth"]),
            "size": prep.size[0],
            "y_range": list(Y_RANGE),
        }

    def loss(self, prep, params):
        from recap.ml.train import MSEFlat

        return MSEFlat()

    def metrics(self, prep, params):
        half = prep.size[0] / 2

        def px_error(pred, targ):
            d = (pred.view(-1, 2) - targ.view(-1, 2)) * half
            return d.float().norm(dim=-1).mean()

        return [px_error]

    def describe(self, prep: Prepared, params: dict) -> dict:
        h, w = prep.size
        return {
            "inputs": [self.image_input(prep)],
            "outputs": [self.vector_output(prep, "none", range=list(Y_RANGE))],
            "preprocess": self.image_preprocess(prep),
            "postprocess": {
                "activation": "none",
                "decode": "pixel = (output + 1) * image_size / 2",
            },
            "labels": [],
            "threshold": None,
            "keypoints": {
                "count": prep.info["n_points"],
                "order": "xy",
                "layout": "x0 y0 x1 y1 ...",
                "image_size": [w, h],
                "scaling": "pixel = (output + 1) * image_size / 2 (fastai PointScaler)",
                "to_original": "x * W / image_size[0], y * H / image_size[1] (squish resize)",
            },
        }

    def postprocess(self, outputs, meta):
        import numpy as np

        w, h = meta["keypoints"]["image_size"]
        pts = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 2)
        return {"points": (pts + 1.0) * np.asarray([w, h], np.float32) / 2.0}

    def decode_fastai(self, pred, prep):
        import numpy as np

        decoded = pred[0]
        return {"points": np.asarray(decoded, dtype=np.float32).reshape(-1, 2)}

    def compare(self, ref, framework, meta):
        import numpy as np

        d = float(np.linalg.norm(ref["points"] - framework["points"], axis=-1).max())
        return d <= self.tolerances["px"], {"px": d}

    def sanity(self, trained, prep, table, params):
        from recap.ml import sanity

        learn = trained.learner
        dls = trained.state.get("fastai_dls") or self.fastai_dls(table, prep, params, "cpu")
        preds, targs = learn.get_preds(dl=dls.valid)
        half = prep.size[0] / 2
        pred_px = (preds.float().numpy().reshape(len(preds), -1, 2) + 1) * half
        true_px = (targs.float().numpy().reshape(len(targs), -1, 2) + 1) * half
        train_pts = self.targets(table[table["split"] == "train"], prep).numpy()
        result = sanity.compare(pred_px, true_px, (train_pts.mean(0) + 1) * half)
        summary = {k: v for k, v in result.items() if k != "factor"}
        summary["keypoint_sane"] = int(result["keypoint_sane"])
        flags = {} if result["keypoint_sane"] else {"keypoint_sanity": sanity.message(result)}
        return Sanity(summary, flags, {"keypoint": result})

    def summary(self, trained, prep, params):
        return {}  # the primary metric comes from sanity (the same held-out figure)


PLUGINS = (KeypointTask(),)
