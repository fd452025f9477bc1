"""Training with a custom loop: the ``tf`` framework.

The same contract as :mod:`skelgen_runtime.training.keras_fit` (same arguments, same run record:
``metrics.csv``, TensorBoard summaries, ``checkpoints/``, ``final.keras``, resumable), written
with ``tf.function``, ``tf.train.CheckpointManager`` and ``tf.summary``. This module is the loop
*driver*; the steps it runs are the project's (``core/steps.py``, see
:mod:`skelgen_runtime.training.steps` for their contract).

Resume state is a ``tf.train.Checkpoint`` of model, optimizer and the next epoch in
``models/RUN/backup/``, saved after each epoch's row is on disk; a resumed run restarts the
interrupted epoch from its beginning and the CSV logger replaces that epoch's row if it was written.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from typing import Callable

import keras
import tensorflow as tf

from skelgen_runtime.runs import Run, now_iso
from skelgen_runtime.training.callbacks import EpochCSVLogger, RunStatus
from skelgen_runtime.training.keras_fit import save_model
from skelgen_runtime.training.steps import StandardSteps

__all__ = ["fit"]


def _run_epoch(step, batches, metrics: list) -> dict[str, float]:
    """Run ``step`` over ``batches``; the mean of every value it returns, then each metric's result."""
    for m in metrics:
        m.reset_state()
    means: dict[str, keras.metrics.Mean] = {}
    for inputs, targets in batches:
        for key, value in step(inputs, targets).items():
            means.setdefault(key, keras.metrics.Mean()).update_state(value)
    return {**{k: float(m.result()) for k, m in means.items()}, **{m.name: float(m.result()) for m in metrics}}


def _better(value: float, best: float, mode: str) -> bool:
    """Whether ``value`` improves on ``best`` (NaN: nothing recorded yet)."""
    return math.isnan(best) or (value > best if mode == "max" else value < best)


def _summaries(train_writer, val_writer, epoch: int, logs: dict[str, float]) -> None:
    """Epoch scalars laid out as keras.callbacks.TensorBoard does: train/ and validation/ runs."""
    with train_writer.as_default(step=epoch):
        for key, value in logs.items():
            if not key.startswith("val_"):
                tf.summary.scalar(f"epoch_{key}", value)
    with val_writer.as_default(step=epoch):
        for key, value in logs.items():
            if key.startswith("val_"):
                tf.summary.scalar(f"epoch_{key[4:]}", value)
    train_writer.flush()
    val_writer.flush()


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
    steps=None,
) -> None:
    """Train ``model`` with a custom loop and write the run record; resumes from ``run``'s backup.

    Args:
        train_ds: endless (repeated) batches of ``(inputs, targets)``.
        val_ds: finite batches of ``(inputs, targets)``, evaluated after every epoch.
        loss: ``loss(targets, outputs) -> (B,)`` per-example losses (a scalar works too); used by the
            default steps only (a project's own steps were built with it).
        metrics: Keras metrics, reported as ``NAME`` (train) and ``val_NAME`` (validation).
        monitor: the logged value that selects ``checkpoints/best.weights.h5``.
        steps: the object whose ``train_step``/``val_step`` run each batch (the project's
            ``core/steps.py``); default :class:`~skelgen_runtime.training.steps.StandardSteps`.
    """
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    optimizer.build(model.trainable_variables)
    next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_epoch")
    best = tf.Variable(float("nan"), dtype=tf.float64, trainable=False, name="best_monitor")
    state = tf.train.Checkpoint(model=model, optimizer=optimizer, next_epoch=next_epoch, best=best)
    manager = tf.train.CheckpointManager(state, str(run.backup_dir), max_to_keep=2)
    if manager.latest_checkpoint:
        state.restore(manager.latest_checkpoint).expect_partial()
        print(f"restored {manager.latest_checkpoint}: continuing at epoch {int(next_epoch) + 1}", flush=True)

    csv_logger, status = EpochCSVLogger(run.metrics_csv), RunStatus(run)
    for callback in (csv_logger, status):
        callback.set_model(model)
    train_writer = tf.summary.create_file_writer(str(run.tensorboard_dir / "train"))
    val_writer = tf.summary.create_file_writer(str(run.tensorboard_dir / "validation"))
    steps = steps or StandardSteps(model=model, optimizer=optimizer, loss=loss, metrics=metrics)
    batches = iter(train_ds)
    run.update_record(status="running", pid=os.getpid())
    try:
        for epoch in range(int(next_epoch), epochs):
            csv_logger.on_epoch_begin(epoch)
            t0 = time.time()
            logs = _run_epoch(steps.train_step, (next(batches) for _ in range(steps_per_epoch)), metrics)
            logs.update({f"val_{k}": v for k, v in _run_epoch(steps.val_step, val_ds, metrics).items()})

            logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            _summaries(train_writer, val_writer, epoch, logs)
            model.save_weights(run.checkpoint_dir / "last.weights.h5")
            if monitor in logs and _better(logs[monitor], float(best), monitor_mode):
                best.assign(logs[monitor])
                model.save_weights(run.checkpoint_dir / "best.weights.h5")
            # the row first, then the resume state (see EpochCSVLogger)
            csv_logger.on_epoch_end(epoch, logs)
            status.on_epoch_end(epoch, logs)
            next_epoch.assign(epoch + 1)
            manager.save(checkpoint_number=epoch + 1)
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"epoch {epoch + 1}/{epochs} - {time.time() - t0:.0f}s - {shown}", flush=True)
    except BaseException:
        run.update_record(status="interrupted")
        raise
    save_model(model, run.final_model)
    shutil.rmtree(run.backup_dir, ignore_errors=True)  # like BackupAndRestore: resume state goes once done
    run.update_record(status="complete", finished=now_iso())
