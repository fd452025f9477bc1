"""TensorFlow Datasets' description of a built dataset: ``tfds.builder_from_directory(".../tfrecords/tfds")``.

A build writes, after ``dataset_info.json``, the two files TensorFlow Datasets (TFDS) reads a folder of
TFRecords with, in a ``tfds/`` subfolder so that they never meet skelgen's own ``dataset_info.json``
(TFDS names its file the same)::

    datasets/NAME/tfrecords/
        dataset_info.json                     skelgen's description (records.info)
        NAME_train-00000-of-00002.tfrecord    the shards
        tfds/dataset_info.json                TFDS's: splits, shard lengths, "../NAME_{SPLIT}-{SHARD_X_OF_Y}.tfrecord"
        tfds/features.json                    TFDS's: each record key as a feature

Then, with ``tensorflow-datasets`` installed (skelgen does not need it)::

    builder = tfds.builder_from_directory("datasets/shapes/tfrecords/tfds")
    ds = builder.as_dataset(split="train")   # {"image": {"encoded": uint8 (H, W, 3), "class": {"label": ...}}}

Record keys become nested features at their ``/`` (``image/class/label`` -> ``["image"]["class"]["label"]``);
``image/encoded`` is a TFDS ``Image`` (decoded to RGB, as the project's reader decodes it), a segmentation
label map an ``Image`` of one channel; a volume's arrays (``volume/encoded``, ``volume/label/encoded``,
deflated inside the records since version 2 of :mod:`~skelgen_runtime.schemas.volume`) are TFDS tensors
``Tensor(shape=(None,), dtype=uint8, encoding="zlib")``: TFDS inflates them, and
``np.frombuffer(x, volume/dtype).reshape(volume/shape)`` is the volume. Other keys keep their kind: scalars,
fixed vectors, and variable-length lists as ``(None,)`` tensors.

One TFDS folder describes one record layout: when a dataset has labelled and unlabelled splits (``pred``),
``tfds/`` describes the labelled ones and ``tfds/unlabelled/`` the others. Shards that TFDS cannot open are
not described: shards compressed as a whole (``--compression GZIP``/``ZLIB``; TFDS opens TFRecord files
without a compression type) and shards not named ``PREFIX_SPLIT-NNNNN-of-NNNNN.tfrecord``;
:func:`write_tfds_metadata` then says why and writes nothing.

File formats: TFDS's ``DatasetInfo`` proto as JSON (``dataset_info.json``) and its ``FeatureConnector``
protos as JSON (``features.json``), as ``tfds.folder_dataset.write_metadata`` writes them
(https://www.tensorflow.org/datasets/external_tfrecord, TFDS 4.9).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from skelgen_runtime.records.folder import Folder, open_folder
from skelgen_runtime.records.writer import shard_name

__all__ = ["TFDS_DIR", "UNLABELLED_DIR", "tfds_layouts", "write_tfds_metadata", "remove_tfds_metadata"]

#: the subfolder of a dataset's records that TFDS reads
TFDS_DIR = "tfds"
#: the subfolder of :data:`TFDS_DIR` describing unlabelled splits, when labelled ones exist too
UNLABELLED_DIR = "unlabelled"

_FEATURES = "tensorflow_datasets.core.features"
_DICT = f"{_FEATURES}.features_dict.FeaturesDict"
_TENSOR = f"{_FEATURES}.tensor_feature.Tensor"
_IMAGE = f"{_FEATURES}.image_feature.Image"
#: keys holding an encoded image, and the channels the project's reader decodes them to
_IMAGES = {"image/encoded": 3, "image/segmentation/class/encoded": 1}
#: keys holding a raw array deflated inside the record (volume schema version 2)
_DEFLATED = {"volume/encoded", "volume/label/encoded"}


def _feature(key: str, field: Any) -> dict[str, Any]:
    """TFDS's JSON of one record key (a :class:`~skelgen_runtime.schemas.base.FeatureField`)."""
    if key in _IMAGES:
        return {
            "pythonClassName": _IMAGE,
            "image": {"shape": {"dimensions": ["-1", "-1", str(_IMAGES[key])]}, "dtype": "uint8"},
        }
    if key in _DEFLATED:
        return {
            "pythonClassName": _TENSOR,
            "tensor": {"shape": {"dimensions": ["-1"]}, "dtype": "uint8", "encoding": "zlib"},
        }
    shape = ["-1"] if field.kind == "varlen" else [str(n) for n in field.shape]
    return {
        "pythonClassName": _TENSOR,
        "tensor": {"shape": {"dimensions": shape} if shape else {}, "dtype": field.dtype, "encoding": "none"},
    }


