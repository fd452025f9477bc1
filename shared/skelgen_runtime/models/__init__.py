"""Models from the library's side: pretrained backbones, their input conventions and their weights.

- :mod:`skelgen_runtime.models.applications`: ``keras.applications`` backbones as data (the table);
  :mod:`skelgen_runtime.models.encoders`: :func:`application_backbone`, each with its own
  preprocessing inside the model.
- :mod:`skelgen_runtime.models.preprocessing`: that preprocessing as a Keras layer (imports Keras).
- :mod:`skelgen_runtime.models.hub`: keras-hub backbones (ResNet, MiT) and segmenters (DeepLabV3+,
  SegFormer), imported only when a config names one (the ``hub`` extra).
- :mod:`skelgen_runtime.models.pretrained`: ``model.weights`` (``imagenet`` offline, weight files),
  ``skelgen weights import``.
- :func:`check_backbone_input`: who normalises the images (``data.mean``/``data.std`` or the backbone),
  and whether ``data.image_size`` fits the backbone's strides.

Importing this package does not import TensorFlow or Keras.
"""

from __future__ import annotations

from typing import Any

from skelgen_runtime.models.applications import APPLICATIONS, ENCODER, input_preprocessing
from skelgen_runtime.models.encoders import application_backbone
from skelgen_runtime.models.extras import INSTALL_HUB
from skelgen_runtime.models.pretrained import (
    IMAGENET,
    Weights,
    check_weights_spec,
    import_weights,
    is_saved_model,
    keras_models_dir,
    load_encoder_from_model,
)

__all__ = [
    "ApplicationPreprocessing",
    "HUB_BACKBONES",
    "build_deeplabv3plus",
    "build_segformer",
    "hub_backbone",
    "APPLICATIONS",
    "ENCODER",
    "IMAGENET",
    "application_backbone",
    "input_preprocessing",
    "check_weights_spec",
    "import_weights",
    "keras_models_dir",
    "is_saved_model",
    "load_encoder_from_model",
    "check_backbone_input",
    "pretrained_sources",
    "Weights",
]


def check_backbone_input(data, model, backbones) -> None:
    """Decide, once, who normalises the images: the pipeline (``data.mean``/``data.std``) or the model;
    and check that ``data.image_size`` is divisible by the backbone's largest stride.

    The stride is the backbone's attribute ``max_stride``: an int, or a function of the ``model``
    section (``simple``: ``2 ** model.depth``); backbones without one are not checked here. A backbone
    whose ``requires`` names a module that is not installed (keras-hub) is refused with the pip command.

    A backbone that brings its own preprocessing (:func:`input_preprocessing`) gets RGB in ``[0, 255]``:
    ``data.mean`` and ``data.std`` become ``None``, and setting them is refused (they would be applied
    on top of the backbone's own conversion). Any other backbone gets ``(x / 255 - mean) / std`` from
    the pipeline (ImageNet's mean and std by default; ``null`` hands it ``[0, 255]`` too).

    Args:
        data: the config's ``data`` section (changed in place).
        model: the ``model`` section; its ``backbone`` (if it has one) is looked up in ``backbones``.
        backbones: the project's backbone registry.

    Raises:
        ValueError: mean or std set for a backbone that preprocesses its own input (the message says why),
            or an image size the backbone cannot take.
    """
    name = getattr(model, "backbone", None)
    if name is None or name not in backbones:
        return
    backbone = backbones.get(name)
    requires = getattr(backbone, "requires", None)
    if requires is not None:
        import importlib.util

        if importlib.util.find_spec(requires) is None:
            raise ValueError(f"model.backbone {name!r} needs keras-hub, which is not installed: {INSTALL_HUB}")
    stride = getattr(backbone, "max_stride", None)
    stride = stride(model) if callable(stride) else stride
    size = getattr(data, "image_size", None)
    if stride and size is not None and getattr(data, "mode", "2d") == "2d" and any(int(s) % stride for s in size):
        fit = [max(stride, round(int(s) / stride) * stride) for s in size]
        raise ValueError(
            f"data.image_size {list(size)}: backbone {name!r} halves the image down to stride {stride}, "
            f"so both sides must be divisible by {stride} (e.g. {fit})"
        )
    own = input_preprocessing(backbone)
    if own is None:
        return
    given = [k for k in ("mean", "std") if getattr(data, k) is not None and k in data.model_fields_set]
    if given:
        raise ValueError(
            f"data.{' and data.'.join(given)}: backbone {name!r} normalises its input itself, inside the model "
            f"({own}); the pipeline hands it RGB in [0, 255], so data.mean/data.std would be applied twice. "
            "Remove them (or set them to null)"
        )
    object.__setattr__(data, "mean", None)
    object.__setattr__(data, "std", None)


def pretrained_sources(model) -> list[dict]:
    """What each pretrained part of ``model`` was loaded from (the backbone, ``imagenet`` or the file, its
    SHA-256): the ``pretrained`` attribute that :func:`application_backbone` leaves on its encoder."""
    return [layer.pretrained for layer in getattr(model, "layers", ()) if getattr(layer, "pretrained", None)]


#: name -> the submodule that defines it: keras-hub's models and the preprocessing layer import Keras,
#: so they are imported on first use (PEP 562) and importing this package stays cheap
_LAZY = {
    "ApplicationPreprocessing": "preprocessing",
    "HUB_BACKBONES": "hub",
    "build_deeplabv3plus": "hub",
    "build_segformer": "hub",
    "hub_backbone": "hub",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
