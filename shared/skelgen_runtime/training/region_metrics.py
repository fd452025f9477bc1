"""Mean IoU of a region-output model (``model.output: regions``): its outputs as labels, then Keras's MeanIoU.

:mod:`skelgen_runtime.tasks.volume_regions` states the nesting rule; here it runs in the graph: a
region's probability is above 0.5 exactly when its logit is above 0.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

__all__ = ["RegionMeanIoU", "regions_to_labels"]


def regions_to_labels(logits: tf.Tensor, own: Sequence[int | None], order: Sequence[int]) -> tf.Tensor:
    """Region logits ``(..., R)`` -> training ids ``(...)`` int32 by the nesting rule (painted in ``order``)."""
    logits = tf.convert_to_tensor(logits)
    out = tf.zeros(tf.shape(logits)[:-1], tf.int32)
    for r in order:
        label = own[r]
        if label is not None:
            out = tf.where(logits[..., r] > 0, tf.constant(int(label), tf.int32), out)
    return out


@keras.saving.register_keras_serializable(package="skelgen")
class RegionMeanIoU(keras.metrics.MeanIoU):
    """Keras's ``MeanIoU`` of the labels that region logits give (``own``, ``order``: the release's
    :class:`~skelgen_runtime.tasks.volume_regions.RegionTable`)."""

    def __init__(
        self, num_classes: int, *, own: Sequence[int | None], order: Sequence[int], name: str = "miou", **kwargs: Any
    ) -> None:
        kwargs.pop("sparse_y_pred", None)
        super().__init__(num_classes=num_classes, sparse_y_pred=True, name=name, **kwargs)
        self.own, self.order = [None if o is None else int(o) for o in own], [int(r) for r in order]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().update_state(y_true, regions_to_labels(y_pred, self.own, self.order), sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "own": self.own, "order": self.order}
