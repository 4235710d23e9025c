"""``style``: image -> image of any size (fast style transfer, few-shot video stylisation).

Two architectures (``arch``): ``transformer`` (Johnson's TransformerNet, 0-255 in and out) and
``patch`` (the few-shot patch-based generator after Texler et al. 2020, [-1, 1] in and out).

The model.json section: one input and one output ``[1, 3, "height", "width"]`` (dynamic height
and width; the Barracuda bundle is fixed at ``fixed_size``, 960 x 540 by default), RGB, NCHW,
``x = pixel * scale + offset`` (0-255: scale 1, offset 0; [-1, 1]: 2/255 and -1), sides a
multiple of ``size_multiple`` (4: two stride-2 stages) reached by reflection padding and cropped
back, the output mapped back with ``(y - offset) / scale``, clamped to 0..255 and rounded.
Parity is measured in those 0-255 units (``pixels``: max abs difference <= 0.5).

Where the shared core's interface does not fit, this task extends it in its own modules
(``recap.ml.style``): it trains with its own loop (a frozen VGG loss network and one style target;
fastai's Learner would add only per-batch overhead), and its pipeline
(``recap.ml.style.experiment.run_style``) adds what only image-to-image models need: a per-target
input shape (Barracuda fixed, the others dynamic), an opset-9 graph tidy for Barracuda, golden
frames stored as PNGs rather than JSON floats (a 960 x 540 frame is 1.5 M values), speed per
backend, temporal stability on a clip and the "palette only" flag.
"""

from __future__ import annotations

from pathlib import Path

from recap.ml.tasks.base import BASE_TOLERANCES, Prepared, Sanity, Task, Trained


class StyleTask(Task):
    name = "style"
    primary = "total_loss"
    direction = "min"
    columns = ()
    # pixels: the family's parity criterion, 0-255 units after post-processing. raw (the core's
    # torch-vs-target check, used by `recap exp export`): half a grey level of a [-1, 1] model
    tolerances = {**BASE_TOLERANCES, "raw": 0.5 / 127.5, "pixels": 0.5}
    archs = ("transformer", "patch")

    # -- data ---------------------------------------------------------------------------------
    def synthetic(self, out: Path, params: dict, seed: int):
        """Procedural content images written as PNGs (train, plus a few held out as test)."""
        import pandas as pd

        from recap.ml.style import data

        size, n = int(params["size"]), int(params["n_images"])
        rows = []
        for i, img in enumerate(data.procedural_content(n, size, seed)):
            f = Path(out) / f"content-{i:05d}.png"
            data.save_rgb(img, f)
            rows.append({"file": str(f), "split": "test" if i < max(1, n // 8) else "train"})
        return pd.DataFrame(rows)

    def prepare(self, table, params: dict) -> Prepared:
        from recap.ml.style.experiment import size_of

        size = int(params.get("size") or 64)
        value_range = params.get("value_range") or (
            "-1-1" if params.get("arch") == "patch" else "0-255"
        )
        return Prepared(
            self.name,
            (size, size),
            info={
                "value_range": value_range,
                "size_multiple": 4,
                "fixed_size": list(size_of(params.get("fixed_size") or "960x540")),
                "perceptual": params.get("perceptual"),
            },
        )

    # -- model --------------------------------------------------------------------------------
    def model(self, arch: str, prep: Prepared, params: dict):
        from recap.ml.style import nets

        if arch == "patch":
            net = nets.PatchNet(params.get("filters") or "32,64,128", int(params["res_blocks"]))
        elif arch == "transformer":
            net = nets.TransformerNet(
                params.get("filters") or "32,64,128",
                int(params["res_blocks"]),
                bool(params.get("skips")),
            )
        else:
            from recap.errors import InvalidInput

            raise InvalidInput(f"style arch {arch!r}: transformer or patch")
        return net, net.config()

    def build(self, record: dict):
        from recap.ml.style import nets

        return nets.build(record)

    def train(self, ctx, table, prep, params, device, precision, seed) -> Trained:
        """Not fastai: the style family trains through its own loop (recap.ml.style.train)."""
        from recap.ml.style.experiment import train_model

        return train_model(ctx, self, table, prep, params, device, seed)

    # -- bundle -------------------------------------------------------------------------------
    def describe(self, prep: Prepared, params: dict, fixed: bool = False) -> dict:
        from recap.ml.style import reference

        info = prep.info
        sec = reference.section(
            info["value_range"],
            int(info["size_multiple"]),
            tuple(info["fixed_size"]) if fixed else None,
        )
        sec.pop("task")
        sec["inputs"], sec["outputs"] = [sec.pop("input")], [sec.pop("output")]
        sec["labels"] = []
        return sec

    def example_inputs(self, prep: Prepared, meta: dict) -> tuple:
        import torch

        shape = meta["inputs"][0]["shape"]
        if all(isinstance(d, int) for d in shape):
            return (torch.zeros(*shape),)
        h, w = prep.size
        return (torch.zeros(1, 3, h, w + 32),)  # not square: a wrong H/W swap would show

    # -- numpy reference ----------------------------------------------------------------------
    def load_input(self, path, meta: dict):
        import numpy as np

        from recap.ml.style import data

        pixels = data.load_rgb(Path(path))
        fixed = meta["preprocess"].get("fixed_size")
        if fixed and pixels.shape[1::-1] != tuple(fixed):
            from PIL import Image

            pixels = np.asarray(Image.fromarray(pixels).resize(tuple(fixed), Image.BILINEAR))
        return pixels

    def preprocess(self, pixels, meta: dict) -> dict:
        from recap.ml.style import reference

        padded, _ = reference.pad_to_multiple(pixels, int(meta["preprocess"]["size_multiple"]))
        return {meta["inputs"][0]["name"]: reference.preprocess(padded, meta)}

    def postprocess(self, outputs: list, meta: dict) -> dict:
        import numpy as np

        from recap.ml.style import reference

        pixels = reference.postprocess_float(outputs[0], meta)
        return {"pixels": pixels, "image": np.rint(pixels).astype(np.uint8)}

    def compare(self, ref: dict, framework: dict, meta: dict):
        import numpy as np

        d = float(np.abs(ref["pixels"] - framework["pixels"]).max())
        return d <= self.tolerances["pixels"], {"pixels": d}

    # -- sanity and summary -------------------------------------------------------------------
    def sanity(self, trained: Trained, prep, table, params) -> Sanity:
        """Flag "palette only" from the loss curves (transformer runs), and flicker that grew
        with training from the test clip measured while training (both archs)."""
        from recap.ml.style import temporal

        curves = trained.state.get("curves", {})
        out = Sanity()
        if curves.get("style_loss"):
            rule = temporal.palette_only(curves["style_loss"], curves["content_loss"])
            out.summary["palette_only"] = int(rule["flag"])
            out.report["palette_only"] = rule
            if rule["flag"]:
                out.flags["palette_only"] = rule["rule"]
        probes = curves.get("probe") or []
        if probes:
            steps = [q["step"] for q in probes]
            rule = temporal.flicker_grows(steps, [q.get("warp_error_rel") for q in probes])
            out.summary["flicker_grows"] = int(rule["flag"])
            out.report["flicker_during_training"] = {"probes": probes, **rule}
            if rule["flag"]:
                out.flags["flicker_grows"] = rule["rule"]
        return out

    def summary(self, trained: Trained, prep, params) -> dict:
        return {k: v for k, v in trained.metrics.items() if v is not None}


PLUGINS = (StyleTask(),)
