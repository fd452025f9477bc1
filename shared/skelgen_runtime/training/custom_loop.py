"""Training with a custom loop: the ``tf`` framework.

The same contract as :mod:`skelgen_runtime.training.keras_fit` (same arguments, same run record:
``metrics.csv``, TensorBoard summaries, ``checkpoints/``, ``final.keras``, resumable), written
with ``tf.function``, ``tf.train.CheckpointManager`` and ``tf.summary``. This module is the loop
*driver*; the steps it runs are the project's (``core/steps.py``, see
:mod:`skelgen_runtime.training.steps` for their contract).

Resume state is a ``tf.train.Checkpoint`` of model, optimizer, the steps' own ``state`` and the next epoch in
``models/RUN/backup/``, saved after each epoch's row is on disk; a resumed run restarts the
interrupted epoch from its beginning and the CSV logger replaces that epoch's row if it was written.
Ctrl-C and failures are handled as :mod:`skelgen_runtime.training.control` says; the TensorBoard
record is :mod:`skelgen_runtime.training.summaries`'.

Under a ``strategy`` (:mod:`skelgen_runtime.training.distribute`) the datasets are distributed with
``strategy.experimental_distribute_dataset``, each step runs on every replica (``strategy.run``)
and the shares of the global batch's mean that it returns are added up over the replicas (see
:mod:`skelgen_runtime.training.steps`). In a multi-worker cluster the per-step
decisions (Ctrl-C, a non-finite loss) are agreed between the workers, so that all stop together.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Iterable, Mapping

import keras
import tensorflow as tf

from skelgen_runtime.files import discard_dir
from skelgen_runtime.models import pretrained_sources
from skelgen_runtime.runs import Run
from skelgen_runtime.training.callbacks import EpochCSVLogger, RunStatus, save_weights
from skelgen_runtime.training.control import (
    StopRequested,
    StopSignal,
    check_loss,
    finish,
    prune,
    restore_newest_whole,
    supervised,
)
from skelgen_runtime.training.distribute import agree, distribute_validation, peer_loss_fails_the_run, sharding
from skelgen_runtime.training.finetune import BackboneSchedule
from skelgen_runtime.training.keras_fit import save_model
from skelgen_runtime.training.steps import Steps
from skelgen_runtime.training.summaries import Preview, RunSummaries, SummaryCallback

__all__ = ["fit"]


def _distributed(step: Callable, strategy: tf.distribute.Strategy, jit_compile: bool) -> Callable:
    """``step`` run on every replica of ``strategy``; each value it returns combined over the replicas.

    A replica's value is read as its share of the global batch's mean, as ``tf.nn.compute_average_loss``
    computes it (the sum over the replica's examples / (its batch size x replicas)); the shares make
    the mean over every example of the step, also when a last partial batch leaves the replicas
    unequal or empty batches (with equal batches: the sum of the shares). One replica: the values as
    the step returns them.
    """
    # the step's Python body: a tf.function nested in strategy.run cannot synchronise the replicas
    # (a synchronized BatchNormalization, the optimizer's update)
    body = getattr(step, "python_function", step)
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return tf.function(body, jit_compile=True, reduce_retracing=True) if jit_compile else step

    def replica_step(inputs, targets) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        size = tf.cast(tf.shape(tf.nest.flatten(inputs)[0])[0], tf.float32)
        sums = {k: tf.cast(v, tf.float32) * (size * replicas) for k, v in body(inputs, targets).items()}
        return sums, size

    if jit_compile:  # each replica's step, as model.fit compiles it (the strategy's calls stay outside XLA)
        replica_step = tf.function(replica_step, jit_compile=True, reduce_retracing=True)

    @tf.function(reduce_retracing=True)
    def run(inputs, targets) -> dict[str, tf.Tensor]:
        sums, sizes = strategy.run(replica_step, args=(inputs, targets))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, sizes, axis=None)
        return {
            k: tf.math.divide_no_nan(strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), total)
            for k, v in sums.items()
        }

    return run


def _retraced(step: Callable) -> Callable:
    """A new ``tf.function`` of ``step``'s Python body: traced again on its next call."""
    return tf.function(getattr(step, "python_function", step), reduce_retracing=True)


def _run_epoch(
    step: Callable,
    batches: Iterable,
    metrics: list,
    *,
    stop: StopSignal,
    epoch: int,
    train: bool,
    strategy: tf.distribute.Strategy,
) -> dict[str, float]:
    """Run ``step`` over ``batches``; the mean of every value it returns, then each metric's result.

    After every step: stop on Ctrl-C (pressed on any worker of a multi-worker cluster: all stop
    after the same step), and (training) fail on a non-finite loss (the same on every worker: it
    is reduced over all replicas).
    """
    for m in metrics:
        m.reset_state()
    means: dict[str, keras.metrics.Mean] = {}
    for k, (inputs, targets) in enumerate(batches):
        values = step(inputs, targets)
        if agree(strategy, bool(stop))[0]:
            raise StopRequested
        if train and "loss" in values:
            check_loss(float(values["loss"]), epoch, k)
        for key, value in values.items():
            means.setdefault(key, keras.metrics.Mean()).update_state(value)
    return {**{k: float(m.result()) for k, m in means.items()}, **{m.name: float(m.result()) for m in metrics}}


def _progress(iterator: Iterable, total: int, epoch: int, epochs: int) -> Iterable:
    """A step progress bar on a terminal; the plain iterator in logs."""
    if not sys.stderr.isatty():
        return iterator
    from tqdm import tqdm

    return tqdm(iterator, total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False)


def _better(value: float, best: float, mode: str) -> bool:
    """Whether ``value`` improves on ``best`` (NaN: nothing recorded yet)."""
    return math.isnan(best) or (value > best if mode == "max" else value < best)


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
    steps: Steps,
    hparams: Mapping[str, Any] | None = None,
    preview: Preview | None = None,
    strategy: tf.distribute.Strategy | None = None,
    jit_compile: bool | str = "auto",
    freeze_backbone_epochs: int = 0,
    backbone_lr_multiplier: float = 1.0,
    after_epoch: Callable[[int, dict], bool] | None = None,
) -> None:
    """Train ``model`` with a custom loop and write the run record; resumes from ``run``'s backup.

    Args:
        train_ds: endless (repeated) batches of ``(inputs, targets)``.
        val_ds: finite batches of ``(inputs, targets)``, evaluated after every epoch.
        loss: ``loss(targets, outputs) -> (B,)`` per-example losses; the steps were built with it.
        metrics: Keras metrics, reported as ``NAME`` (train) and ``val_NAME`` (validation).
        monitor: the logged value that selects ``checkpoints/best.weights.h5``.
        steps: the object whose ``train_step``/``val_step`` run each batch (the project's
            ``core/steps.py``, or a hand-written script's), and whose optional ``state`` is saved for
            resume (:mod:`skelgen_runtime.training.steps`).
        hparams: the flattened config, for TensorBoard's HParams dashboard.
        preview: pictures of predictions on a fixed validation batch, for TensorBoard's images.
        strategy: the ``tf.distribute`` strategy whose scope built the model, the optimizer and the
            metrics (default: none); the datasets then hold global batches.
        jit_compile: XLA-compile each replica's steps (``True``); ``"auto"`` and ``False`` do not.
        freeze_backbone_epochs, backbone_lr_multiplier: fine-tuning
            (:mod:`skelgen_runtime.training.finetune`), as in ``keras_fit.fit``.
        after_epoch: called with the epoch (from 0) and its logs once the epoch is saved (row, checkpoints,
            resume state); True stops the training there, recorded ``pruned`` (a sweep's pruner:
            :mod:`skelgen_runtime.sweeps.trial`), without a final model.

    Raises:
        TrainingInterrupted: Ctrl-C (exit status 130; the message is the command that resumes).
        TrainingFailed: a non-finite loss, or another worker of a multi-worker cluster lost.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if pretrained_sources(model):  # where the pretrained weights came from (file, SHA-256)
        run.update_record(pretrained_weights=pretrained_sources(model))
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    schedule = BackboneSchedule(
        model,
        freeze_backbone_epochs=freeze_backbone_epochs,
        backbone_lr_multiplier=backbone_lr_multiplier,
        epochs=epochs,
    )
    with strategy.scope():  # the optimizer's slots are replicated like the weights
        optimizer.build(model.trainable_variables)  # every variable, before the backbone is frozen (resume-safe)
    schedule.attach(optimizer)
    if schedule.active:
        run.update_record(fine_tuning=schedule.record())
    next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="next_epoch")
    best = tf.Variable(float("nan"), dtype=tf.float64, trainable=False, name="best_monitor")
    kept = dict(getattr(steps, "state", None) or {})  # what the steps keep besides model and optimizer
    state = tf.train.Checkpoint(
        model=model,
        optimizer=optimizer,
        next_epoch=next_epoch,
        best=best,
        **({"steps": tf.train.Checkpoint(**kept)} if kept else {}),
    )
    manager = tf.train.CheckpointManager(state, str(run.backup_dir), max_to_keep=2)
    if manager.checkpoints:  # the newest that reads whole (a damaged one is named, the one before it restored)
        restored = restore_newest_whole(
            run, list(reversed(manager.checkpoints)), lambda path: state.restore(path).expect_partial()
        )
        print(f"restored {restored}: continuing at epoch {int(next_epoch) + 1}", flush=True)

    csv_logger, status = EpochCSVLogger(run.metrics_csv, run.epoch_base), RunStatus(run)
    for callback in (csv_logger, status):
        callback.set_model(model)
    summaries = RunSummaries(run.log_dir, run.run_id)
    board = SummaryCallback(
        summaries, epochs=epochs, hparams=hparams if int(next_epoch) == 0 else None, preview=preview
    )  # the same record as model.fit's; hyperparameters once per run
    board.set_model(model)
    train_step = _distributed(steps.train_step, strategy, jit_compile is True)
    val_step = _distributed(steps.val_step, strategy, jit_compile is True)
    val_ds = distribute_validation(strategy, val_ds)
    batches = iter(strategy.experimental_distribute_dataset(sharding(strategy, train_ds)))
    pruned = 0
    with supervised(run, epochs=epochs) as stop, peer_loss_fails_the_run():
        board.on_train_begin()
        for epoch in range(int(next_epoch), epochs):
            if schedule.set_epoch(epoch):  # frozen or unfrozen: the step's trainable variables changed
                train_step = _distributed(_retraced(steps.train_step), strategy, jit_compile is True)
            csv_logger.on_epoch_begin(epoch)
            t0 = time.time()
            train_batches = _progress((next(batches) for _ in range(steps_per_epoch)), steps_per_epoch, epoch, epochs)
            logs = _run_epoch(train_step, train_batches, metrics, stop=stop, epoch=epoch, train=True, strategy=strategy)
            val = _run_epoch(val_step, val_ds, metrics, stop=stop, epoch=epoch, train=False, strategy=strategy)
            logs.update({f"val_{k}": v for k, v in val.items()})
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))

            board.on_epoch_end(epoch, logs)
            save_weights(model, run.checkpoint_dir / "last.weights.h5")
            if monitor in logs and _better(logs[monitor], float(best), monitor_mode):
                best.assign(logs[monitor])
                save_weights(model, run.checkpoint_dir / "best.weights.h5")
            # the row first, then the resume state (see EpochCSVLogger)
            csv_logger.on_epoch_end(epoch, logs)
            status.on_epoch_end(epoch, logs)
            next_epoch.assign(epoch + 1)
            manager.save(checkpoint_number=epoch + 1)  # write: tensorflow
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"epoch {epoch + 1}/{epochs} - {time.time() - t0:.0f}s - {shown}", flush=True)
            if after_epoch is not None and after_epoch(epoch, logs):  # a sweep's pruner stops the trial here
                pruned = epoch + 1
                break
    summaries.close()
    if pruned:
        discard_dir(run.backup_dir)
        prune(run, epoch=pruned, monitor=monitor)
        return
    save_model(model, run.final_model)
    discard_dir(run.backup_dir)  # like BackupAndRestore: the resume state goes once done, as one step
    finish(run, monitor=monitor)
