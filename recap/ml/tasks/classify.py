"""``classify``: one label per image (softmax over the labels, in vocab order)."""

from __future__ import annotations

from recap.ml.tasks._image import FastaiImageTask
from recap.ml.tasks.base import BASE_TOLERANCES, Prepared


def softmax(raw):
    import numpy as np

    raw = raw.astype(np.float32)
    e = np.exp(raw - raw.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(raw):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-raw.astype(np.float32)))


class LabelTask(FastaiImageTask):
    """Shared by classify and multilabel: labels in vocab order, a small CNN with one vector out."""

    tolerances = {**BASE_TOLERANCES, "prob": 1e-4}
    direction = "max"

    def n_out(self, prep):
        return len(prep.labels)

    def small(self, prep, params):
        return {
            "name": "small_cnn",
            "n_out": self.n_out(prep),
            "width": int(params["width"]),
            "depth": int(params["depth"]),
        }


class ClassifyTask(LabelTask):
    name = "classify"
    primary = "accuracy"
    columns = ("label",)

    def synthetic(self, out, params, seed):
        from recap.ml import data

        return data.make_shapes(out, int(params["n_images"]), int(params["size"]), seed)

    def prepare(self, table, params):
        prep = self.prepare_image(table, params)
        prep.labels = sorted(set(table["label"]))
        return prep

    def targets(self, rows, prep):
        import torch

        index = {lab: i for i, lab in enumerate(prep.labels)}
        return torch.tensor([index[lab] for lab in rows["label"]], dtype=torch.long)

    def y_block(self, prep, params):
        from fastai.data.block import CategoryBlock
        from fastai.data.transforms import ColReader

        return CategoryBlock(vocab=prep.labels), ColReader("label")

    def loss(self, prep, params):
        from recap.ml.train import CrossEntropyFlat

        return CrossEntropyFlat()

    def metrics(self, prep, params):
        from fastai.metrics import accuracy

        return [accuracy]

    def describe(self, prep: Prepared, params: dict) -> dict:
        return {
            "inputs": [self.image_input(prep)],
            "outputs": [self.vector_output(prep, "softmax", range="logits")],
            "preprocess": self.image_preprocess(prep),
            "postprocess": {
                "activation": "softmax",
                "decode": "label = labels[argmax(probabilities)]",
            },
            "labels": list(prep.labels),
            "threshold": None,
            "keypoints": None,
        }

    def postprocess(self, outputs, meta):
        import numpy as np

        probs = softmax(np.asarray(outputs[0]).reshape(-1))
        i = int(probs.argmax())
        return {"label": meta["labels"][i], "index": i, "probabilities": probs}

    def decode_fastai(self, pred, prep):
        decoded, _, probs = pred
        return {"label": str(decoded), "probabilities": probs.float().numpy()}

    def compare(self, ref, framework, meta):
        import numpy as np

        d = float(np.abs(ref["probabilities"] - framework["probabilities"]).max())
        return ref["label"] == framework["label"], {"prob": d}


PLUGINS = (ClassifyTask(),)
