"""Backbones: image -> feature maps at increasing strides, for every model of this project.

Owner: you. skelgen update never changes this file once it exists.

A backbone is a function ``(inputs, *, base_filters, depth, weights) -> list of tensors`` returning
feature maps from the highest resolution to the lowest, each half the size of the one before.
Add your own with ``@BACKBONES.register("name")``; pick one with ``model.backbone`` in the config.

Input conventions. A backbone that normalises its own input sets the attribute
``input_preprocessing`` (a description of what it does): the pipelines then hand it RGB float32 in
``[0, 255]`` and ``data.mean``/``data.std`` are refused. The ``keras.applications`` backbones below
do this: the family's own ``preprocess_input`` is the model's first layer, so training, evaluation,
prediction and every export feed the pretrained weights what they were trained on. Any other
backbone (``simple``) gets ``(x / 255 - data.mean) / data.std`` from the pipeline.

The keras-hub backbones (``hub_*``) work the same way with keras-hub's image converter; their
``model.weights`` is a keras-hub preset name or a local preset folder.

``model.weights``: null (random init), ``imagenet`` (Keras's file in ``~/.keras/models``; offline,
import it first with ``skelgen weights import FILE --backbone NAME``), the path of a weights file, or
a saved model (``.keras``, e.g. another run's ``models/RUN/final.keras``) whose ``encoder`` layers
are taken: pretrain the backbone in one project, fine-tune it in another.
"""

from __future__ import annotations

import keras
from keras import layers

from skelgen_runtime.config import registry_key
from skelgen_runtime.errors import ConfigError
from skelgen_runtime.models import (  # noqa: F401 - ApplicationPreprocessing: registered for loading
    HUB_BACKBONES,
    ApplicationPreprocessing,
    application_backbone,
    hub_backbone,
    is_saved_model,
    load_encoder_from_model,
)
from skelgen_runtime.registry import Registry

__all__ = ["BACKBONES", "Backbone", "conv_block"]

BACKBONES = Registry("backbone")
#: a builder keyword's type: the name of a registered backbone (checked with the config, closest name suggested)
Backbone = registry_key(BACKBONES)


def conv_block(x, filters: int, name: str, convs: int = 2):
    """``convs`` x (3x3 conv -> batch norm -> ReLU), layers named ``NAME.convK``, ``NAME.bnK``, ``NAME.reluK``."""
    for k in range(1, convs + 1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}.conv{k}")(x)
        # synchronized: under train.distribute, statistics of the global batch (as on one device)
        x = layers.BatchNormalization(synchronized=True, name=f"{name}.bn{k}")(x)
        x = layers.ReLU(name=f"{name}.relu{k}")(x)
    return x


@BACKBONES.register("simple")
def simple(inputs, *, base_filters: int = 16, depth: int = 4, weights=None):
    """Plain VGG-style encoder: ``depth + 1`` stages at strides 1, 2, ..., 2**depth, filters doubling.

    Its layers are named ``encoder.stageK.*``. ``weights``: a saved model (``.keras``) with this backbone,
    e.g. ``models/RUN/final.keras`` of a run of another task: its ``encoder.*`` layers' weights are taken.
    """
    if weights is not None and not is_saved_model(weights):
        raise ConfigError(f"model.weights: the 'simple' backbone takes weights from a saved model (.keras, e.g. "
                          f"models/RUN/final.keras of another run), not {weights!r}")
    features, x = [], inputs
    for stage in range(depth + 1):
        if stage:
            x = layers.MaxPooling2D(2, name=f"encoder.stage{stage}.pool")(x)
        x = conv_block(x, base_filters * 2**stage, name=f"encoder.stage{stage}")
        features.append(x)
    if weights is not None:
        first = keras.Model(inputs, features).layers
        first[1].pretrained = {"backbone": "simple", **load_encoder_from_model(first, weights)}  # for run.json
    return features


simple.max_stride = lambda model: 2 ** model.depth  # checked against data.image_size with the config


# keras.applications without their tops, features at strides 2, 4, 8, 16, 32 (skelgen_runtime.models.APPLICATIONS)
for _name in ("mobilenetv2", "resnet50", "efficientnetb0"):
    BACKBONES.register(_name)(application_backbone(_name))
# keras-hub (the skelgen-tf[hub] extra, imported only when chosen): hub_resnet18, hub_mit_b0 (skelgen_runtime.models.hub)
for _name in HUB_BACKBONES:
    BACKBONES.register(_name)(hub_backbone(_name))
