"""Pipeline rows: the library's pipeline of a generated project (``skelgen_runtime.data``) against a hand-tuned and a naive tf.data pipeline.

The generated pipeline is imported from a project generated into the work folder (so this measures
whatever the template currently renders). The two baselines read the same shards and do comparable
work: decode the JPEG image and PNG label, and for training a random scale in ``augment.scale_min
..scale_max``, a crop back to the model size (padding the label with the ignore value) and a
left-right flip; then normalise ``(x / 255 - mean) / std`` and batch.

- *reference* (hand-tuned): shuffles serialised records, decodes the JPEG at reduced size in the DCT
  domain when the source is at least twice the model size, applies scale, offset and flip as one
  ``crop_and_resize`` box per example, keeps uint8 until batching and normalises whole batches.
- *naive*: one op per map, no parallel calls, no prefetch, float32 from the first resize.

Each measurement builds a fresh ``tf.data`` pipeline, pulls enough warm-up batches to fill the
shuffle buffer (and, with ``data.cache: true``, the cache), then times a fixed number of batches.
"""

from __future__ import annotations

import gc
import importlib
import math
import shutil
import sys
import time
from pathlib import Path

from common import Row, Settings, make_project, median, python, run_timed, write_shapes_split

__all__ = ["pipeline_project", "pipeline_rows"]


def pipeline_project(settings: Settings) -> Path:
    """A generated project with a built shapes dataset (used by the training rows too)."""
    project = make_project(settings.work, "pipe")
    shapes = project / "datasets" / "shapes"
    counts = settings.pick({"train": 800, "val": 96}, {"train": 32, "val": 16})
    size = settings.pick(256, 64)
    cached = write_shapes_split(settings.work / f"pipeline_shapes_{size}", counts, size)
    for folder in ("data", "annotations"):
        shutil.rmtree(shapes / folder, ignore_errors=True)
        shutil.copytree(cached / folder, shapes / folder)
    run_timed(python("datasets/build_shapes_to_tfrecord.py", "--workers", "1"), cwd=project)
    return project


def _normaliser(mean, std):
    import tensorflow as tf

    scale = tf.constant([1 / (255 * s) for s in std], tf.float32)
    offset = tf.constant([-m / s for m, s in zip(mean, std)], tf.float32)
    return lambda images: tf.cast(images, tf.float32) * scale + offset


def _parse(record, ratio: int):
    import tensorflow as tf

    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/segmentation/class/encoded": tf.io.FixedLenFeature([], tf.string),
    }
    ex = tf.io.parse_single_example(record, spec)
    image = tf.io.decode_jpeg(ex["image/encoded"], channels=3, ratio=ratio)
    return image, tf.io.decode_png(ex["image/segmentation/class/encoded"], channels=1)


def reference(files, cfg, *, training: bool, source_size: int, ignore: int = 255):
    """The hand-tuned pipeline described in the module docstring."""
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    height, width = cfg.image_size
    ratio = max(r for r in (1, 2, 4, 8) if source_size >= r * max(height, width))
    aug = cfg.augment
    normalise = _normaliser(cfg.mean, cfg.std)

    def train_example(record):
        image, label = _parse(record, ratio)
        scale = tf.random.uniform([], aug.scale_min, aug.scale_max)
        window = 1.0 / scale  # the crop's side as a fraction of the image; > 1 pads
        y0 = tf.random.uniform([]) * (1.0 - window)
        x0 = tf.random.uniform([]) * (1.0 - window)
        flip = tf.random.uniform([]) < 0.5
        x_from, x_to = tf.where(flip, x0 + window, x0), tf.where(flip, x0, x0 + window)
        box = tf.stack([y0, x_from, y0 + window, x_to])[None]
        image = tf.image.crop_and_resize(image[None], box, [0], [height, width], extrapolation_value=0)[0]
        label = tf.image.crop_and_resize(
            label[None], box, [0], [height, width], method="nearest", extrapolation_value=ignore
        )[0]
        return tf.saturate_cast(tf.round(image), tf.uint8), tf.cast(label, tf.uint8)

    def eval_example(record):
        image, label = _parse(record, ratio)
        if source_size // ratio != height:
            image = tf.saturate_cast(tf.round(tf.image.resize(image, [height, width])), tf.uint8)
        if source_size != height:
            label = tf.image.resize(label, [height, width], method="nearest")
        return image, label

    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(
        tf.data.TFRecordDataset, cycle_length=len(files), num_parallel_calls=auto, deterministic=not training
    )
    if training:
        ds = ds.shuffle(cfg.shuffle_buffer).repeat()
    ds = ds.map(train_example if training else eval_example, num_parallel_calls=auto, deterministic=not training)
    ds = ds.batch(cfg.batch_size if training else cfg.eval_batch_size, drop_remainder=training)
    ds = ds.map(lambda x, y: (normalise(x), tf.cast(y, tf.int32)), num_parallel_calls=auto)
    return ds.prefetch(auto)


