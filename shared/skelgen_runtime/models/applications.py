"""``keras.applications`` models as backbones: what each one needs, as data (the factory is
:func:`skelgen_runtime.models.encoders.application_backbone`).

A backbone (the project's ``core/backbones.py`` registers them) is a function
``(inputs, *, base_filters, depth, weights) -> [feature maps]`` from the highest resolution to the
lowest. :func:`~skelgen_runtime.models.encoders.application_backbone` makes one from an entry of :data:`APPLICATIONS`:

- the model's first layer is the family's own preprocessing (:class:`~skelgen_runtime.models.
  preprocessing.ApplicationPreprocessing`), so it takes RGB float32 in ``[0, 255]``;
- the ``keras.applications`` network is one nested model named ``encoder`` whose outputs are the
  feature maps at strides 2, 4, 8, 16 and 32 (``freeze_backbone_epochs`` freezes exactly it);
- ``weights`` is ``None`` (random init), ``"imagenet"`` (Keras's file in ``~/.keras/models``,
  see :mod:`skelgen_runtime.models.pretrained`), the path of a weights file, or a saved ``.keras``
  model whose ``encoder`` is taken, loaded before the model is used; a file that does not fit is an
  error, never a silent partial load.

This module imports Keras only inside the functions that build models (the CLI reads the table).
The weight file names and MD5 hashes are those of Keras 3's own sources
(``keras/src/applications/{resnet,mobilenet_v2,efficientnet}.py``, ``WEIGHTS_HASHES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

__all__ = ["Application", "APPLICATIONS", "input_preprocessing", "ENCODER"]

#: the name of the nested model that holds a pretrained backbone (and nothing else)
ENCODER = "encoder"

_MOBILENET_ROWS = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class Application:
    """One ``keras.applications`` family member.

    Attributes:
        name: the backbone's name in configs (``model.backbone``).
        constructor: the name of the builder in ``keras.applications`` (``"ResNet50"``).
        family: the module of its ``preprocess_input`` (``keras.applications.<family>``).
        convention: what that preprocessing does, for messages and the README's model table.
        feature_layers: layer names giving strides 2, 4, 8, 16, 32.
        weights_url: the folder Keras downloads its ImageNet files from.
        md5: file name -> the MD5 that Keras checks (empty where Keras checks none).
    """

    name: str
    constructor: str
    family: str
    convention: str
    feature_layers: tuple[str, ...]
    weights_url: str
    md5: dict[str, str] = field(default_factory=dict)

    def imagenet_files(self) -> tuple[str, ...]:
        """Every ImageNet file name Keras may use for this model without its top."""
        if self.name == "mobilenetv2":
            return tuple(f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{r}_no_top.h5" for r in _MOBILENET_ROWS)
        return tuple(self.md5)

    def imagenet_file(self, input_shape: Sequence[int]) -> str:
        """The ImageNet file Keras loads for an input of ``input_shape`` ``(H, W, 3)`` (MobileNetV2 has
        one per input size, 224 for sizes it has none for, as Keras chooses)."""
        if self.name == "mobilenetv2":
            rows = (
                int(input_shape[0]) if input_shape[0] == input_shape[1] and input_shape[0] in _MOBILENET_ROWS else 224
            )
            return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        return self.imagenet_files()[0]


APPLICATIONS: dict[str, Application] = {
    a.name: a
    for a in (
        Application(
            "mobilenetv2",
            "MobileNetV2",
            "mobilenet_v2",
            "[-1, 1] (x / 127.5 - 1)",
            ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"),
            "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
        ),
        Application(
            "resnet50",
            "ResNet50",
            "resnet50",
            "caffe: BGR, ImageNet mean subtracted, 0-255",
            ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
            "https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
            {"resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5": "4d473c1dd8becc155b73f8504c6f6626"},
        ),
        Application(
            "efficientnetb0",
            "EfficientNetB0",
            "efficientnet",
            "0-255 (rescaled and normalised inside the model)",
            (
                "block2a_expand_activation",
                "block3a_expand_activation",
                "block4a_expand_activation",
                "block6a_expand_activation",
                "top_activation",
            ),
            "https://storage.googleapis.com/keras-applications/",
            {"efficientnetb0_notop.h5": "50bc09e76180e00e4465e1a485ddc09d"},
        ),
    )
}


def input_preprocessing(backbone: Callable) -> str | None:
    """What a backbone does to its input itself (e.g. ``"keras.applications.resnet50.preprocess_input
    (caffe: ...)"``), or None for a backbone that takes images normalised with ``data.mean``/``data.std``."""
    return getattr(backbone, "input_preprocessing", None)
