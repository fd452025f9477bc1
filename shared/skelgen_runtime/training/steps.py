"""The contract between the custom loop (framework ``tf``) and the steps it runs.

A project generated with ``--framework tf`` owns its steps in ``core/steps.py``; a hand-written
``train.py`` may hand :meth:`skelgen_runtime.jobs.Training.fit` steps of its own (``steps=``), e.g.
with a second model or an EMA teacher. :func:`skelgen_runtime.training.custom_loop.fit` relies on:

- ``train_step(inputs, targets)`` and ``val_step(inputs, targets)`` take one batch and return a dict
  of scalar tensors (``loss`` at least); the loop averages each over the epoch and logs it as
  ``NAME`` (train) and ``val_NAME`` (validation), in ``metrics.csv`` and TensorBoard;
- both update the Keras ``metrics`` they were given (the loop resets and logs them);
- under ``train.distribute`` the loop runs them on every replica (``strategy.run``), each with its
  part of the global batch, and reads every returned value as that replica's share of the global
  batch's mean, as ``tf.nn.compute_average_loss`` computes it (the sum over the replica's examples
  / (its batch size x replicas)); it adds the shares up into the mean over all examples (one
  replica: the value as returned);
- ``train_step`` takes the gradients of ``self.optimizer.scale_loss(loss)`` (the loss itself
  unless ``train.mixed_precision`` is ``mixed_float16``; see :mod:`skelgen_runtime.training.precision`);
- ``state`` (optional): ``{name: trackable}`` of what the steps keep besides the model and the
  optimizer (an EMA teacher, a counter); the loop saves it in the run's resume checkpoint with
  them and restores it on resume.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

__all__ = ["Steps"]


@runtime_checkable
class Steps(Protocol):
    """What the custom loop calls (module docstring); ``state`` is optional."""

    def train_step(self, inputs: Any, targets: Any) -> Mapping[str, Any]:
        """One optimisation step on a batch; the values to log."""

    def val_step(self, inputs: Any, targets: Any) -> Mapping[str, Any]:
        """One validation batch; the values to log (as ``val_NAME``)."""
