"""What the faster builds must keep: records TensorFlow reads as before, as strict validation, correct reuse.

Records are checked against TensorFlow's own parser and against an independent decode of the
source files with Pillow and NumPy, not against the library's decoders. The encoder and the
TFRecord framing are checked against ``tf.train.Example`` and ``tf.data.TFRecordDataset``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_project, script

tf = pytest.importorskip("tensorflow")

from test_records import DEEPLAB_SPEC as SPEC  # noqa: E402 (the DeepLab keys, written out there)

CLASSES = ("background", "circle", "square", "triangle")


# ------------------------------------------------------------------------- Example and TFRecord file


def test_example_parses_as_tensorflows_own() -> None:
    from skelgen_runtime.records.example import Example, bytes_feature, float_feature, int64_feature

    volume = np.arange(-6, 6, dtype=np.int16).reshape(2, 3, 2)
    ours = Example(
        {
            "b": bytes_feature(b"\x00jpeg\xff"),
            "bl": bytes_feature([b"", b"x" * 300, "é".encode()]),
            "i": int64_feature([0, 1, -1, 127, 128, 2**40, -(2**63), 2**63 - 1]),
            "f": float_feature([0.1, -2.5, 1e30]),
            "empty_i": int64_feature([]),
            "empty_f": float_feature([]),
            "empty_b": bytes_feature([]),
            "view": bytes_feature(memoryview(volume.reshape(-1).view(np.uint8))),
        }
    ).SerializeToString()
    f = tf.train.Feature
    theirs = tf.train.Example(
        features=tf.train.Features(
            feature={
                "b": f(bytes_list=tf.train.BytesList(value=[b"\x00jpeg\xff"])),
                "bl": f(bytes_list=tf.train.BytesList(value=[b"", b"x" * 300, "é".encode()])),
                "i": f(int64_list=tf.train.Int64List(value=[0, 1, -1, 127, 128, 2**40, -(2**63), 2**63 - 1])),
                "f": f(float_list=tf.train.FloatList(value=[0.1, -2.5, 1e30])),
                "empty_i": f(int64_list=tf.train.Int64List()),
                "empty_f": f(float_list=tf.train.FloatList()),
                "empty_b": f(bytes_list=tf.train.BytesList()),
                "view": f(bytes_list=tf.train.BytesList(value=[volume.tobytes()])),
            }
        )
    )
    assert tf.train.Example.FromString(ours) == theirs  # the same message, field by field
    parsed = tf.io.parse_single_example(
        ours, {"i": tf.io.VarLenFeature(tf.int64), "view": tf.io.FixedLenFeature((), tf.string)}
    )
    assert tf.sparse.to_dense(parsed["i"]).numpy().tolist() == [0, 1, -1, 127, 128, 2**40, -(2**63), 2**63 - 1]
    np.testing.assert_array_equal(np.frombuffer(parsed["view"].numpy(), np.int16).reshape(2, 3, 2), volume)


def _random_value(rng: np.random.Generator, dtype: str):
    """A value of ``dtype`` in one of the forms a source may hand the encoder, and its plain Python list."""
    n = int(rng.integers(0, 6))
    form = rng.integers(0, 4)  # 0: one scalar, 1: a list, 2: a NumPy array, 3: NumPy scalars in a list
    if dtype == "int64":
        edges = [0, 1, -1, 127, 128, -(2**63), 2**63 - 1, 2**31, -(2**31) - 1]
        plain = [int(v) if rng.random() < 0.7 else int(rng.choice(edges)) for v in rng.integers(-(2**40), 2**40, n)]
        kinds = (np.int64, np.int32, np.uint8)
        kind = kinds[int(rng.integers(0, 3))]
        fits = all(np.iinfo(kind).min <= v <= np.iinfo(kind).max for v in plain)
        if form == 0 and plain:
            return (kind(plain[0]) if fits else plain[0]), plain[:1]
        if form == 2 and fits:
            return np.asarray(plain, dtype=kind), plain
        return ([kind(v) for v in plain] if form == 3 and fits else plain), plain
    if dtype == "float32":
        plain = [float(v) for v in rng.normal(0, 10.0 ** rng.integers(-3, 30), n)]
        if form == 0 and plain:
            return np.float64(plain[0]), plain[:1]
        if form == 2:
            return np.asarray(plain, dtype=np.float64), plain
        return ([np.float32(v) for v in plain] if form == 3 else plain), plain
    plain = [rng.bytes(int(rng.integers(0, 300))) for _ in range(n)]
    if form == 0 and plain:
        return plain[0], plain[:1]
    if form == 2 and plain:
        return [memoryview(np.frombuffer(v, np.uint8)) for v in plain], plain
    return ([np.bytes_(v) for v in plain] if form == 3 else plain), plain


def test_example_encoder_equals_tensorflows_on_random_examples() -> None:
    """Hundreds of generated examples (every dtype, empty lists, int64 edges, NumPy scalars and arrays,
    float64 beyond float32's range) encode to the very message tf.train.Example makes of the same values."""
    from skelgen_runtime.records.example import encode_features, read_features

    rng = np.random.default_rng(7)
    lists = {"int64": tf.train.Int64List, "float32": tf.train.FloatList, "string": tf.train.BytesList}
    field = {"int64": "int64_list", "float32": "float_list", "string": "bytes_list"}
    for _ in range(400):
        dtypes = {f"k{i}/{d}": d for i, d in enumerate(rng.choice(list(lists), int(rng.integers(0, 7))))}
        values, theirs = {}, {}
        for key, dtype in dtypes.items():
            values[key], plain = _random_value(rng, dtype)
            theirs[key] = tf.train.Feature(**{field[dtype]: lists[dtype](value=plain)})
        ours = encode_features(dtypes, values).SerializeToString()
        tf_example = tf.train.Example(features=tf.train.Features(feature=theirs))
        assert tf.train.Example.FromString(ours) == tf_example
        # and read back (what a build records about its images), from ours and from TensorFlow's bytes
        want = {
            key: [bytes(v) for v in lists_of(tf_example, key)] if dtype == "string" else lists_of(tf_example, key)
            for key, dtype in dtypes.items()
        }
        for serialised in (ours, tf_example.SerializeToString()):
            got = read_features(serialised, [*dtypes, "absent"])
            assert {k: [bytes(v) if isinstance(v, memoryview) else v for v in vs] for k, vs in got.items()} == want


def lists_of(example, key: str) -> list:
    feature = example.features.feature[key]
    return list(getattr(feature, feature.WhichOneof("kind")).value) if feature.WhichOneof("kind") else []


def test_read_features_refuses_what_is_not_an_example() -> None:
    from skelgen_runtime.records.example import read_features

    for broken in (b"\x0a\xff", b"\x0a\x05ab", b"\x0f"):
        with pytest.raises(ValueError):
            read_features(broken, ["k"])


@pytest.mark.parametrize(
    "dtype, value, needles",
    [
        ("string", "text", ["image/x: str 'text' is not bytes", ".encode()"]),
        ("string", ["ok".encode(), "text"], ["image/x: str 'text'"]),
        ("int64", 2**63, ["image/x: 9223372036854775808 is out of the int64 range"]),
        ("int64", [np.uint64(2**64 - 1)], ["image/x: 18446744073709551615 is out of the int64 range"]),
        ("int64", 1.5, ["image/x: float 1.5 is not an integer"]),
        ("int64", np.asarray([1.0, 2.0]), ["image/x: float 1.0 is not an integer"]),
        ("int64", "3", ["image/x: str '3' is not an integer"]),
        ("float32", "0.5", ["image/x: str '0.5' is not a number"]),
        ("float32", [None], ["image/x: NoneType None is not a number"]),
    ],
)
def test_example_encoder_refuses_what_the_format_cannot_hold(dtype: str, value, needles: list[str]) -> None:
    from skelgen_runtime.errors import ExampleEncodingError
    from skelgen_runtime.records.example import encode_features

    with pytest.raises(ExampleEncodingError) as err:
        encode_features({"image/x": dtype}, {"image/x": value})
    for needle in needles:
        assert needle in str(err.value)
    with pytest.raises(ExampleEncodingError, match="image/y: not a key of this record"):
        encode_features({"image/x": dtype}, {"image/y": b""})


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_tfrecord_file_reads_back_with_tensorflow(tmp_path: Path, compression: str | None) -> None:
    from skelgen_runtime.records.tfrecord import TFRecordFileWriter

    rng = np.random.default_rng(0)
    records = [
        b"",
        b"one",
        rng.integers(0, 256, 3 << 20, dtype=np.uint8).tobytes(),
        *(rng.integers(0, 4, int(n), dtype=np.uint8).tobytes() for n in rng.integers(1, 5000, 40)),
    ]
    path = tmp_path / "a.tfrecord"
    with TFRecordFileWriter(path, compression) as writer:
        for record in records:
            writer.write(record)
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type=compression or "")]
    assert read == records
    assert writer.size == path.stat().st_size and writer.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- records against an independent decode


