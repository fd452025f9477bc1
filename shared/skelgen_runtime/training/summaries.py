"""The TensorBoard record of a run: one TensorBoard run per training, written into ``logs/RUN/``.

``tensorboard --logdir logs`` then shows one run per training, named by its run id, with:

- scalars ``NAME/train`` and ``NAME/validation`` per epoch for every logged value (``loss/train``,
  ``miou/validation``, ...) and ``learning_rate``; ``evaluate.py`` adds ``eval/SPLIT/NAME``;
- images ``validation/predictions``: the task binding's ``preview`` of a fixed validation batch, every
  few epochs (:func:`preview_epochs`) and after the last one;
- the HParams dashboard's session: the flattened config (``data.image_size``, ``train.learning_rate``,
  ...) as hyperparameters; its metrics are the scalars above, so TensorBoard's own table compares runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.run_summary import flatten as dotted

__all__ = ["flatten", "preview_epochs", "Preview", "RunSummaries", "SummaryCallback", "record_evaluation"]


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as ``{"train.learning_rate": 0.001, ...}`` (:func:`skelgen_runtime.run_summary.flatten`),
    with lists and None as strings: the value types TensorBoard's HParams take."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in dotted(values, prefix).items()}


def preview_epochs(epochs: int, pictures: int = 10) -> set[int]:
    """The epochs (0-based) after which predictions are pictured: about ``pictures`` of them, the last included."""
    every = max(1, epochs // pictures)
    return {e for e in range(epochs) if (e + 1) % every == 0} | {epochs - 1}


class Preview:
    """Pictures of a model's predictions on a fixed validation batch (the task binding's ``preview``)."""

    def __init__(self, render: Callable, dataset: tf.data.Dataset, config, info, count: int = 4) -> None:
        inputs, targets = next(iter(dataset.take(1)))
        self.inputs, self.targets = inputs[:count], targets[:count]
        self.render, self.config, self.info = render, config, info
        self.failed = False

    def __call__(self, model: keras.Model) -> np.ndarray | None:
        if self.failed:
            return None
        try:
            return np.asarray(self.render(model, self.inputs, self.targets, self.config, self.info), np.uint8)
        except Exception as err:  # a picture is never worth a training run
            self.failed = True
            print(f"warning: no prediction pictures in TensorBoard ({type(err).__name__}: {err})", file=sys.stderr)
            return None


class RunSummaries:
    """Writes a run's TensorBoard events into its log folder."""

    def __init__(self, log_dir, run_id: str) -> None:
        self.writer = tf.summary.create_file_writer(str(log_dir))
        self.run_id = run_id

    def hparams(self, values: Mapping[str, Any]) -> None:
        """Record the run's hyperparameters (the HParams dashboard's session)."""
        from tensorboard.plugins.hparams import api as hp

        with self.writer.as_default():
            hp.hparams(dict(values), trial_id=self.run_id)
        self.writer.flush()

    def epoch(self, epoch: int, logs: Mapping[str, float]) -> None:
        """One epoch's values: ``val_X`` as ``X/validation``, ``learning_rate`` as is, the rest as ``X/train``."""
        with self.writer.as_default(step=epoch):
            for key, value in logs.items():
                if key == "learning_rate":
                    tag = key
                elif key.startswith("val_"):
                    tag = f"{key[4:]}/validation"
                else:
                    tag = f"{key}/train"
                tf.summary.scalar(tag, float(value))
        self.writer.flush()

    def scalars(self, values: Mapping[str, float], *, prefix: str, step: int = 0) -> None:
        """Arbitrary scalars under ``prefix/`` (evaluation results)."""
        with self.writer.as_default(step=step):
            for key, value in values.items():
                tf.summary.scalar(f"{prefix}/{key}", float(value))
        self.writer.flush()

    def images(self, tag: str, images: np.ndarray, step: int) -> None:
        with self.writer.as_default(step=step):
            tf.summary.image(tag, images, max_outputs=len(images))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class SummaryCallback(keras.callbacks.Callback):
    """:class:`RunSummaries` for ``model.fit``: hyperparameters at the start, scalars and pictures per epoch."""

    def __init__(
        self,
        summaries: RunSummaries,
        *,
        epochs: int,
        hparams: Mapping[str, Any] | None = None,
        preview: Preview | None = None,
    ) -> None:
        super().__init__()
        self.summaries, self.hparams, self.preview = summaries, hparams, preview
        self.pictured = preview_epochs(epochs)

    def on_train_begin(self, logs=None) -> None:
        if self.hparams:
            self.summaries.hparams(self.hparams)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = dict(logs or {})
        if "learning_rate" not in logs and getattr(self.model, "optimizer", None) is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.summaries.epoch(epoch, logs)
        if self.preview is not None and epoch in self.pictured:
            images = self.preview(self.model)
            if images is not None:
                self.summaries.images("validation/predictions", images, epoch)


def record_evaluation(run, split: str, result: Mapping[str, Any], pictures: list | tuple = ()) -> None:
    """Add an evaluation to the run's TensorBoard record: its numbers as ``eval/SPLIT/NAME`` scalars (the
    HParams dashboard shows them beside the config) and its PNG pictures (e.g. the confusion matrix)."""
    from PIL import Image

    numbers = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    step = int(run.record().get("epochs_done", 0))
    summaries = RunSummaries(run.log_dir, run.run_id)
    summaries.scalars(numbers, prefix=f"eval/{split}", step=step)
    for path in pictures:
        if str(path).endswith(".png"):
            image = np.asarray(Image.open(path).convert("RGB"))[None]
            summaries.images(f"eval/{split}/{Path(path).stem}", image, step)
    summaries.close()
