"""Training with ``model.fit``: the ``keras`` framework's loop.

Resuming relies on ``keras.callbacks.BackupAndRestore`` (model, optimizer and epoch; the tf.data
iterator position is not restored, so a resumed epoch starts from the beginning). Ctrl-C and
failures are handled as :mod:`skelgen_runtime.training.control` says; the TensorBoard record is
:mod:`skelgen_runtime.training.summaries`'.

Under a ``tf.distribute`` strategy (:mod:`skelgen_runtime.training.distribute`) the model must have
been built in its scope; ``model.fit`` distributes the datasets and reduces the loss itself (Keras 3
cannot run it under ``MultiWorkerMirroredStrategy``: multi-host training takes the custom loop).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import keras
import tensorflow as tf

from skelgen_runtime.files import atomic_path
from skelgen_runtime.models import pretrained_sources
from skelgen_runtime.run_summary import best_of, read_metrics
from skelgen_runtime.runs import Run
from skelgen_runtime.training.callbacks import BackupAndRestore, EpochCSVLogger, RunStatus, WeightsCheckpoint
from skelgen_runtime.training.control import StopSignal, check_loss, finish, prune, supervised
from skelgen_runtime.training.distribute import sharding
from skelgen_runtime.training.finetune import BackboneSchedule
from skelgen_runtime.training.precision import StepLossScaleOptimizer
from skelgen_runtime.training.summaries import Preview, RunSummaries, SummaryCallback

__all__ = ["fit", "save_model"]


def save_model(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` model atomically (a crash never leaves a half-written final model)."""
    with atomic_path(path) as tmp:  # keeps the .keras suffix save() requires
        model.save(tmp)  # write: staged


class _BackboneFreezer(keras.callbacks.Callback):
    """At the start of every epoch, the backbone frozen or trainable as the schedule says; the training
    step traced again when that changed (its trainable variables did)."""

    def __init__(self, schedule: BackboneSchedule) -> None:
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if self.schedule.set_epoch(epoch):
            self.model.make_train_function(force=True)


class _StepGuard(keras.callbacks.Callback):
    """After every batch: stop on Ctrl-C, fail on a non-finite loss (before any epoch-end callback runs)."""

    def __init__(self, stop: StopSignal) -> None:
        super().__init__()
        self.stop, self.epoch = stop, 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.stop.check()
        if logs and "loss" in logs:
            check_loss(float(logs["loss"]), self.epoch, batch)

    def on_test_batch_end(self, batch: int, logs=None) -> None:
        self.stop.check()


class _AfterEpoch(keras.callbacks.Callback):
    """Last of the callbacks (the epoch saved): ``after_epoch(epoch, logs)``; True stops the training there."""

    def __init__(self, after_epoch: Callable[[int, dict], bool]) -> None:
        super().__init__()
        self.after_epoch, self.stopped_after = after_epoch, 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.after_epoch(epoch, dict(logs or {})):
            self.model.stop_training = True
            self.stopped_after = epoch + 1


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
    hparams: Mapping[str, Any] | None = None,
    preview: Preview | None = None,
    strategy: tf.distribute.Strategy | None = None,
    jit_compile: bool | str = "auto",
    freeze_backbone_epochs: int = 0,
    backbone_lr_multiplier: float = 1.0,
    after_epoch: Callable[[int, dict], bool] | None = None,
) -> None:
    """Compile and train ``model``, writing the run record; resumes if ``run`` has a backup.

    Args:
        train_ds: endless (repeated) batches of ``(inputs, targets)``.
        val_ds: finite batches of ``(inputs, targets)``, evaluated after every epoch.
        loss: ``loss(targets, outputs) -> (B,)`` per-example losses (Keras takes their mean).
        monitor: validation metric that selects ``checkpoints/best.weights.h5`` (e.g. ``val_miou``).
        hparams: the flattened config, for TensorBoard's HParams dashboard.
        preview: pictures of predictions on a fixed validation batch, for TensorBoard's images.
        strategy: the ``tf.distribute`` strategy whose scope built the model, the optimizer and the
            metrics (default: none); the datasets then hold global batches.
        jit_compile: ``model.compile``'s: XLA (``True``), none (``False``) or Keras's choice (``"auto"``).
        freeze_backbone_epochs, backbone_lr_multiplier: fine-tuning
            (:mod:`skelgen_runtime.training.finetune`): the first epochs with the backbone frozen, and
            the backbone's learning rate as a multiple of the rest's.
        after_epoch: called with the epoch (from 0) and its logs once the epoch is saved (row, checkpoints,
            resume state); True stops the training there, recorded ``pruned`` (a sweep's pruner:
            :mod:`skelgen_runtime.sweeps.trial`), without a final model.

    Raises:
        TrainingInterrupted: Ctrl-C (exit status 130; the message is the command that resumes).
        TrainingFailed: a non-finite loss.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if pretrained_sources(model):  # where the pretrained weights came from (file, SHA-256)
        run.update_record(pretrained_weights=pretrained_sources(model))
    if isinstance(optimizer, StepLossScaleOptimizer):  # model.fit scales the loss: Keras's own wrapper will do
        optimizer = optimizer.inner_optimizer
    schedule = BackboneSchedule(
        model,
        freeze_backbone_epochs=freeze_backbone_epochs,
        backbone_lr_multiplier=backbone_lr_multiplier,
        epochs=epochs,
    )
    with strategy.scope():
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile)
        if schedule.active:  # the optimizer's state covers every variable, frozen or not (resume-safe)
            model.optimizer.build(model.trainable_variables)
    if schedule.active:
        schedule.attach(model.optimizer)
        run.update_record(fine_tuning=schedule.record())
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    summaries = RunSummaries(run.log_dir, run.run_id)
    with supervised(run, epochs=epochs) as stop:
        callbacks = [
            _BackboneFreezer(schedule),  # first: the epoch's trainable variables before it trains
            _StepGuard(stop),
            # order matters: the epoch's row is on disk before its backup, so a resume redoes the epoch
            # and the logger replaces the row rather than losing it
            EpochCSVLogger(run.metrics_csv, run.epoch_base),
            RunStatus(run),
            SummaryCallback(summaries, epochs=epochs, hparams=hparams, preview=preview),
            WeightsCheckpoint(run.checkpoint_dir / "last.weights.h5"),
            WeightsCheckpoint(
                run.checkpoint_dir / "best.weights.h5",
                monitor=monitor,
                mode=monitor_mode,
                # a resumed fit starts a fresh callback: without the best so far it would take the first
                # resumed epoch as the best and overwrite best.weights.h5 with a worse model
                best=best_of(read_metrics(run), monitor, monitor_mode)[0],
            ),
            BackupAndRestore(run, str(run.backup_dir)),  # the newest whole resume state, a damaged one named
        ]
        ender = _AfterEpoch(after_epoch) if after_epoch is not None else None
        callbacks += [ender] if ender is not None else []
        model.fit(
            sharding(strategy, train_ds),
            validation_data=sharding(strategy, val_ds, validation=True) if val_ds is not None else None,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=1 if sys.stdout.isatty() else 2,  # a step progress bar on a terminal, a line per epoch in logs
        )
    summaries.close()
    if ender is not None and ender.stopped_after:
        prune(run, epoch=ender.stopped_after, monitor=monitor)
        return
    save_model(model, run.final_model)
    finish(run, monitor=monitor)
