"""keras-hub models: its backbones (ResNet, MiT) for every task, and its segmenters (DeepLabV3+, SegFormer).

keras-hub is the optional extra ``skelgen-tf[hub]``; it is imported only when a config names one of
these backbones or models (this module imports Keras, not keras-hub) (a project without it fails when its config is read, naming the pip
command). Each backbone:

- starts with keras-hub's own image converter (its ``scale`` and ``offset``: ImageNet's mean and std
  for these families, or the preset's converter when ``model.weights`` is a preset), so it takes RGB
  float32 in ``[0, 255]`` like the ``keras.applications`` backbones (``data.mean``/``data.std`` are
  refused);
- is one layer named ``encoder`` (:class:`HubEncoder`) returning its ``pyramid_outputs`` (strides 4 to 32), so the
  project's U-Net, classifier and CenterNet take it as they take any backbone, and fine-tuning
  freezes it;
- ``weights``: ``None`` (random init from the architecture below), a keras-hub preset name (downloaded
  by keras-hub through Kaggle, so not here), or a local preset folder (``config.json``,
  ``model.weights.h5``, ``metadata.json``: what ``Backbone.save_to_preset(DIR)`` writes).

Architectures: ResNet-18 v1 (He et al. 2016: basic blocks 2-2-2-2, 64-512 filters; keras-hub's
``resnet_18_imagenet`` config) and MiT-B0 (Xie et al. 2021, SegFormer: depths 2-2-2-2, dims
32-64-160-256; keras-hub's ``mit_b0_ade20k_512`` config).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

import keras

from skelgen_runtime.errors import ConfigError, WeightsError, did_you_mean
from skelgen_runtime.models.applications import ENCODER
from skelgen_runtime.models.extras import import_for, require_keras_hub
from skelgen_runtime.models.pretrained import Weights

__all__ = [
    "HUB_BACKBONES",
    "HubBackbone",
    "HubEncoder",
    "require_keras_hub",
    "hub_backbone",
    "build_deeplabv3plus",
    "build_segformer",
    "PRESET_FILES",
    "import_for",
]

#: files a keras-hub backbone preset folder must hold (``save_to_preset`` writes them)
PRESET_FILES = ("config.json", "model.weights.h5", "metadata.json")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class HubBackbone:
    """A keras-hub backbone: its class under ``keras_hub.models`` and the architecture of a random init."""

    name: str
    cls: str
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""


HUB_BACKBONES: dict[str, HubBackbone] = {
    b.name: b
    for b in (
        HubBackbone(
            "hub_resnet18",
            "ResNetBackbone",
            {
                "input_conv_filters": [64],
                "input_conv_kernel_sizes": [7],
                "stackwise_num_filters": [64, 128, 256, 512],
                "stackwise_num_blocks": [2, 2, 2, 2],
                "stackwise_num_strides": [1, 2, 2, 2],
                "block_type": "basic_block",
                "use_pre_activation": False,
            },
            "keras-hub ResNet-18 (v1, basic blocks)",
        ),
        HubBackbone(
            "hub_mit_b0",
            "MiTBackbone",
            {
                "layerwise_depths": [2, 2, 2, 2],
                "num_layers": 4,
                "layerwise_num_heads": [1, 2, 5, 8],
                "layerwise_sr_ratios": [8, 4, 2, 1],
                "max_drop_path_rate": 0.1,
                "layerwise_patch_sizes": [7, 3, 3, 3],
                "layerwise_strides": [4, 2, 2, 2],
                "hidden_dims": [32, 64, 160, 256],
            },
            "keras-hub MiT-B0 (the SegFormer encoder)",
        ),
    )
}


#: the backbones DeepLabV3+ and SegFormer take (config values validated against these; built from the
#: table, so a static checker sees plain strings)
if TYPE_CHECKING:
    ResNetName = str
    MiTName = str
else:
    ResNetName = Literal[tuple(k for k, v in HUB_BACKBONES.items() if v.cls == "ResNetBackbone")]
    MiTName = Literal[tuple(k for k, v in HUB_BACKBONES.items() if v.cls == "MiTBackbone")]


def _is_preset_name(weights: str) -> bool:
    return re.fullmatch(r"[a-z0-9_]+", weights) is not None and not Path(weights).exists()


def _load_network(spec: HubBackbone, weights: str | None, input_shape: Sequence[int]):
    """The keras-hub backbone of ``spec``: random, or from a preset (name or folder); and its converter."""
    keras_hub = require_keras_hub(f"model.backbone {spec.name!r}")
    cls = getattr(keras_hub.models, spec.cls)
    if weights is None:
        return cls(**spec.config, image_shape=tuple(input_shape)), None
    if _is_preset_name(weights):
        if weights not in cls.presets:
            raise WeightsError(
                f"model.weights: {weights!r} is not a keras-hub preset of {spec.cls}; known: "
                f"{', '.join(sorted(cls.presets))}{did_you_mean(weights, cls.presets)}"
            )
        source = weights
    else:
        folder = Path(weights).expanduser()
        missing = [f for f in PRESET_FILES if not (folder / f).is_file()]
        if not folder.is_dir() or missing:
            raise WeightsError(
                f"model.weights: {folder} is not a keras-hub preset folder: "
                + (f"{', '.join(missing)} missing" if folder.is_dir() else "no such folder")
                + " (Backbone.save_to_preset(DIR) writes one)"
            )
        source = str(folder)
    try:
        network = cls.from_preset(source, image_shape=tuple(input_shape))
    except Exception as err:  # noqa: BLE001 - a download refused offline, a preset of another class, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (
            (
                " keras-hub downloads named presets from Kaggle: on a machine with internet run "
                f"keras_hub.models.{spec.cls}.from_preset({weights!r}).save_to_preset(DIR), copy DIR here and "
                "set model.weights: DIR"
            )
            if source == weights and _is_preset_name(weights)
            else ""
        )
        raise WeightsError(
            f"model.weights: keras-hub could not load {source!r} as {spec.cls} ({first}).{hint}"
        ) from None
    converter = None
    if not _is_preset_name(weights) and (Path(source) / "image_converter.json").is_file():
        converter = keras_hub.layers.ImageConverter.from_preset(source)
    return network, converter


def _converter(converter, name: str):
    """keras-hub's image converter inside the model: the preset's scale and offset, else ImageNet's."""
    keras_hub = require_keras_hub(name)
    if converter is not None:
        config = {**converter.get_config(), "image_size": None, "name": f"{ENCODER}.preprocess"}
        return keras_hub.layers.ImageConverter(**{k: v for k, v in config.items() if k not in ("dtype",)})
    return keras_hub.layers.ImageConverter(
        image_size=None,
        scale=[1.0 / (255.0 * s) for s in _IMAGENET_STD],
        offset=[-m / s for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD)],
        name=f"{ENCODER}.preprocess",
    )


