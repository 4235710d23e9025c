"""``multilabel``: any number of labels per image (a sigmoid per label, then a threshold)."""

from __future__ import annotations

from recap.ml.tasks.base import Prepared
from recap.ml.tasks.classify import LabelTask, sigmoid


class MultilabelTask(LabelTask):
    name = "multilabel"
    primary = "accuracy_multi"
    columns = ("labels",)

    def synthetic(self, out, params, seed):
        from recap.ml import data

        n, size = int(params["n_images"]), int(params["size"])
        return data.make_shapes(out, n, size, seed, multi=True)

    def prepare(self, table, params):
        prep = self.prepare_image(table, params, threshold=float(params.get("threshold", 0.5)))
        prep.labels = sorted({lab for ls in table["labels"] for lab in ls.split()})
        return prep

    def targets(self, rows, prep):
        import torch

        index = {lab: i for i, lab in enumerate(prep.labels)}
        y = torch.zeros(len(rows), len(prep.labels))
        for r, labels in enumerate(rows["labels"]):
            for lab in labels.split():
                y[r, index[lab]] = 1.0
        return y

    def y_block(self, prep, params):
        from fastai.data.block import MultiCategoryBlock
        from fastai.data.transforms import ColReader

        return MultiCategoryBlock(vocab=prep.labels), ColReader("labels", label_delim=" ")

    def loss(self, prep, params):
        from recap.ml.train import BCEWithLogitsFlat

        return BCEWithLogitsFlat(thresh=prep.info["threshold"])

    def metrics(self, prep, params):
        from fastai.metrics import accuracy_multi

        from recap.ml.train import named

        thresh = prep.info["threshold"]
        return [named(lambda p, t: accuracy_multi(p, t, thresh=thresh), "accuracy_multi")]

    def describe(self, prep: Prepared, params: dict) -> dict:
        thresh = prep.info["threshold"]
        return {
            "inputs": [self.image_input(prep)],
            "outputs": [self.vector_output(prep, "sigmoid", range="logits")],
            "preprocess": self.image_preprocess(prep),
            "postprocess": {
                "activation": "sigmoid",
                "decode": "labels = [labels[i] for i if probabilities[i] > threshold]",
            },
            "labels": list(prep.labels),
            "threshold": thresh,
            "keypoints": None,
        }

    def postprocess(self, outputs, meta):
        import numpy as np

        probs = sigmoid(np.asarray(outputs[0]).reshape(-1))
        thresh = meta["threshold"]
        labels = [lab for lab, p in zip(meta["labels"], probs, strict=True) if p > thresh]
        return {"labels": labels, "probabilities": probs}

    def decode_fastai(self, pred, prep):
        decoded, _, probs = pred
        return {"labels": sorted(map(str, decoded)), "probabilities": probs.float().numpy()}

    def compare(self, ref, framework, meta):
        import numpy as np

        d = float(np.abs(ref["probabilities"] - framework["probabilities"]).max())
        return sorted(ref["labels"]) == framework["labels"], {"prob": d}


PLUGINS = (MultilabelTask(),)
