"""U-Net: a backbone's feature pyramid, decoded by upsampling and concatenating skip connections."""

from __future__ import annotations

import keras
from keras import layers

from core.backbones import BACKBONES, conv_block

__all__ = ["build_unet"]


def build_unet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    backbone: str = "simple",
    base_filters: int = 16,
    depth: int = 4,
    dropout: float = 0.0,
    weights: str | None = None,
    name: str = "unet",
) -> keras.Model:
    """Build a U-Net.

    Args:
        input_shape: ``(height, width, 3)``; both sides divisible by the backbone's largest stride.
        num_classes: output channels (including background).

    Returns:
        A model mapping normalised images ``(B, H, W, 3)`` to logits ``(B, H, W, num_classes)``.
        Layers are named ``encoder.stageK.*``, ``decoder.stageK.*`` and ``head.*``.
    """
    inputs = keras.Input(input_shape, name="image")
    features = BACKBONES.get(backbone)(inputs, base_filters=base_filters, depth=depth, weights=weights)
    x = features[-1]
    if dropout:
        x = layers.Dropout(dropout, name="decoder.dropout")(x)
    for stage in range(len(features) - 2, -1, -1):
        skip = features[stage]
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"decoder.stage{stage}.up")(x)
        x = layers.Concatenate(name=f"decoder.stage{stage}.concat")([x, skip])
        x = conv_block(x, base_filters * 2**stage, name=f"decoder.stage{stage}")
    factor = input_shape[0] // x.shape[1]
    if factor > 1:  # keras.applications backbones start at stride 2
        x = layers.UpSampling2D(factor, interpolation="bilinear", name="head.up")(x)
        x = conv_block(x, base_filters, name="head", convs=1)
    logits = layers.Conv2D(num_classes, 1, name="head.logits")(x)
    return keras.Model(inputs, logits, name=name)
