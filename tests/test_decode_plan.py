"""Pipelines specialised per dataset: the build records the sizes and encodings of each split's images,
and a split whose images share one size and one encoding is decoded with one plan decided in Python,
with static shapes, giving exactly what the per-example path gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from skelgen_runtime.preprocessing import segmentation as ops  # noqa: E402
from skelgen_runtime.records.image_stats import ImageStats, image_format  # noqa: E402
from skelgen_runtime.records.reader import open_dataset, read_split  # noqa: E402
from skelgen_runtime.schemas.base import DecodePlan  # noqa: E402
from skelgen_runtime.schemas.segmentation import SCHEMA  # noqa: E402

SHAPES_CLASSES = ["background", "square", "circle", "triangle"]
COUNTS = {"train": 6, "val": 4, "pred": 2}


def _build(raw: Path, out: Path, *args: str):
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import ImagesMasksSource, LabelMap

    return main(
        dataset="shapes",
        default_source=raw,
        out_dir=out,
        schema_task="segmentation",
        make_source=lambda root: ImagesMasksSource(root, LabelMap(SHAPES_CLASSES)),
        argv=["--workers", "1", "--shard-size", "4", "--out", str(out), *args],
    )


def _raw(root: Path, size: int = 64) -> Path:
    from skelgen_runtime.samples.shapes import write_shapes

    write_shapes(root, task="segmentation", counts=COUNTS, size=size)
    return root


def _resize_pair_on_disk(raw: Path, split: str, stem: str, size: tuple[int, int]) -> None:
    """Give one example of ``split`` another size (image bilinear, mask nearest), as a mixed dataset has."""
    image_path = next((raw / "data" / split).glob(f"{stem}.*"))
    Image.open(image_path).resize(size[::-1], Image.BILINEAR).save(image_path)
    mask = raw / "annotations" / split / f"{stem}.png"
    Image.open(mask).resize(size[::-1], Image.NEAREST).save(mask)


def _decoded(info, split: str, *, static: bool, decode_size=None) -> list[dict]:
    ds = read_split(info, SCHEMA, split, training=False, decode_size=decode_size, static=static)
    return [{k: v.numpy() for k, v in e.items()} for e in ds]


def test_the_build_records_sizes_and_encodings_per_split(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw")
    _resize_pair_on_disk(raw, "val", "val_00001", (48, 80))
    _build(raw, tmp_path / "records")
    info = json.loads((tmp_path / "records/dataset_info.json").read_text())
    train = info["splits"]["train"]["images"]
    assert train == {"count": 6, "min_size": [64, 64], "max_size": [64, 64], "formats": {"jpeg": 6}}
    val = info["splits"]["val"]["images"]
    assert val["min_size"] == [48, 64] and val["max_size"] == [64, 80] and val["count"] == 4
    dataset = open_dataset(tmp_path / "records", SCHEMA)
    assert dataset.image_stats("train").uniform_size == (64, 64)
    assert dataset.image_stats("val").uniform_size is None
    assert DecodePlan.choose(dataset.image_stats("val"), (32, 32)) is None  # decided per example
    plan = DecodePlan.choose(dataset.image_stats("train"), (32, 32))
    assert plan == DecodePlan((64, 64), "jpeg", 2) and plan.decoded == (32, 32)


def test_static_decoding_equals_the_per_example_path(tmp_path: Path) -> None:
    """Same pixels and labels, for a model size at and below half the stored size; the static path
    also knows the shapes (the image at the plan's DCT scale, the label at the stored size)."""
    raw = _raw(tmp_path / "raw", size=72)
    _build(raw, tmp_path / "records")
    info = open_dataset(tmp_path / "records", SCHEMA)
    for decode_size in (None, (36, 36), (17, 30), (72, 72)):
        static = read_split(info, SCHEMA, "train", training=False, decode_size=decode_size)
        ratio = 1 if decode_size is None else DecodePlan.choose(info.image_stats("train"), decode_size).ratio
        side = -(-72 // ratio)
        assert static.element_spec["image"].shape.as_list() == [side, side, 3]
        assert static.element_spec["label"].shape.as_list() == [72, 72, 1]
        dynamic = read_split(info, SCHEMA, "train", training=False, decode_size=decode_size, static=False)
        assert dynamic.element_spec["image"].shape.as_list() == [None, None, 3]
        for a, b in zip(
            _decoded(info, "train", static=True, decode_size=decode_size),
            _decoded(info, "train", static=False, decode_size=decode_size),
            strict=True,
        ):
            for key in ("image", "label", "filename"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{key} at {decode_size}")


def test_a_png_dataset_decodes_with_a_static_plan_and_a_mixed_one_per_example(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw")
    for split in COUNTS:
        for path in (raw / "data" / split).glob("*.jpg"):
            Image.open(path).save(path.with_suffix(".png"))
            path.unlink()
    path = raw / "data/train/train_00002.png"  # one JPEG among PNGs: two encodings
    Image.open(path).save(path.with_suffix(".jpg"))
    path.unlink()
    _build(raw, tmp_path / "records")
    info = open_dataset(tmp_path / "records", SCHEMA)
    assert info.image_stats("val").formats == {"png": 4}
    assert DecodePlan.choose(info.image_stats("val"), (32, 32)) == DecodePlan((64, 64), "png", 1)
    assert info.image_stats("train").formats == {"jpeg": 1, "png": 5}
    assert DecodePlan.choose(info.image_stats("train"), (32, 32)) is None
    for split in ("val", "train"):
        for a, b in zip(
            _decoded(info, split, static=True, decode_size=(32, 32)),
            _decoded(info, split, static=False, decode_size=(32, 32)),
            strict=True,
        ):
            np.testing.assert_array_equal(a["image"], b["image"])
            np.testing.assert_array_equal(a["label"], b["label"])


def test_a_shard_from_a_build_that_did_not_describe_its_images_is_rewritten(tmp_path: Path) -> None:
    """A dataset built before builds recorded image sizes gains them on its next build."""
    raw = _raw(tmp_path / "raw")
    out = tmp_path / "records"
    _build(raw, out)
    sidecar = next(out.glob(".shapes_train-00000-*.meta.json"))
    meta = json.loads(sidecar.read_text())
    del meta["images"]
    sidecar.write_text(json.dumps(meta))
    report = _build(raw, out)
    assert report.written_shards == 1 and report.reused_shards == len(list(out.glob("*.tfrecord"))) - 1
    assert json.loads((out / "dataset_info.json").read_text())["splits"]["train"]["images"]["count"] == 6


@pytest.mark.parametrize(
    "stored, size",
    [
        ((64, 64), (32, 32)),
        ((64, 48), (16, 16)),
        ((60, 90), (20, 45)),
        ((64, 64), (64, 64)),
        ((50, 40), (32, 32)),
        ((20, 30), (57, 13)),
    ],
)
def test_resizes_decided_in_python_equal_the_graph_branches(stored, size) -> None:
    """resize_pair of an image of static shape (decided in Python: the label picked by whole factors,
    no op at the size already) equals the per-example branches on the same input of unknown shape."""
    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 256, (*stored, 3), dtype=np.uint8))
    label = tf.constant(rng.integers(0, 5, (*stored, 1), dtype=np.uint8))
    unknown = tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([None, None, 1], tf.uint8)
    per_example = tf.function(lambda i, lab: ops.resize_pair(i, lab, size), input_signature=unknown)
    want_image, want_label = per_example(image, label)
    got_image, got_label = ops.resize_pair(image, label, size)
    np.testing.assert_array_equal(got_image.numpy(), want_image.numpy())
    np.testing.assert_array_equal(got_label.numpy(), want_label.numpy())
    np.testing.assert_array_equal(got_label.numpy(), tf.image.resize(label, size, method="nearest").numpy())


def test_image_stats_merge_and_refuse_what_they_cannot_know() -> None:
    from skelgen_runtime.schemas.segmentation import encode_example

    def record(h: int, w: int, head: bytes) -> bytes:
        return encode_example(
            image_bytes=head + b"\0" * 20, image_format="jpeg", filename="x", height=h, width=w, label_png=None
        ).SerializeToString()

    a, b = ImageStats(), ImageStats()
    a.add(record(10, 20, b"\xff\xd8\xff"))
    a.add(record(10, 20, b"\xff\xd8\xff"))
    b.add(record(12, 8, b"\x89PNG\r\n\x1a\n"))
    b.add(b"not an example")  # left out, not an error: TensorFlow says what is wrong when it reads the file
    assert a.uniform_size == (10, 20) and a.single_format == "jpeg"
    merged = ImageStats.merged([a, b])
    assert merged is not None and merged.count == 3
    assert (merged.min_size, merged.max_size, merged.formats) == ((10, 8), (12, 20), {"jpeg": 2, "png": 1})
    assert merged.uniform_size is None and merged.single_format is None
    assert ImageStats.merged([a, None]) is None  # a shard of an older build: unknown
    assert ImageStats.from_json(merged.to_json()) == merged
    for broken in (None, {}, {"count": "x"}, {"count": 2, "min_size": [1], "max_size": [1, 2], "formats": {}}):
        assert ImageStats.from_json(broken).count == 0
    assert [image_format(h) for h in (b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM..", b"RIFF")] == [
        "jpeg",
        "png",
        "gif",
        "bmp",
        "other",
    ]


def test_label_maps_become_int32_per_batch() -> None:
    from types import SimpleNamespace

    from skelgen_runtime.data.batches import normalised

    step = normalised(SimpleNamespace(mean=None, std=None))
    images, labels = step(tf.zeros([2, 4, 4, 3], tf.uint8), tf.ones([2, 4, 4, 1], tf.uint8))
    assert images.dtype == tf.float32 and labels.dtype == tf.int32 and int(labels[0, 0, 0, 0]) == 1
    _, one_hot = step(tf.zeros([2, 4, 4, 3], tf.uint8), tf.ones([2, 3]))
    assert one_hot.dtype == tf.float32  # float targets pass as they are
