"""``--max-examples N`` keeps every class: a seeded sample, stratified for one class per example (image
folders), covering for several (COCO), random where the classes are unknown before reading the labels;
recorded in ``dataset_info.json`` and printed, with the classes a subset too small cannot hold named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from skelgen_runtime.records.subset import choose_subset
from skelgen_runtime.sources.base import SourceItem

SHAPES = ("circle", "square", "triangle")


def _items(counts: dict[str, int]) -> list[SourceItem]:
    return [
        SourceItem(key=f"{c}/{i:04d}.jpg", classes=frozenset([c])) for c, n in sorted(counts.items()) for i in range(n)
    ]


@pytest.mark.parametrize(
    "counts, limit, want",
    [
        ({"a": 100, "b": 100, "c": 100}, 30, {"a": 10, "b": 10, "c": 10}),
        ({"a": 700, "b": 200, "c": 100}, 40, {"a": 28, "b": 8, "c": 4}),
        ({"a": 970, "b": 20, "c": 10}, 10, {"a": 8, "b": 1, "c": 1}),  # each class once, taken from the largest
        ({"a": 5, "b": 3, "c": 2}, 9, {"a": 4, "b": 3, "c": 2}),
        ({"a": 50, "b": 30, "c": 20}, 2, {"a": 1, "b": 1}),  # too few for every class: the largest shares
    ],
)
def test_one_class_per_example_is_sampled_in_proportion(counts, limit, want) -> None:
    items = _items(counts)
    kept, subset = choose_subset(items, limit)
    assert Counter(next(iter(i.classes)) for i in kept) == want
    assert subset.method == "stratified" and (subset.kept, subset.total) == (limit, len(items))
    assert subset.missing_classes == tuple(sorted(set(counts) - set(want)))
    assert kept == sorted(kept, key=items.index)  # in the split's order
    assert choose_subset(items, limit)[0] == kept  # seeded: the same files give the same subset
    assert choose_subset(items, limit, seed=1)[0] != kept or limit == len(items) - 1


def test_several_classes_per_example_cover_every_class_then_sample() -> None:
    common = [SourceItem(key=f"c{i:03d}", classes=frozenset(["car", "person"])) for i in range(200)]
    rare = [SourceItem(key="r000", classes=frozenset(["giraffe"])), SourceItem(key="r001", classes=frozenset())]
    kept, subset = choose_subset(common + rare, 5)
    assert subset.method == "covering" and len(kept) == 5 and not subset.missing_classes
    assert rare[0] in kept


def test_unknown_classes_give_a_seeded_random_sample_not_the_first_n() -> None:
    items = [SourceItem(key=f"{i:04d}") for i in range(100)]
    kept, subset = choose_subset(items, 10)
    assert subset.method == "random" and len(kept) == 10 and kept != items[:10]
    assert "not known before the labels are read" in subset.describe("train")
    assert choose_subset(items, 200) == (items, subset.__class__("random", 100, 100))


def _build(task: str, raw: Path, out: Path, *args: str):
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import CocoSource, ImageFolderSource, LabelMap

    reader, first = (ImageFolderSource, 0) if task == "classification" else (CocoSource, 1)
    return main(
        dataset="shapes",
        default_source=raw,
        out_dir=out,
        schema_task=task,
        make_source=lambda root: reader(root, LabelMap(SHAPES, first_id=first)),
        argv=["--workers", "1", "--out", str(out), *args],
    )


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_a_built_subset_holds_every_class_and_says_so(task: str, tmp_path: Path, capsys) -> None:
    """The report that started this: 40 examples of an image folder were 40 circles, and validation
    scored 1.0. Now every class is in both splits, and dataset_info.json says how they were cut."""
    from skelgen_runtime.samples.shapes import write_shapes

    tf = pytest.importorskip("tensorflow")
    write_shapes(tmp_path / "raw", task=task, counts={"train": 60, "val": 30}, size=32)
    _build(task, tmp_path / "raw", tmp_path / "records", "--max-examples", "9")
    out = capsys.readouterr()
    info = json.loads((tmp_path / "records/dataset_info.json").read_text())
    for split in ("train", "val"):
        subset = info["build_options"]["subsets"][split]
        assert subset["kept"] == 9 and subset["method"] == ("stratified" if task == "classification" else "covering")
        assert subset["missing_classes"] == [] and f"split {split}: 9 of" in out.out
        files = sorted((tmp_path / "records").glob(f"shapes_{split}-*.tfrecord"))
        key = "image/class/label" if task == "classification" else "image/object/class/label"
        spec = {key: tf.io.VarLenFeature(tf.int64)}
        labels = {
            int(v)
            for record in tf.data.TFRecordDataset([str(f) for f in files])
            for v in tf.sparse.to_dense(tf.io.parse_single_example(record, spec)[key]).numpy()
        }
        assert len(labels) == 3, (split, labels)

    _build(task, tmp_path / "raw", tmp_path / "small", "--max-examples", "2")
    err = capsys.readouterr().err
    if task == "classification":
        assert "no example of '" in err and "2 examples cannot hold every class, raise --max-examples" in err
