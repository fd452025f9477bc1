"""The order every image pipeline shares, tuned once (:class:`~skelgen_runtime.data.images.ImagePipeline`).

- with ``data.cache`` on: read and decode, *prepare* (the deterministic part, uint8 at model size) in
  the same map, cache, shuffle the cached examples, *randomize* (augment and finalize, one map), batch,
  normalise the batch, prefetch; the cache holds uint8 examples at model size;
- with it off (datasets larger than memory): shuffle the *serialised records* (small byte strings,
  not decoded images), then parse, decode, prepare and randomize as one function, batch, normalise,
  prefetch;
- per batch: one multiply-add, compiled by XLA into one pass, normalises the uint8 inputs
  (:func:`~skelgen_runtime.preprocessing.image.normalize_batch`), and integer targets (uint8 label
  maps) become int32.

A *read* function is ``read(shuffle_records, then)``: the split's records, their serialised form
shuffled in a buffer of ``shuffle_records`` first (0: not), each decoded and passed to ``then`` in one
map (:func:`skelgen_runtime.records.reader.read_split`'s ``then``): one function per example rather
than a chain that tf.data must fuse.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["train_batches", "eval_batches", "normalised", "options"]

Read = Callable[[int, Callable], Any]


def normalised(data_cfg) -> Callable:
    """The per-batch step: inputs normalised, integer targets (label maps kept uint8 per example) as int32.

    uint8 inputs are normalised by :func:`~skelgen_runtime.preprocessing.image.normalize_batch` compiled
    with XLA: one pass over the batch instead of TensorFlow's three (cast, multiply, add, each broadcasting
    over a last axis of 3): 6 instead of 100 us per 128x128 image on this CPU, the same values within
    float rounding (2.4e-7).
    """
    import tensorflow as tf

    from skelgen_runtime.preprocessing.image import normalize_batch

    mean, std = (None if v is None else tuple(float(x) for x in v) for v in (data_cfg.mean, data_cfg.std))
    fused = _compiled(mean, std)

    def batch(inputs, targets):
        if isinstance(targets, tf.Tensor) and targets.dtype.is_integer and targets.dtype != tf.int32:
            targets = tf.cast(targets, tf.int32)
        if fused is not None and isinstance(inputs, tf.Tensor) and inputs.dtype == tf.uint8:
            return fused(inputs), targets
        return normalize_batch(inputs, data_cfg.mean, data_cfg.std), targets

    return batch


@functools.lru_cache(maxsize=8)
def _compiled(mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> Callable | None:
    """:func:`~skelgen_runtime.preprocessing.image.normalize_batch` for ``mean``/``std`` compiled by XLA, tried
    once on a pixel per process and statistics (None where this TensorFlow cannot compile it)."""
    import tensorflow as tf

    from skelgen_runtime.preprocessing.image import normalize_batch
    from skelgen_runtime.startup import native_log_filter

    def normalise(images):
        return normalize_batch(images, mean, std)

    fused = tf.function(normalise, jit_compile=True)
    try:
        with native_log_filter():  # XLA announces itself on its first use, in informational log lines
            fused(tf.zeros([1, 1, 1, 3], tf.uint8))
    except (tf.errors.OpError, ValueError):
        return None
    return fused


def options():
    """The ``tf.data`` options of every batched pipeline."""
    import tensorflow as tf

    opts = tf.data.Options()
    opts.experimental_optimization.map_fusion = True  # a project's extra maps join the example function
    return opts


def train_batches(
    read: Read, *, prepare: Callable, randomize: Callable, data_cfg, seed: int | None = None, repeat: bool = False
) -> Any:
    """Shuffled, augmented batches of ``(inputs float32 normalised, targets)`` (module docstring).

    Args:
        read: ``read(shuffle_records, then)`` (module docstring).
        prepare: one decoded example -> its deterministic, cacheable form.
        randomize: a prepared example -> ``(inputs uint8 (or float normalised), targets)``.
    """
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    if data_cfg.cache:
        ds = read(0, prepare).cache().shuffle(data_cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.map(randomize, num_parallel_calls=auto)
    else:
        ds = read(data_cfg.shuffle_buffer, lambda e: randomize(prepare(e)))
        if repeat:
            ds = ds.repeat()
    ds = ds.batch(data_cfg.batch_size, drop_remainder=True).map(normalised(data_cfg), num_parallel_calls=auto)
    return ds.prefetch(auto).with_options(options())


def eval_batches(read: Read, *, example: Callable, data_cfg, count: int) -> Any:
    """Deterministic batches of ``(inputs float32 normalised, targets)`` for validation during training.

    Args:
        read: ``read(0, then)`` -> the split's examples in file order (module docstring).
        example: one decoded example -> ``(inputs uint8 (or float normalised), targets)``.
        count: examples in the split (a known length spares Keras a first pass that warns it ran out of data).
    """
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    ds = read(0, example)
    if data_cfg.cache:
        ds = ds.cache()
    ds = ds.apply(tf.data.experimental.assert_cardinality(count)).batch(data_cfg.eval_batch_size)
    ds = ds.map(normalised(data_cfg), num_parallel_calls=auto, deterministic=True)
    return ds.prefetch(auto).with_options(options())