def naive(files, cfg, *, training: bool, ignore: int = 255):
    """One op per map, serial, float32 early: what a first attempt looks like."""
    import tensorflow as tf

    height, width = cfg.image_size
    aug = cfg.augment
    mean, std = tf.constant(cfg.mean), tf.constant(cfg.std)

    def scale(image, label):
        s = tf.random.uniform([], aug.scale_min, aug.scale_max)
        size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * s), tf.int32)
        return tf.image.resize(image, size), tf.image.resize(label, size, method="nearest")

    def crop(image, label):
        pad_h, pad_w = tf.maximum(height - tf.shape(image)[0], 0), tf.maximum(width - tf.shape(image)[1], 0)
        image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
        label = tf.pad(label, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=ignore)
        both = tf.image.random_crop(tf.concat([image, tf.cast(label, tf.float32)], -1), [height, width, 4])
        return both[..., :3], tf.cast(both[..., 3:], tf.uint8)

    def flip(image, label):
        both = tf.image.random_flip_left_right(tf.concat([image, tf.cast(label, tf.float32)], -1))
        return both[..., :3], tf.cast(both[..., 3:], tf.uint8)

    ds = tf.data.TFRecordDataset(files).map(lambda r: _parse(r, 1))
    ds = ds.map(
        lambda x, y: (
            tf.image.resize(tf.cast(x, tf.float32), [height, width]),
            tf.image.resize(y, [height, width], method="nearest"),
        )
    )
    if training:
        ds = ds.shuffle(cfg.shuffle_buffer).repeat().map(scale).map(crop).map(flip)
    ds = ds.map(lambda x, y: ((x / 255.0 - mean) / std, tf.cast(y, tf.int32)))
    return ds.batch(cfg.batch_size if training else cfg.eval_batch_size, drop_remainder=training)


def _rate(make, warmup: int, batches: int) -> float:
    """Examples per second over ``batches`` batches, after ``warmup`` batches."""
    ds = make()
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    examples = sum(int(next(it)[0].shape[0]) for _ in range(batches))
    rate = examples / (time.perf_counter() - start)
    del it, ds
    gc.collect()
    return rate


def pipeline_rows(settings: Settings, project: Path) -> list[Row]:
    sys.path.insert(0, str(project))
    from skelgen_runtime.config import load_config

    schema = importlib.import_module("core.config").Config
    project_hooks = importlib.import_module("core.project").PROJECT
    source_size = settings.pick(256, 64)
    sizes = settings.pick((128, 256), (32, 64))
    batches = settings.pick(40, 3)
    rows = []
    reps = settings.reps
    for mode in ("train", "eval"):
        training = mode == "train"
        for size in sizes:

            def config(cache: bool):
                overrides = [f"data.image_size=[{size},{size}]", f"data.cache={str(cache).lower()}"]
                if settings.quick:
                    overrides.append("data.shuffle_buffer=16")
                return load_config(project / "configs" / "default.yaml", overrides, schema=schema).data

            off, on = config(False), config(True)
            pipeline = project_hooks.open_data(project, off)
            info = pipeline.info
            split = "train" if training else "val"
            files = [str(f) for f in info.split_files(split)]
            if training:
                warmup = math.ceil(off.shuffle_buffer / off.batch_size) + 4
            else:
                warmup = math.ceil(info.count(split) / off.eval_batch_size) + 2

            def generated(cfg, pipeline=pipeline, training=training, split=split):
                bound = type(pipeline)(cfg, pipeline.info, pipeline.hooks)
                return bound.train_batches(repeat=True) if training else bound.val_batches(split).repeat()

            variants = {
                "cache off": lambda: _rate(lambda: generated(off), warmup, batches),
                "cache on": lambda: _rate(lambda: generated(on), warmup, batches),
                "reference": lambda: _rate(
                    lambda: reference(files, off, training=training, source_size=source_size).repeat(), warmup, batches
                ),
                "naive": lambda: _rate(lambda: naive(files, off, training=training).repeat(), warmup, batches),
            }
            rates: dict[str, list[float]] = {k: [] for k in variants}
            for _ in range(reps):
                for name, measure in variants.items():
                    rates[name].append(measure())
            what = f"{mode} {size}px (from {source_size}px JPEG)"
            for ours, base, target in (
                ("cache off", "reference", 1.0),
                ("cache off", "naive", 1.5),
                ("cache on", "reference", None),
            ):
                rows.append(
                    Row(
                        "pipeline",
                        f"{what}: generated, {ours} vs {base}",
                        median(rates[ours]),
                        median(rates[base]),
                        "examples/s",
                        True,
                        target,
                        {"ours": rates[ours], "baseline": rates[base]},
                        f"{batches} batches after {warmup} warm-up batches",
                    )
                )
    return rows