@keras.saving.register_keras_serializable(package="skelgen")
class HubEncoder(keras.layers.Layer):
    """A keras-hub backbone's ``pyramid_outputs`` at strides 4..32 (finest first), as one layer.

    The backbone is kept whole, so it saves and loads through its own config (a plain functional model
    over its inner layers would serialise those one by one, which not all keras-hub layers support).
    """

    def __init__(self, backbone, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        self.backbone = backbone
        self.levels = [k for k in sorted(backbone.pyramid_outputs, key=lambda k: int(k[1:])) if int(k[1:]) >= 2]
        self.pyramid = keras.Model(backbone.inputs, [backbone.pyramid_outputs[k] for k in self.levels])

    def call(self, images):
        return list(self.pyramid(images))

    def compute_output_shape(self, input_shape):
        return [tuple(t.shape) for t in self.pyramid.outputs]

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": keras.saving.serialize_keras_object(self.backbone)}


def hub_backbone(name: str) -> Callable:
    """The backbone function of ``HUB_BACKBONES[name]`` (see the module docstring)."""
    spec = HUB_BACKBONES[name]

    def backbone(inputs, *, base_filters: int = 16, depth: int = 4, weights: str | None = None) -> list[Any]:
        input_shape = tuple(int(d) for d in inputs.shape[1:])
        network, converter = _load_network(spec, weights, input_shape)
        encoder = HubEncoder(network, name=ENCODER)
        if weights is not None:
            encoder.pretrained = {"backbone": name, "weights": str(weights)}
        return list(encoder(_converter(converter, name)(inputs)))

    backbone.__name__ = backbone.__qualname__ = name
    backbone.__doc__ = f"{spec.description}: features at strides 4-32; input RGB 0-255, converted inside the model."
    described: Any = backbone  # what config validation reads off a backbone (skelgen_runtime.models)
    described.input_preprocessing = (
        "keras-hub's ImageConverter (scale and offset: ImageNet's mean and std, or the preset's)"
    )
    described.max_stride = 32
    described.requires = "keras_hub"
    return backbone


def _head(features, num_classes: int, input_shape: Sequence[int], factor: int):
    from keras import layers

    logits = layers.Conv2D(num_classes, 1, name="head.logits")(features)
    if factor > 1:
        logits = layers.UpSampling2D(factor, interpolation="bilinear", name="head.up")(logits)
    return layers.Activation("linear", dtype="float32", name="head.float32")(logits)  # float32 under mixed precision


def build_deeplabv3plus(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    backbone: ResNetName = "hub_resnet18",
    weights: Weights = None,
    dilation_rates: tuple[int, ...] = (6, 12, 18),
    projection_filters: int = 48,
    name: str = "deeplabv3plus",
):
    """DeepLabV3+ (Chen et al. 2018) from keras-hub on a keras-hub backbone: ASPP on the stride-32
    features, fused with the stride-4 ones, logits upsampled to the input. ``(B, H, W, 3)`` RGB 0-255 ->
    logits ``(B, H, W, num_classes)``."""
    keras_hub = require_keras_hub(f"model.name {name!r}")
    if backbone not in HUB_BACKBONES or HUB_BACKBONES[backbone].cls != "ResNetBackbone":
        raise ConfigError(
            f"model.backbone: DeepLabV3+ takes a keras-hub ResNet ({', '.join(k for k, v in HUB_BACKBONES.items() if v.cls == 'ResNetBackbone')}), not {backbone!r}"
        )
    network, converter = _load_network(HUB_BACKBONES[backbone], weights, input_shape)
    deeplab = keras_hub.models.DeepLabV3Backbone(
        image_encoder=network,
        spatial_pyramid_pooling_key="P5",
        upsampling_size=8,
        dilation_rates=list(dilation_rates),
        low_level_feature_key="P2",
        projection_filters=projection_filters,
        image_shape=tuple(input_shape),
        name="decoder",
    )
    inputs = keras.Input(input_shape, name="image")
    features = deeplab(_converter(converter, backbone)(inputs))
    if weights is not None:
        deeplab.pretrained = {"backbone": backbone, "weights": str(weights)}
    outputs = _head(features, num_classes, input_shape, input_shape[0] // int(features.shape[1]))
    return keras.Model(inputs, outputs, name=name)


def build_segformer(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    backbone: MiTName = "hub_mit_b0",
    weights: Weights = None,
    projection_filters: int = 256,
    name: str = "segformer",
):
    """SegFormer (Xie et al. 2021) from keras-hub on a MiT encoder: the all-MLP decoder fuses the four
    stages at stride 4, logits upsampled to the input. ``(B, H, W, 3)`` RGB 0-255 -> ``(B, H, W, num_classes)``."""
    keras_hub = require_keras_hub(f"model.name {name!r}")
    if backbone not in HUB_BACKBONES or HUB_BACKBONES[backbone].cls != "MiTBackbone":
        raise ConfigError(
            f"model.backbone: SegFormer takes a MiT encoder ({', '.join(k for k, v in HUB_BACKBONES.items() if v.cls == 'MiTBackbone')}), not {backbone!r}"
        )
    network, converter = _load_network(HUB_BACKBONES[backbone], weights, input_shape)
    segformer = keras_hub.models.SegFormerBackbone(
        image_encoder=network, projection_filters=projection_filters, name="decoder"
    )
    inputs = keras.Input(input_shape, name="image")
    features = segformer(_converter(converter, backbone)(inputs))
    if weights is not None:
        segformer.pretrained = {"backbone": backbone, "weights": str(weights)}
    outputs = _head(features, num_classes, input_shape, input_shape[0] // int(features.shape[1]))
    return keras.Model(inputs, outputs, name=name)
