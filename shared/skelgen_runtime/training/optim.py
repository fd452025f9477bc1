"""Optimizers and learning-rate schedules from the ``train`` section of a config."""

from __future__ import annotations

import keras

from skelgen_runtime.training.precision import StepLossScaleOptimizer

__all__ = ["make_optimizer"]


def make_optimizer(train_cfg, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of ``train_cfg`` with its learning-rate schedule over ``epochs * steps_per_epoch`` steps.

    Under ``train.mixed_precision: mixed_float16`` it comes with dynamic loss scaling
    (:class:`~skelgen_runtime.training.precision.StepLossScaleOptimizer`). Under a strategy, call it
    inside ``strategy.scope()``.
    """
    optimizer = _plain_optimizer(train_cfg, steps_per_epoch)
    if getattr(train_cfg, "mixed_precision", False) == "mixed_float16":
        return StepLossScaleOptimizer(optimizer)
    return optimizer


def _plain_optimizer(train_cfg, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = train_cfg.learning_rate
    if train_cfg.lr_schedule == "cosine":
        total = max(1, train_cfg.epochs * steps_per_epoch)
        warmup = train_cfg.warmup_epochs * steps_per_epoch
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr if not warmup else lr * 0.1,
            decay_steps=max(1, total - warmup),
            alpha=0.01,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    if train_cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if train_cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=train_cfg.weight_decay)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
