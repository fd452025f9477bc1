"""Keras callbacks of the run record."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import keras

from skelgen_runtime.files import (
    atomic_path,
    atomic_write_text,
    discard_dir,
    publish_dir,
    remove_leftovers,
    temporary_name,
)

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
    """Keras's resume state, each one written whole: a folder ``epoch-NNNN`` (the weights with the optimizer's
    slots, and ``training_metadata.json``) staged under a temporary name and renamed into place; the newest
    two are kept. Keras writes its state files in place and deletes the folder file by file at the end, so a
    kill there could leave weights without their epoch or a half-deleted state that no rerun reads.

    On resume, :func:`~skelgen_runtime.training.control.restore_newest_whole` restores the newest state that
    reads whole (a damaged one is named in a warning and the one before it restored; Keras alone falls back
    silently, and only on ``OSError``); with every state damaged, the run says so instead of training from
    scratch. A run that an earlier skelgen started (Keras's own ``latest.weights.h5`` files) resumes too.
    When the training ends, the states go as one step (:func:`~skelgen_runtime.files.discard_dir`).
    """

    KEEP = 2

    def __init__(self, run, backup_dir: str) -> None:
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)
        self.run, self.folder = run, Path(backup_dir)

    def states(self) -> list[Path]:
        """The whole states kept, newest first (Keras's own files of an earlier skelgen's run last)."""
        kept = sorted(self.folder.glob("epoch-[0-9]*"), reverse=True) if self.folder.is_dir() else []
        legacy = [Path(p) for p in (self._weights_path, self._prev_weights_path) if Path(p).is_file()]
        return [p for p in kept if p.is_dir()] + legacy

    def on_train_begin(self, logs=None) -> None:
        from skelgen_runtime.training.control import restore_newest_whole

        if self.folder.is_dir():
            remove_leftovers(self.folder)  # a state that a kill left half-staged
        states = self.states()
        if states:
            restore_newest_whole(self.run, [str(p) for p in states], lambda state: self._restore(Path(state)))

    def _restore(self, state: Path) -> None:
        if state.is_dir():
            weights, metadata = state / "model.weights.h5", state / "training_metadata.json"
        else:  # Keras's layout: latest.weights.h5 with training_metadata.json, or both with .bkp
            bkp = state.name.endswith(".bkp")
            weights = state
            metadata = Path(self._prev_training_metadata_path if bkp else self._training_metadata_path)
        epoch = int(json.loads(metadata.read_text())["epoch"])  # a missing or cut file: a damaged state
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its slots exist before they are loaded
        self.model.load_weights(str(weights))
        self.model._initial_epoch = epoch

    def _save_model(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = self.folder / f"epoch-{self._current_epoch:04d}"
        staging = temporary_name(state)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()  # write: staged
        self.model.save_weights(str(staging / "model.weights.h5"))  # write: staged
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        (staging / "training_metadata.json").write_text(json.dumps(metadata))  # write: staged
        publish_dir(staging, state)
        for old in self.states()[self.KEEP :]:
            if old.is_dir():
                discard_dir(old)
            else:
                old.unlink()

    def on_train_end(self, logs=None) -> None:
        discard_dir(self.folder)


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
