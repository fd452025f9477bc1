"""Backbones made of ``keras.applications`` networks: their preprocessing inside, their weights loaded.

:func:`application_backbone` turns an entry of :data:`~skelgen_runtime.models.applications.APPLICATIONS`
into a backbone function (the conventions are in :mod:`skelgen_runtime.models.applications`); the
weights come through :mod:`skelgen_runtime.models.pretrained`. Keras is imported when a backbone is
built, not with this module.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from skelgen_runtime.models.applications import APPLICATIONS, ENCODER
from skelgen_runtime.models.pretrained import is_saved_model, load_backbone_weights, load_encoder_from_model

__all__ = ["application_backbone"]


def application_backbone(name: str, *, feature_layers: Sequence[str] | None = None) -> Callable:
    """The backbone function of ``APPLICATIONS[name]`` (see the module docstring).

    Args:
        name: a key of :data:`APPLICATIONS`.
        feature_layers: other layers to return (strides 2..32 by default).
    """
    app = APPLICATIONS[name]
    layers_out = tuple(feature_layers or app.feature_layers)

    def backbone(inputs, *, base_filters: int = 16, depth: int = 4, weights: str | None = None) -> list[Any]:
        import keras

        from skelgen_runtime.models.preprocessing import ApplicationPreprocessing  # imports Keras

        input_shape = tuple(int(d) for d in inputs.shape[1:])
        network = getattr(keras.applications, app.constructor)(include_top=False, weights=None, input_shape=input_shape)
        source = None
        if weights is not None and not is_saved_model(weights):
            source = load_backbone_weights(network, app, weights, input_shape)
        encoder = keras.Model(network.input, [network.get_layer(n).output for n in layers_out], name=ENCODER)
        if weights is not None and is_saved_model(weights):  # another run's model: its encoder
            source = {"backbone": app.name, **load_encoder_from_model([encoder], weights)}
        encoder.pretrained = source  # what the run record says about these weights
        x = ApplicationPreprocessing(app.family, name=f"{ENCODER}.preprocess")(inputs)
        return list(encoder(x))

    backbone.__name__ = backbone.__qualname__ = name
    backbone.__doc__ = (
        f"keras.applications.{app.constructor} without its top, features at strides 2-32; input RGB "
        f"0-255, preprocessed inside the model ({app.convention})."
    )
    described: Any = backbone  # what config validation reads off a backbone (skelgen_runtime.models)
    described.input_preprocessing = f"keras.applications.{app.family}.preprocess_input ({app.convention})"
    described.max_stride = 32
    return backbone
