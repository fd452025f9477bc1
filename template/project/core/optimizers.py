"""This project's optimizers and learning-rate schedules; pick them with ``train.optimizer`` and
``train.lr_schedule``.

Owner: you. skelgen update never changes this file once it exists.

An optimizer factory is called as ``factory(train, learning_rate)`` (the config's ``train`` section
and a float or a Keras schedule) and returns a ``keras.optimizers.Optimizer``; a schedule factory as
``factory(train, steps_per_epoch)`` and returns the learning rate (a float or a
``keras.optimizers.schedules.LearningRateSchedule``). ``@reads("key", ...)`` declares the ``train``
keys a factory uses besides ``learning_rate``: a config that sets a key away from its default while
the chosen optimizer and schedule read none of it is refused, saying which entries read it (no more
``weight_decay`` silently ignored by ``adam``). A new key goes into ``Train`` in ``core/config.py``.

The defaults (``adam``, ``adamw``, ``sgd``; ``constant``, ``cosine``) come from
``skelgen_runtime.training.optim``; register more below, e.g.::

    @OPTIMIZERS.register("lion")
    @reads("weight_decay")
    def lion(train, learning_rate):
        return keras.optimizers.Lion(learning_rate, weight_decay=train.weight_decay or None)
"""

from __future__ import annotations

from skelgen_runtime.training import default_optimizers, default_schedules, reads

__all__ = ["OPTIMIZERS", "SCHEDULES", "reads"]

#: train.optimizer: adam, adamw (weight_decay), sgd (momentum, nesterov)
OPTIMIZERS = default_optimizers()
#: train.lr_schedule: constant, cosine (warmup_epochs)
SCHEDULES = default_schedules()