def _png(array: np.ndarray, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **params)
    return buf.getvalue()


def _mixed_dataset(root: Path) -> None:
    """Images in every form the readers keep or convert, with labels in every form they copy or re-encode."""
    rng = np.random.default_rng(1)
    (root / "data/train").mkdir(parents=True)
    (root / "annotations/train").mkdir(parents=True)
    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ids = rng.integers(0, 4, (20, 30), dtype=np.uint8)
    ids[0, :5] = 255  # the ignore label
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * 251 * 3 + [224, 224, 192])
    images = {
        "rgb.jpg": lambda p: Image.fromarray(pixels).save(p, quality=90),
        "grey.jpg": lambda p: Image.fromarray(pixels[..., 0]).save(p, quality=90),
        "cmyk.jpg": lambda p: Image.fromarray(pixels).convert("CMYK").save(p, quality=90),
        "rgbpng.png": lambda p: Image.fromarray(pixels).save(p),
        "rgba.png": lambda p: Image.fromarray(np.dstack([pixels, pixels[..., :1]])).save(p),
        "png_named.jpg": lambda p: p.write_bytes(_png(pixels)),
    }
    labels = {
        "rgb": lambda p: p.write_bytes(_png(ids)),  # 8-bit grey: copied
        "grey": lambda p: palette.save(p),  # palette: indices re-encoded
        "cmyk": lambda p: p.write_bytes(_png(ids, transparency=0)),  # grey with tRNS: re-encoded
        "rgba": lambda p: p.write_bytes(_png(ids)),
        "png_named": lambda p: p.write_bytes(_png(ids)),
    }
    for name, write in images.items():
        write(root / "data/train" / name)
        stem = Path(name).stem
        (labels.get(stem) or labels["rgb"])(root / "annotations/train" / f"{stem}.png")


