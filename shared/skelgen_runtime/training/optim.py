"""Optimizers and learning-rate schedules: registries of factories that say which config keys they read.

A project keeps its own registries in ``core/optimizers.py`` (``OPTIMIZERS``, ``SCHEDULES``), made
with :func:`default_optimizers` / :func:`default_schedules` and extended there. Each entry is a
factory declared with :func:`reads`, naming the ``train`` keys it uses beyond ``learning_rate``:

- an optimizer: ``factory(train_cfg, learning_rate) -> keras.optimizers.Optimizer``, where
  ``learning_rate`` is a float or a schedule;
- a schedule: ``factory(train_cfg, steps_per_epoch) -> float | LearningRateSchedule``.

:func:`check_train_keys` refuses a key set away from its default that the chosen optimizer and
schedule would not read (``train.weight_decay`` with ``adam``, ``train.warmup_epochs`` with a
constant rate), saying which entries read it. :func:`build_optimizer` builds the pair; under
``train.mixed_precision: mixed_float16`` with dynamic loss scaling.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.registry import Registry
from skelgen_runtime.training.precision import StepLossScaleOptimizer

__all__ = [
    "reads",
    "default_optimizers",
    "default_schedules",
    "check_train_keys",
    "build_optimizer",
    "make_optimizer",
]

F = Callable[..., Any]


def reads(*keys: str) -> Callable[[F], F]:
    """Declare the ``train`` keys (besides ``learning_rate``) that an optimizer or schedule factory uses."""

    def mark(factory: F) -> F:
        factory.reads = tuple(keys)  # type: ignore[attr-defined]
        return factory

    return mark


def default_optimizers() -> Registry:
    """A registry with ``adam``, ``adamw`` (``weight_decay``) and ``sgd`` (``momentum``, ``nesterov``)."""
    optimizers: Registry = Registry("optimizer")

    @optimizers.register("adam")
    @reads()
    def adam(train: Any, learning_rate: Any) -> keras.optimizers.Optimizer:
        return keras.optimizers.Adam(learning_rate)

    @optimizers.register("adamw")
    @reads("weight_decay")
    def adamw(train: Any, learning_rate: Any) -> keras.optimizers.Optimizer:
        return keras.optimizers.AdamW(learning_rate, weight_decay=train.weight_decay)

    @optimizers.register("sgd")
    @reads("momentum", "nesterov")
    def sgd(train: Any, learning_rate: Any) -> keras.optimizers.Optimizer:
        return keras.optimizers.SGD(learning_rate, momentum=train.momentum, nesterov=train.nesterov)

    return optimizers


def default_schedules() -> Registry:
    """A registry with ``constant`` and ``cosine`` (decay to 1 % over the run after ``warmup_epochs``)."""
    schedules: Registry = Registry("learning-rate schedule")

    @schedules.register("constant")
    @reads()
    def constant(train: Any, steps_per_epoch: int) -> float:
        return train.learning_rate

    @schedules.register("cosine")
    @reads("warmup_epochs")
    def cosine(train: Any, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
        lr = train.learning_rate
        total = max(1, train.epochs * steps_per_epoch)
        warmup = train.warmup_epochs * steps_per_epoch
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr if not warmup else lr * 0.1,
            decay_steps=max(1, total - warmup),
            alpha=0.01,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )

    return schedules


def _readers(registry: Registry) -> dict[str, list[str]]:
    """key -> the entries of ``registry`` that read it."""
    out: dict[str, list[str]] = {}
    for name in registry:
        for key in getattr(registry.get(name), "reads", ()):
            out.setdefault(key, []).append(name)
    return out


def check_train_keys(train_cfg: Any, optimizers: Registry, schedules: Registry) -> None:
    """Refuse ``train`` keys set away from their defaults that the chosen optimizer and schedule ignore.

    Raises ``ValueError`` (so that a config validator reports it as one of the config's errors)
    naming the key, the choice that ignores it and the entries that read it.
    """
    fields = type(train_cfg).model_fields
    for registry, chosen in ((optimizers, train_cfg.optimizer), (schedules, train_cfg.lr_schedule)):
        used = set(getattr(registry.get(chosen), "reads", ()))
        for key, readers in sorted(_readers(registry).items()):
            if key in used or key not in fields:
                continue
            value, default = getattr(train_cfg, key), fields[key].default
            if value != default:
                option = "optimizer" if registry is optimizers else "lr_schedule"
                choice = readers[0] if len(readers) == 1 else f"one of {', '.join(readers)}"
                raise ValueError(
                    f"train.{key}: {value!r} has no effect with train.{option} {chosen} (only "
                    f"{', '.join(readers)} read it); remove it or choose {choice}"
                )


def build_optimizer(
    train_cfg: Any, steps_per_epoch: int, optimizers: Registry, schedules: Registry, *, check: bool = True
) -> keras.optimizers.Optimizer:
    """The optimizer ``train.optimizer`` with the learning rate of ``train.lr_schedule``.

    The keys are checked first (:func:`check_train_keys`) unless ``check`` is false. Under
    ``train.mixed_precision: mixed_float16`` it comes with dynamic loss scaling
    (:class:`~skelgen_runtime.training.precision.StepLossScaleOptimizer`). Under a strategy, call it
    inside ``strategy.scope()``.
    """
    if check:
        try:
            check_train_keys(train_cfg, optimizers, schedules)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    learning_rate = schedules.get(train_cfg.lr_schedule)(train_cfg, steps_per_epoch)
    optimizer = optimizers.get(train_cfg.optimizer)(train_cfg, learning_rate)
    if getattr(train_cfg, "mixed_precision", False) == "mixed_float16":
        return StepLossScaleOptimizer(optimizer)
    return optimizer


def make_optimizer(train_cfg: Any, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """:func:`build_optimizer` with the default registries, unchecked (the skelgen 0.2 entry point)."""
    return build_optimizer(train_cfg, steps_per_epoch, default_optimizers(), default_schedules(), check=False)
