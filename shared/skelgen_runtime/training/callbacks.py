"""Keras callbacks of the run record."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path
from typing import Any

import keras

from skelgen_runtime.files import atomic_path, atomic_write_text

__all__ = ["EpochCSVLogger", "RunStatus", "BackupAndRestore", "WeightsCheckpoint", "save_weights"]


class EpochCSVLogger(keras.callbacks.Callback):
    """Write one row per epoch to ``metrics.csv``, each epoch exactly once across resumes.

    Unlike ``keras.callbacks.CSVLogger``, a resumed run first drops the rows of epochs it is
    about to redo (a run killed after logging epoch N but before backing it up repeats epoch N),
    and each row is flushed to disk before the backup of its epoch is taken. The ``epoch`` column
    counts from ``base`` (1, as the training output counts; a run that skelgen 0.2 started keeps its 0).
    """

    def __init__(self, path: Path, base: int = 1) -> None:
        super().__init__()
        self.path = Path(path)
        self.base = base
        self._started = False
        self._t0 = 0.0

    def _rows(self) -> tuple[list[str], list[dict[str, str]]]:
        if not self.path.is_file():
            return [], []
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if not self._started:  # first epoch of this process: forget rows that will be redone
            self._started = True
            fields, rows = self._rows()
            kept = [r for r in rows if int(r["epoch"]) - self.base < epoch]
            if len(kept) != len(rows):
                self._write(fields, kept)
        self._t0 = time.time()

    def _write(self, fields: list[str], rows: list[dict[str, str]]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, text.getvalue())

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        row: dict[str, Any] = {"epoch": epoch + self.base, **{k: float(v) for k, v in (logs or {}).items()}}
        row["seconds"] = round(time.time() - self._t0, 3)
        optimizer = getattr(self.model, "optimizer", None)  # None outside model.fit
        if "learning_rate" not in row and optimizer is not None:
            row["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        fields, rows = self._rows()
        fields = fields or list(row)
        for key in row:
            if key not in fields:
                fields.append(key)
        self._write(fields, rows + [{k: row.get(k, "") for k in fields}])


class RunStatus(keras.callbacks.Callback):
    """Keep ``run.json`` current: epochs done, last metrics."""

    def __init__(self, run) -> None:
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.run.update_record(epochs_done=epoch + 1, last_metrics={k: float(v) for k, v in (logs or {}).items()})


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's resume state (``double_checkpoint=True``: the last epoch's and the one before), restored by
    :func:`~skelgen_runtime.training.control.restore_newest_whole`: a damaged latest state is named in a
    warning and the previous one restored (Keras alone falls back silently, and only on ``OSError``); with
    both damaged, the run says so instead of training from scratch."""

    def __init__(self, run, backup_dir: str) -> None:
        super().__init__(backup_dir, save_freq="epoch", double_checkpoint=True)
        self.run = run

    def on_train_begin(self, logs=None) -> None:
        from keras.src.utils import file_utils

        from skelgen_runtime.training.control import restore_newest_whole

        if not file_utils.exists(self._weights_path):
            return  # a new run: nothing to restore
        latest = (self._weights_path, self._training_metadata_path)
        previous = (self._prev_weights_path, self._prev_training_metadata_path)

        def restore(paths: str) -> None:
            weights, metadata = latest if paths == self._weights_path else previous
            if paths != self._weights_path:  # make the previous state the current one, as Keras does
                file_utils.copy(weights, self._weights_path)
                file_utils.copy(metadata, self._training_metadata_path)
            self._load_model()

        states = [self._weights_path] + (
            [self._prev_weights_path] if file_utils.exists(self._prev_weights_path) else []
        )
        restore_newest_whole(self.run, states, restore)


def save_weights(model: keras.Model, path: Path) -> None:
    """``model.save_weights(path)`` written whole (:func:`~skelgen_runtime.files.atomic_path`): Keras writes the
    HDF5 file in place, so a process killed meanwhile would leave a damaged file where a whole one was."""
    with atomic_path(Path(path)) as tmp:
        model.save_weights(tmp)  # write: staged


class WeightsCheckpoint(keras.callbacks.Callback):
    """The weights after every epoch (``monitor`` None) or after each epoch that improved ``monitor``, each
    file written whole (:func:`save_weights`), where ``keras.callbacks.ModelCheckpoint`` writes in place.

    Args:
        path: the ``.weights.h5`` file.
        monitor: the logged value that decides (e.g. ``val_miou``); None: save every epoch.
        mode: ``"max"`` or ``"min"``: which way ``monitor`` improves.
        best: the best value so far (a resumed run's), which a new best must beat.
    """

    def __init__(self, path: Path, *, monitor: str | None = None, mode: str = "max", best: float | None = None):
        super().__init__()
        self.path, self.monitor, self.mode, self.best = Path(path), monitor, mode, best

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            value = float(value)
            if self.best is not None and not (value > self.best if self.mode == "max" else value < self.best):
                return
            self.best = value
        save_weights(self.model, self.path)