def test_records_decode_as_pillow_reads_the_sources(tmp_path: Path) -> None:
    """What the pipeline decodes equals what Pillow and NumPy read from the files (before and after this change)."""
    from skelgen_runtime.records.build import build_dataset
    from skelgen_runtime.sources import ImagesMasksSource, LabelMap

    _mixed_dataset(tmp_path / "raw")
    source = ImagesMasksSource(tmp_path / "raw", LabelMap(CLASSES))
    report = build_dataset(
        source,
        tmp_path / "out",
        schema="segmentation",
        schema_version=1,
        feature_spec={},
        prefix="mixed",
        workers=1,
        shard_size=4,
        progress=False,
    )
    assert report.counts == {"train": 6}
    seen = set()
    for record in tf.data.TFRecordDataset(sorted(str(p) for p in (tmp_path / "out").glob("*.tfrecord"))):
        ex = {k: v.numpy() for k, v in tf.io.parse_single_example(record, SPEC).items()}
        name = ex["image/filename"].decode().split("/", 1)[1]
        seen.add(name)
        image_file = tmp_path / "raw/data/train" / name
        with Image.open(image_file) as img:
            kept = img.format in ("JPEG", "PNG") and img.mode in ("RGB", "L")
            expected = np.array(img.convert("RGB"))
            assert (ex["image/width"], ex["image/height"], ex["image/channels"]) == (*img.size, 3)
            assert ex["image/format"].decode() == (img.format.lower() if kept else "png")
        decoded = tf.io.decode_image(ex["image/encoded"], channels=3).numpy()
        if kept:  # the file's own bytes
            assert ex["image/encoded"] == image_file.read_bytes()
        if not kept or image_file.read_bytes()[:4] == b"\x89PNG":  # lossless: equal pixels
            np.testing.assert_array_equal(decoded, expected)
        label_file = tmp_path / "raw/annotations/train" / f"{image_file.stem}.png"
        label = tf.io.decode_png(ex["image/segmentation/class/encoded"], channels=1).numpy()[..., 0]
        np.testing.assert_array_equal(label, np.array(Image.open(label_file)))  # palette indices, not colours
    assert seen == {p.name for p in (tmp_path / "raw/data/train").iterdir()}