def _features(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``features.json``: the record's keys nested at their ``/`` (TFDS joins nested names with ``/``)."""
    tree: dict[str, Any] = {}
    for key, field in fields.items():
        *parents, leaf = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if "pythonClassName" in node:
                raise ValueError(f"record key {key!r} nests under another key's value")
        node[leaf] = _feature(key, field)

    def as_dict(node: dict[str, Any]) -> dict[str, Any]:
        if "pythonClassName" in node:
            return node
        return {"pythonClassName": _DICT, "featuresDict": {"features": {k: as_dict(v) for k, v in node.items()}}}

    return as_dict(tree)


def _shards_as_template(prefix: str, split: str, shards: list[dict]) -> str | None:
    """Why the shards of ``split`` cannot be described by TFDS's file template, or None when they can."""
    for i, shard in enumerate(shards):
        expected = shard_name(prefix, split, i, len(shards))
        if shard["file"] != expected:
            return f"shard {shard['file']} is not named {expected}"
    return None


def tfds_layouts(info: Mapping[str, Any]) -> dict[str, list[str]]:
    """The TFDS folders (relative to the records folder) and the splits each describes."""
    splits = info["splits"]
    labelled = [s for s in splits if splits[s]["labelled"]]
    unlabelled = [s for s in splits if not splits[s]["labelled"]]
    if not labelled:
        return {TFDS_DIR: unlabelled}
    return {TFDS_DIR: labelled, **({f"{TFDS_DIR}/{UNLABELLED_DIR}": unlabelled} if unlabelled else {})}


def _description(info: Mapping[str, Any]) -> str:
    names = ", ".join(f"{e['id']}={e['name']}" for e in info.get("label_map", []))
    text = f"skelgen {info['schema']} records (schema version {info['schema_version']}). Classes: {names}."
    if info["schema"] == "volume_segmentation":
        text += (
            " volume/encoded and volume/label/encoded are raw little-endian bytes:"
            " np.frombuffer(volume/encoded, volume/dtype).reshape(volume/shape) is the (D, H, W, C) volume,"
            " np.frombuffer(volume/label/encoded, uint8).reshape(volume/shape[:3]) its label."
        )
    return text


def _dataset_info(info: Mapping[str, Any], prefix: str, splits: list[str], up: str) -> dict[str, Any]:
    return {
        "name": re.sub(r"\W", "_", prefix).lower(),
        "description": _description(info),
        "version": f"{int(info['schema_version'])}.0.0",
        "fileFormat": "tfrecord",
        "splits": [
            {
                "name": split,
                "filepathTemplate": f"{up}{prefix}_{{SPLIT}}-{{SHARD_X_OF_Y}}.tfrecord",
                "shardLengths": [str(s["count"]) for s in info["splits"][split]["shards"]],
            }
            for split in splits
        ],
    }


def remove_tfds_metadata(folder: Folder) -> None:
    """Remove the TFDS description of an earlier build (a build starts with it, like ``dataset_info.json``)."""
    for layout in (f"{TFDS_DIR}/{UNLABELLED_DIR}", TFDS_DIR):
        for name in ("dataset_info.json", "features.json"):
            folder.remove(f"{layout}/{name}")


def write_tfds_metadata(out: str, info: Mapping[str, Any], schema: Any, prefix: str) -> str | None:
    """Describe the built dataset in ``out`` (a folder or URL) for TFDS, ``features.json`` before
    ``dataset_info.json`` in each TFDS folder, both written atomically.

    Args:
        info: the dataset's ``dataset_info.json`` as written.
        schema: the :class:`~skelgen_runtime.schemas.base.RecordSchema` the records were written with.
        prefix: the shards' file prefix (the dataset's name).

    Returns:
        None once written, or why the dataset cannot be described (nothing is written then).
    """
    if info.get("compression"):
        return (
            f"its shards are {info['compression']}-compressed as a whole, which TFDS does not open "
            "(build without --compression to read it with tfds.builder_from_directory)"
        )
    for split, entry in info["splits"].items():
        why = _shards_as_template(prefix, split, entry["shards"])
        if why:
            return why
    for layout, splits in tfds_layouts(info).items():
        labelled = info["splits"][splits[0]]["labelled"]
        up = "../" * (layout.count("/") + 1)
        folder: Folder = open_folder(f"{str(out).rstrip('/')}/{layout}")
        folder.makedirs()
        folder.write_text("features.json", json.dumps(_features(schema.fields(labelled)), indent=2))
        folder.write_text("dataset_info.json", json.dumps(_dataset_info(info, prefix, splits, up), indent=2))
    return None
