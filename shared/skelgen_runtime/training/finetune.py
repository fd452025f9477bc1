"""Fine-tuning a pretrained backbone: train the head first with the backbone frozen, then everything,
the backbone at a smaller learning rate.

- ``train.freeze_backbone_epochs: N``: epochs ``1..N`` train with the backbone frozen (not trainable,
  so its BatchNormalization layers run in inference mode and keep their statistics), then the
  backbone is unfrozen. The phase follows the epoch, so a run resumed in the frozen phase stays
  frozen.
- ``train.backbone_lr_multiplier: m``: the backbone's variables are updated with ``m`` times the
  learning rate (the schedule's value at each step), whatever the optimizer.

The backbone is the model's layers named ``encoder`` (a nested model, as the ``keras.applications``
backbones are) or ``encoder.*`` (the ``simple`` backbone's layers). The optimizer is built over every
variable before anything is frozen, so its state (moments, iterations) covers the backbone from the
start: a run resumed after unfreezing restores all of it. The run record (``run.json``,
``fine_tuning``) lists the backbone layers and which were trainable in which epochs.
"""

from __future__ import annotations

import math
import types
from typing import Any

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.models.applications import ENCODER

__all__ = ["backbone_layers", "BackboneSchedule"]


def backbone_layers(model) -> list:
    """The layers of ``model`` that make its backbone: named ``encoder`` or ``encoder.*``."""
    return [layer for layer in model.layers if layer.name == ENCODER or layer.name.startswith(ENCODER + ".")]


class BackboneSchedule:
    """Which part of a model trains in which epoch, and the backbone's learning-rate multiplier.

    Args:
        model: the model (built).
        freeze_backbone_epochs: epochs at the start with the backbone frozen (0: never frozen).
        backbone_lr_multiplier: factor of the backbone's learning rate (1: as the rest).
        epochs: the run's epochs (for the record).

    Raises:
        ConfigError: fine-tuning asked for, and the model has no layer named ``encoder``/``encoder.*``.
    """

    def __init__(
        self, model, *, freeze_backbone_epochs: int = 0, backbone_lr_multiplier: float = 1.0, epochs: int | None = None
    ) -> None:
        self.model, self.freeze_epochs, self.multiplier, self.epochs = (
            model,
            int(freeze_backbone_epochs),
            float(backbone_lr_multiplier),
            epochs,
        )
        self.layers = backbone_layers(model) if self.active else []
        if self.active and not any(layer.weights for layer in self.layers):
            raise ConfigError(
                "train.freeze_backbone_epochs / train.backbone_lr_multiplier need the backbone's layers named "
                f"'{ENCODER}' or '{ENCODER}.*'; model {model.name!r} has none with weights (core/backbones.py)"
            )
        self.frozen: bool | None = None

    @property
    def active(self) -> bool:
        return self.freeze_epochs > 0 or self.multiplier != 1.0

    def attach(self, optimizer) -> None:
        """Scale the backbone's learning rate in ``optimizer`` (built over every variable already, so that
        its state covers the backbone whether or not it is frozen now)."""
        if self.multiplier == 1.0:
            return
        inner = getattr(optimizer, "inner_optimizer", optimizer)  # a loss-scale wrapper updates through it
        keys = {inner._var_key(v) for layer in self.layers for v in layer.trainable_weights}
        plain = inner.update_step
        multiplier = self.multiplier

        def update_step(self, gradient, variable, learning_rate):
            if self._var_key(variable) in keys:
                learning_rate = learning_rate * multiplier
            return plain(gradient, variable, learning_rate)

        # per instance: the optimizer keeps its class (and so its saved config)
        inner.update_step = types.MethodType(update_step, inner)

    def set_epoch(self, epoch: int) -> bool:
        """Freeze or unfreeze the backbone for ``epoch`` (0-based). Returns whether that changed anything
        (then a traced training step must be traced again: its variables changed)."""
        frozen = epoch < self.freeze_epochs
        if not self.active or frozen == self.frozen:
            return False
        first = self.frozen is None
        self.frozen = frozen
        for layer in self.layers:
            layer.trainable = not frozen
        return not (first and not frozen)  # the first, unfrozen state is what the model was built with

    def record(self) -> dict[str, Any]:
        """``run.json``'s ``fine_tuning``: the backbone's layers, the multiplier, and the phases (epochs from 1)."""
        last = self.epochs
        phases = []
        if self.freeze_epochs:
            phases.append(
                {
                    "epochs": [1, min(self.freeze_epochs, last or self.freeze_epochs)],
                    "backbone": "frozen (BatchNorm in inference mode)",
                }
            )
        if last is None or self.freeze_epochs < last:
            phases.append({"epochs": [self.freeze_epochs + 1, last], "backbone": "trainable"})
        return {
            "backbone_layers": [layer.name for layer in self.layers],
            "backbone_weights": sum(math.prod(w.shape) for layer in self.layers for w in layer.weights),
            "freeze_backbone_epochs": self.freeze_epochs,
            "backbone_lr_multiplier": self.multiplier,
            "phases": phases,
        }
