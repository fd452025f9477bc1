"""``train.mixed_precision``: Keras's dtype policy, float32 outputs, and loss scaling for float16.

``train.py`` sets the policy before the model is built (:func:`set_precision`): with
``mixed_float16`` or ``mixed_bfloat16`` layers compute in 16 bits and keep float32 weights. Losses
and metrics need float32 logits, so the template's builders end in a ``dtype="float32"`` layer and
:func:`float32_outputs` adds a cast to models that do not (builders written before this option).

float16 gradients underflow without loss scaling: :func:`~skelgen_runtime.training.optim.make_optimizer`
wraps the optimizer in :class:`StepLossScaleOptimizer`, Keras's ``LossScaleOptimizer``. ``model.fit``
scales the loss itself; a custom loop's training step must do what Keras's does::

    with tf.GradientTape() as tape:
        loss = ...                                     # float32
        scaled = self.optimizer.scale_loss(loss)       # x the loss scale (unchanged without one)
    grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))  # unscales; skips a step with inf/NaN

A step that never calls ``scale_loss`` (``core/steps.py`` generated before this option) gets its
gradients applied as they are, without loss scaling, and a warning that says what to add.
"""

from __future__ import annotations

import sys
from typing import Any

import keras

from skelgen_runtime.errors import ConfigError

__all__ = ["set_precision", "float32_outputs", "StepLossScaleOptimizer"]


def set_precision(train_cfg: Any) -> str:
    """Set Keras's global dtype policy from ``train_cfg.mixed_precision``; returns the policy's name.

    Call it before the model is built: layers take the policy in force when they are created.
    """
    name = train_cfg.mixed_precision or "float32"
    keras.mixed_precision.set_global_policy(name)
    return name


def float32_outputs(model: keras.Model) -> keras.Model:
    """``model``, or a functional model that casts its non-float32 outputs to float32.

    Raises:
        ConfigError: a subclassed model (its own ``train_step`` would be lost in a wrapper) whose
            outputs are not float32.
    """
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    if all(keras.backend.standardize_dtype(o.dtype) == "float32" for o in outputs):
        return model
    if type(model).__name__ != "Functional":
        raise ConfigError(
            f"model {model.name!r} ({type(model).__name__}) outputs "
            f"{keras.backend.standardize_dtype(outputs[0].dtype)} under train.mixed_precision; "
            'give its last layer dtype="float32" (losses and metrics need float32 logits)'
        )
    cast = [
        keras.layers.Activation("linear", dtype="float32", name=f"{model.name}.float32_{k}")(o)
        for k, o in enumerate(outputs)
    ]
    return keras.Model(model.inputs, cast if len(cast) > 1 else cast[0], name=model.name)


class StepLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """Keras's dynamic loss scaling, for steps that may not scale their loss.

    Gradients are unscaled only when the step called :meth:`scale_loss` before
    :meth:`apply` (checked when the step runs in Python: eagerly, or while ``tf.function``
    traces it); otherwise they are applied as they are and a warning says what the step lacks.
    """

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, **kwargs: Any) -> None:
        super().__init__(inner_optimizer, **kwargs)
        self._scaled = False
        self._warned = False

    def scale_loss(self, loss):
        self._scaled = True
        return super().scale_loss(loss)

    def apply(self, grads, trainable_variables=None):
        scaled, self._scaled = self._scaled, False
        if scaled:
            return super().apply(grads, trainable_variables)
        if not self._warned:
            self._warned = True
            print(
                "warning: the training step does not call optimizer.scale_loss(loss), so mixed_float16 "
                "trains without loss scaling (small gradients can underflow to zero); take the "
                "gradients of scaled = self.optimizer.scale_loss(loss) in core/steps.py",
                file=sys.stderr,
                flush=True,
            )
        return self.inner_optimizer.apply(grads, trainable_variables)
