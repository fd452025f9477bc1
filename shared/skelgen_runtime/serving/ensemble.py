"""Ensembles (``evaluate.py``/``predict.py --run A,B,C``): one model whose softmax is the members' mean.

nnU-Net ensembles the models of its cross-validation folds by averaging their softmax probabilities.
:func:`ensemble` builds a Keras model that does this for models taking the same input: it outputs
``log(mean_i softmax(model_i(x)))``, so that the softmax a task applies to a model's output gives
back the mean probabilities exactly (a softmax of ``log p`` with ``sum(p) = 1`` is ``p``), and the
volume inference (:mod:`skelgen_runtime.tasks.windows`: sliding windows, mirroring) runs on it as on
one model. An ensemble of one model's copies predicts what the model predicts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import keras

from skelgen_runtime.errors import UserInputError
from skelgen_runtime.serving.weights import Trained

__all__ = ["ensemble"]

#: the smallest mean probability kept before the log (float32 normal numbers go down to 1.2e-38)
_FLOOR = 1e-30


def ensemble(members: Sequence[Trained], names: Sequence[str], activation: str = "softmax") -> Trained:
    """The members' mean as one model (module docstring); the first member's weights and path describe it.

    Args:
        members: the loaded runs, in the order given.
        names: their run ids, for messages.
        activation: ``softmax`` (class outputs); ``sigmoid`` (region outputs, ``model.output: regions``):
            the model outputs ``logit(mean_i sigmoid(model_i(x)))``, whose sigmoid is the mean.

    Raises:
        UserInputError: the members take inputs of different shapes or give different numbers of classes.
    """
    first = members[0].model
    for trained, name in zip(members[1:], names[1:]):
        model = trained.model
        if tuple(model.input_shape[1:]) != tuple(first.input_shape[1:]):
            raise UserInputError(
                f"runs {names[0]} and {name} take different inputs ({tuple(first.input_shape[1:])} vs "
                f"{tuple(model.input_shape[1:])}): ensemble runs of one kind of model (2D or 3D, one patch size)"
            )
        if model.output_shape[-1] != first.output_shape[-1]:
            raise UserInputError(
                f"runs {names[0]} and {name} predict {first.output_shape[-1]} and {model.output_shape[-1]} classes"
            )
    if len(members) == 1:
        return members[0]
    names_used: dict[str, int] = {}
    for i, trained in enumerate(members):  # one graph needs unique names: runs of one builder share theirs
        owner = names_used.setdefault(trained.model.name, id(trained.model))
        if owner != id(trained.model):
            trained.model.name = f"{trained.model.name}_{i}"
            names_used[trained.model.name] = id(trained.model)
    inputs = keras.Input(first.input_shape[1:], name="image")
    logits = [keras.ops.cast(t.model(inputs), "float32") for t in members]
    if activation == "sigmoid":
        mean = keras.ops.mean(keras.ops.stack([keras.ops.sigmoid(x) for x in logits], axis=0), axis=0)
        mean = keras.ops.clip(mean, _FLOOR, 1.0 - 1e-7)
        outputs = keras.ops.log(mean) - keras.ops.log(1.0 - mean)
    else:
        probs = [keras.ops.softmax(x, axis=-1) for x in logits]
        mean = keras.ops.mean(keras.ops.stack(probs, axis=0), axis=0)
        outputs = keras.ops.log(keras.ops.maximum(mean, _FLOOR))
    model = keras.Model(inputs, outputs, name="ensemble")
    return replace(members[0], model=model, notice=None)
