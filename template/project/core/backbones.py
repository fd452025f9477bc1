"""Backbones: image -> feature maps at increasing strides, for every model of this project.

Owner: you. skelgen update never changes this file once it exists.

A backbone is a function ``(inputs, *, base_filters, depth, weights) -> list of tensors`` returning
feature maps from the highest resolution to the lowest, each half the size of the one before.
Add your own with ``@BACKBONES.register("name")``; pick one with ``model.backbone`` in the config.

``keras.applications`` backbones build with ``weights=None`` (random init) unless the config asks for
``imagenet``, which downloads the weights once into ``~/.keras``.
"""

from __future__ import annotations

import keras
from keras import layers

from skelgen_runtime.registry import Registry

__all__ = ["BACKBONES", "conv_block"]

BACKBONES = Registry("backbone")


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
    """Plain VGG-style encoder: ``depth + 1`` stages at strides 1, 2, ..., 2**depth, filters doubling."""
    if weights is not None:
        raise ValueError("the 'simple' backbone has no pretrained weights; set model.weights: null")
    features, x = [], inputs
    for stage in range(depth + 1):
        if stage:
            x = layers.MaxPooling2D(2, name=f"encoder.stage{stage}.pool")(x)
        x = conv_block(x, base_filters * 2**stage, name=f"encoder.stage{stage}")
        features.append(x)
    return features


def _application(builder, feature_layers: list[str]):
    """Wrap a ``keras.applications`` model as a backbone returning ``feature_layers`` (strides 2..32)."""

    def backbone(inputs, *, base_filters: int = 16, depth: int = 4, weights=None):
        model = builder(include_top=False, weights=weights, input_tensor=inputs)
        return [model.get_layer(name).output for name in feature_layers]

    return backbone


BACKBONES.register("mobilenetv2")(
    _application(
        keras.applications.MobileNetV2,
        ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"],
    )
)
BACKBONES.register("resnet50")(
    _application(
        keras.applications.ResNet50,
        ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"],
    )
)
BACKBONES.register("efficientnetb0")(
    _application(
        keras.applications.EfficientNetB0,
        ["block2a_expand_activation", "block3a_expand_activation", "block4a_expand_activation",
         "block6a_expand_activation", "top_activation"],
    )
)
