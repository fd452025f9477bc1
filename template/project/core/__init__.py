"""This project's models. Register new architectures in ``MODELS``; pick one with ``model.name``."""

from __future__ import annotations

import keras

from core.unet import build_unet
from skelgen_runtime.registry import Registry

__all__ = ["MODELS", "build_model"]

MODELS = Registry("model")
MODELS.register("unet")(build_unet)


def build_model(model_cfg, *, num_classes: int, input_shape: tuple[int, int, int]) -> keras.Model:
    """Build the model named by ``model_cfg.name`` from the config's ``model`` section."""
    return MODELS.get(model_cfg.name)(
        input_shape,
        num_classes,
        backbone=model_cfg.backbone,
        base_filters=model_cfg.base_filters,
        depth=model_cfg.depth,
        dropout=model_cfg.dropout,
        weights=model_cfg.weights,
    )
