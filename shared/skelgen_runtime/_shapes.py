"""``tf.ensure_shape`` that adds no op when the static shape already says as much.

Inside a ``tf.data`` function every op runs once per example; a split whose images share one size
(``dataset_info.json``) gives its tensors static shapes from the decoder on, and checking them again
at every step would only cost time.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["ensure_shape"]


def ensure_shape(tensor: Any, shape: Sequence[int | None]) -> Any:
    """``tensor`` itself when its static shape is at least as specific as ``shape``, else ``tf.ensure_shape``."""
    import tensorflow as tf

    known = tensor.shape
    if known.rank == len(shape) and all(want is None or have == want for have, want in zip(known.as_list(), shape)):
        return tensor
    return tf.ensure_shape(tensor, shape)
