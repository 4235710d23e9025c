"""Shared parts of the image-input tasks that train with fastai (classify, multilabel, keypoint).

Not a task itself (the leading underscore keeps it out of the registry).
"""

from __future__ import annotations

from recap.ml.tasks.base import FrameworkPrediction, ImageTask, Prepared, Trained


class FastaiImageTask(ImageTask):
    """Image in, a vector out: in-memory batches for training, fastai's DataBlock for parity.

    Subclasses give :meth:`targets` (the training targets as fastai's blocks encode them),
    :meth:`y_block` (the DataBlock's target block and getter), :meth:`n_out`, :meth:`small`
    (the record of the task's own small CNN) and :meth:`decode_fastai` (``learn.predict``'s
    result in :meth:`postprocess`'s form).
    """

    #: fastai ``y_range`` of the head (None: raw outputs)
    y_range = None

    # -- data ---------------------------------------------------------------------------------
    def prepare_image(self, table, params: dict, **info) -> Prepared:
        from recap.ml import models, train

        size = int(params["size"])
        if params.get("pretrained") and str(params.get("arch", "small")) != "small":
            # pretrained weights expect the statistics they were trained with
            mean, std = models.IMAGENET_STATS
        else:
            mean, std = train.channel_stats(table[table["split"] == "train"]["file"], size)
        return Prepared(self.name, (size, size), list(mean), list(std), info=info)

    def targets(self, rows, prep: Prepared):
        raise NotImplementedError

    def y_block(self, prep: Prepared, params: dict):
        raise NotImplementedError

    def dataloaders(self, table, prep, params, device, seed):
        from recap.ml import train

        splits = {}
        for split in ("train", "valid"):
            rows = table[table["split"] == split]
            splits[split] = (train.decode_images(rows["file"], prep.size), self.targets(rows, prep))
        return train.tensor_dls(
            splits, prep.mean, prep.std, int(params["batch_size"]), device, seed=seed
        )

    def fastai_dls(self, table, prep: Prepared, params: dict, device: str = "cpu"):
        """fastai's own pipeline from files (files -> PIL -> Resize -> Normalize): what
        ``learn.predict`` uses, and what a port must match."""
        import torch
        from fastai.data.block import DataBlock
        from fastai.data.transforms import ColReader, IndexSplitter, Normalize
        from fastai.vision.augment import Resize
        from fastai.vision.data import ImageBlock

        rows = table[table["split"] != "test"].reset_index(drop=True)
        valid_idx = rows.index[rows["split"] == "valid"].tolist()
        y_block, get_y = self.y_block(prep, params)
        block = DataBlock(
            blocks=(ImageBlock, y_block),
            get_x=ColReader("file"),
            get_y=get_y,
            splitter=IndexSplitter(valid_idx),
            item_tfms=Resize(prep.size[0], method="squish"),
            batch_tfms=Normalize.from_stats(prep.mean, prep.std),
        )
        return block.dataloaders(
            rows, bs=int(params.get("batch_size") or 64), num_workers=0, device=torch.device(device)
        )

    # -- model --------------------------------------------------------------------------------
    def n_out(self, prep: Prepared) -> int:
        raise NotImplementedError

    def small(self, prep: Prepared, params: dict) -> dict:
        raise NotImplementedError

    def model(self, arch, prep, params):
        from recap.ml import models

        if arch == "small":
            record = self.small(prep, params)
        else:
            record = models.vision_record(
                arch,
                self.n_out(prep),
                y_range=self.y_range,
                pretrained=bool(params.get("pretrained", False)),
                weights=params.get("weights") or None,
            )
        return models.build(record, load_pretrained=True), record

    # -- parity -------------------------------------------------------------------------------
    def decode_fastai(self, pred, prep: Prepared) -> dict:
        raise NotImplementedError

    def framework_predict(self, trained: Trained, prep, table, files):
        learn = trained.learner
        if learn is None:
            return None
        params = trained.state.get("params", {})
        learn.dls = self.fastai_dls(table, prep, params, "cpu")
        trained.state["fastai_dls"] = learn.dls
        dl = learn.dls.test_dl(files, num_workers=0, bs=len(files))
        inputs = dl.one_batch()[0].float().cpu().numpy()
        results = [self.decode_fastai(learn.predict(f), prep) for f in files]
        return FrameworkPrediction(results, inputs)

    def train(self, ctx, table, prep, params, device, precision, seed):
        trained = super().train(ctx, table, prep, params, device, precision, seed)
        trained.state["params"] = params
        return trained

    # -- bundle -------------------------------------------------------------------------------
    def vector_output(self, prep: Prepared, activation: str, **extra) -> dict:
        return {
            "name": "output",
            "shape": ["batch", self.n_out(prep)],
            "dtype": "float32",
            "activation": activation,
            **extra,
        }