# --------------------------------------------------------------------------- as strict as before


def _one_example(root: Path, image: bytes | None = None, label: bytes | None = None):
    from skelgen_runtime.sources import ImagesMasksSource, LabelMap

    rng = np.random.default_rng(2)
    (root / "data/train").mkdir(parents=True)
    (root / "annotations/train").mkdir(parents=True)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
    (root / "data/train/a.jpg").write_bytes(image if image is not None else buf.getvalue())
    (root / "annotations/train/a.png").write_bytes(label if label is not None else _png(np.ones((32, 48), np.uint8)))
    source = ImagesMasksSource(root, LabelMap(CLASSES))
    return source, source.items("train")[0]


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _bad_huffman_table(data: bytes) -> bytes:
    at = data.index(b"\xff\xc4") + 5  # the code counts of the first DHT segment
    return data[:at] + b"\xff" * 16 + data[at + 16 :]


@pytest.mark.parametrize(
    "name,image,label,file,needles",
    [
        ("truncated at half", _jpeg()[: len(_jpeg()) // 2], None, "a.jpg", ["cannot read image", "truncated"]),
        ("truncated by 10 bytes", _jpeg()[:-10], None, "a.jpg", ["cannot read image", "truncated"]),
        ("corrupt Huffman table", _bad_huffman_table(_jpeg()), None, "a.jpg", ["cannot read image"]),
        ("not an image", b"\xff\xd8\xff\xe0 this is not a jpeg", None, "a.jpg", ["cannot read image"]),
        ("mask of another size", None, _png(np.zeros((20, 30), np.uint8)), "a.png", ["label is 30x20", "is 48x32"]),
        ("label out of range", None, _png(np.full((32, 48), 7, np.uint8)), "a.png", ["label ids [7]", "outside 0..3"]),
        ("RGB label", None, _png(np.zeros((32, 48, 3), np.uint8)), "a.png", ["mode RGB", "one channel"]),
        ("16-bit label", None, _png(np.zeros((32, 48), np.uint16)), "a.png", ["mode I;16"]),
        ("truncated label", None, _png(np.ones((32, 48), np.uint8))[:-30], "a.png", ["cannot read label"]),
    ],
)
def test_bad_examples_are_refused_naming_the_file(tmp_path: Path, name, image, label, file, needles) -> None:
    from skelgen_runtime.errors import BadExampleError

    source, item = _one_example(tmp_path, image, label)
    with pytest.raises(BadExampleError) as caught:
        source.encode(item, "train")
    assert Path(caught.value.path).name == file, name
    for needle in needles:
        assert needle in caught.value.reason, (name, caught.value.reason)
    assert " object at 0x" not in caught.value.reason, "no Python object repr in a user's message"


def test_ignore_label_passes_and_a_good_example_encodes(tmp_path: Path) -> None:
    ids = np.ones((32, 48), np.uint8)
    ids[0] = 255
    source, item = _one_example(tmp_path, label=_png(ids))
    ex = tf.io.parse_single_example(source.encode(item, "train"), SPEC)
    np.testing.assert_array_equal(tf.io.decode_png(ex["image/segmentation/class/encoded"]).numpy()[..., 0], ids)


def test_encoding_imports_no_tensorflow(tmp_path: Path) -> None:
    """Build workers encode without TensorFlow: what makes a second worker cheap to start."""
    _one_example(tmp_path)
    code = (
        "import sys; from pathlib import Path\n"
        "from skelgen_runtime.records.tfrecord import TFRecordFileWriter\n"
        "from skelgen_runtime.schemas import get_schema\n"
        "from skelgen_runtime.sources import ImagesMasksSource, LabelMap\n"
        f"s = ImagesMasksSource(Path({str(tmp_path)!r}), LabelMap(('a', 'b')))\n"
        f"with TFRecordFileWriter(Path({str(tmp_path)!r}) / 'x.tfrecord', 'GZIP') as w:\n"
        "    w.write(s.encode(s.items('train')[0], 'train'))\n"
        "get_schema('volume_segmentation').labelled_fields\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------ plans and workers


def test_shards_are_balanced_and_workers_follow_the_work(tmp_path: Path) -> None:
    from skelgen_runtime.records.writer import MIN_BYTES_PER_WORKER, choose_workers, plan_shards
    from skelgen_runtime.sources import SourceItem

    items = [SourceItem(key=f"{i:02d}") for i in range(10)]
    plans = plan_shards(items, out_dir=tmp_path, prefix="p", split="train", shard_size=3, salt="")
    assert [len(p.items) for p in plans] == [3, 3, 2, 2]
    assert [it.key for p in plans for it in p.items] == [it.key for it in items]
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0")
    with open(big, "r+b") as f:  # sparse: large on paper, nothing on disk
        f.truncate(MIN_BYTES_PER_WORKER * 3)
    heavy = plan_shards(
        [SourceItem(key=str(i), files={"image": big}) for i in range(8)],
        out_dir=tmp_path,
        prefix="p",
        split="train",
        shard_size=2,
        salt="",
    )
    assert choose_workers(plans, requested=8) == 1  # a few small files: starting processes cannot pay
    assert choose_workers(heavy, requested=2) == 2 and choose_workers(heavy, requested=16) == 4  # one per shard
    assert choose_workers(heavy[:1], requested=8) == 1


def test_content_key_follows_reader_options(tmp_path: Path) -> None:
    from skelgen_runtime.records.build import content_key
    from skelgen_runtime.sources import ImagesMasksSource, LabelMap

    def key(**changes) -> str:
        options = {"label_map": LabelMap(CLASSES), **changes}
        return content_key(
            ImagesMasksSource(tmp_path, **options), schema="segmentation", schema_version=1, compression=None
        )

    assert key() == key()
    assert (
        len(
            {
                key(),
                key(label_dir="masks"),
                key(label_map=LabelMap(CLASSES, ignore_label=0)),
                key(label_map=LabelMap(CLASSES[::-1])),
            }
        )
        == 4
    )


# ------------------------------------------------------------------------------ reuse stays correct


def test_skip_bad_shards_are_not_reused_by_a_plain_build(tmp_path_factory) -> None:
    """The issue's scenario: build fails, --skip-bad leaves the example out, the next plain build fails again."""
    from skelgen import api
    from skelgen_runtime.samples.shapes import write_shapes

    project = make_project(tmp_path_factory.mktemp("ws"))
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
    write_shapes(project / "datasets/shapes", counts={"train": 8, "val": 4}, size=32)
    mask = project / "datasets/shapes/annotations/train/train_00005.png"
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(mask)
    out = project / "datasets/shapes/tfrecords"

    def build(*extra: str):
        proc = script(
            project, "datasets/build_shapes_to_tfrecord.py", "--workers", "2", "--shard-size", "4", *extra, check=False
        )
        info = out / "dataset_info.json"
        if proc.returncode == 0:
            data = json.loads(info.read_text())
            # never a dataset_info.json that contradicts its own build options
            assert bool(data["skipped"]) <= data["build_options"]["skip_bad"], data
        else:
            assert str(mask) in proc.stderr.strip().splitlines()[-1], proc.stderr
            assert not info.exists()
        return proc

    assert build().returncode != 0
    proc = build("--skip-bad")
    assert proc.returncode == 0 and "skipped 1 bad example:" in proc.stdout and str(mask) in proc.stdout
    assert json.loads((out / "dataset_info.json").read_text())["splits"]["train"]["count"] == 7
    assert build().returncode != 0  # the shard that left the example out is not reused
    assert "0 shards written, 3 reused" in build("--skip-bad").stdout  # ... but a --skip-bad build reuses it
    Image.fromarray(np.ones((32, 32), np.uint8)).save(mask)  # fixed: a plain build passes, rewriting that shard
    proc = build()
    assert proc.returncode == 0 and "1 shard written by 1 process, 2 reused" in proc.stdout, proc.stdout
    assert json.loads((out / "dataset_info.json").read_text())["splits"]["train"]["count"] == 8
