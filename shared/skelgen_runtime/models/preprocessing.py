"""A backbone's own input preprocessing as the first layer of the model.

Every pipeline of a project hands the model RGB images as float32 in ``[0, 255]`` when the backbone
brings its own preprocessing (``data.mean`` / ``data.std`` are then ``null``), so training,
evaluation, prediction and every export run the same conversion, inside the graph.
:class:`ApplicationPreprocessing` is that conversion for the ``keras.applications`` families: it
calls the family's own ``preprocess_input``, e.g.

- ``resnet50``: caffe style: RGB -> BGR, the ImageNet mean subtracted per channel, still 0-255;
- ``mobilenet_v2``: ``x / 127.5 - 1``, i.e. ``[-1, 1]``;
- ``efficientnet``: nothing (the model rescales and normalises in its own graph).
"""

from __future__ import annotations

import importlib

import keras

__all__ = ["ApplicationPreprocessing"]


@keras.saving.register_keras_serializable(package="skelgen")
class ApplicationPreprocessing(keras.layers.Layer):
    """``keras.applications.<family>.preprocess_input`` as a layer.

    Args:
        family: the module under ``keras.applications`` whose ``preprocess_input`` converts the
            input, e.g. ``"resnet50"``, ``"mobilenet_v2"``, ``"efficientnet"``.

    Input: float ``(B, H, W, 3)`` RGB in ``[0, 255]``. Output: float32, what that family's
    pretrained weights were trained on. Computed in float32 whatever the dtype policy.
    """

    def __init__(self, family: str, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.family = family
        self._preprocess = importlib.import_module(f"keras.applications.{family}").preprocess_input

    def call(self, images):
        images = keras.ops.cast(images, "float32")
        return self._preprocess(images, data_format="channels_last")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "family": self.family}
