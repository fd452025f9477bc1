"""Training with ``model.fit``: the ``keras`` framework's loop.

Resuming relies on ``keras.callbacks.BackupAndRestore`` (model, optimizer and epoch; FACTS: the
tf.data iterator position is not restored, so a resumed epoch starts from the beginning).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from skelgen_runtime.runs import Run, now_iso
from skelgen_runtime.training.callbacks import EpochCSVLogger, RunStatus

__all__ = ["fit", "save_model"]


def save_model(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` model atomically (a crash never leaves a half-written final model)."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keeps the .keras suffix save() requires
    model.save(tmp)
    os.replace(tmp, path)


def fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    run: Run,
    *,
    optimizer: keras.optimizers.Optimizer,
    loss,
    metrics: list,
    epochs: int,
    steps_per_epoch: int,
    monitor: str,
    monitor_mode: str = "max",
) -> None:
    """Compile and train ``model``, writing the run record; resumes if ``run`` has a backup.

    Args:
        train_ds: endless (repeated) batches of ``(inputs, targets)``.
        val_ds: finite batches of ``(inputs, targets)``, evaluated after every epoch.
        monitor: validation metric that selects ``checkpoints/best.weights.h5`` (e.g. ``val_miou``).
    """
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        # order matters: the epoch's row is on disk before its backup, so a resume redoes the epoch
        # and the logger replaces the row rather than losing it
        EpochCSVLogger(run.metrics_csv),
        RunStatus(run),
        keras.callbacks.TensorBoard(str(run.tensorboard_dir), update_freq="epoch"),
        keras.callbacks.ModelCheckpoint(
            str(run.checkpoint_dir / "last.weights.h5"), save_weights_only=True, verbose=0
        ),
        keras.callbacks.ModelCheckpoint(
            str(run.checkpoint_dir / "best.weights.h5"),
            save_weights_only=True,
            save_best_only=True,
            monitor=monitor,
            mode=monitor_mode,
            verbose=0,
        ),
        keras.callbacks.BackupAndRestore(str(run.backup_dir), save_freq="epoch", double_checkpoint=True),
    ]
    run.update_record(status="running", pid=os.getpid())
    try:
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=2,
        )
    except BaseException:
        run.update_record(status="interrupted")
        raise
    save_model(model, run.final_model)
    run.update_record(status="complete", finished=now_iso())
