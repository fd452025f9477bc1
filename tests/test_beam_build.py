"""Beam builds (``--runner beam``) against local builds of the same raw data (issue 10, acceptance 4).

Every Beam build here runs on Beam's local runner (in this process, or in two worker processes);
the records of both builds are parsed with TensorFlow and compared example by example, order aside,
with their split counts, label maps, shard names and checksums. The shapes builds run the generated
``build_shapes_to_tfrecord.py`` of a project of each task; the BraTS build runs the same
``records.build.main`` on a tiny replica (``tests/test_brats.py``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_project, script

tf = pytest.importorskip("tensorflow")
pytest.importorskip("apache_beam")

SIZE = 32
COUNTS = {"train": 10, "val": 4, "pred": 2}
SHARDS = 4 + 2 + 1  # of at most 3 examples (--shard-size 3)
SHAPES_CLASSES = ("background", "circle", "square", "triangle")
#: what both builds must record alike (``created`` and ``build_options`` differ by design)
SAME_INFO = (
    "schema",
    "schema_version",
    "feature_spec",
    "num_classes",
    "label_map",
    "ignore_label",
    "compression",
    "skipped",
    "source",
    "source_info",
)


def _info(folder: Path) -> dict:
    return json.loads((folder / "dataset_info.json").read_text())


def _feature_values(feature) -> tuple:
    kind = feature.WhichOneof("kind")
    return (kind, tuple(getattr(feature, kind).value)) if kind else (None, ())


def examples(folder: Path) -> dict[str, list]:
    """split -> every record of its shards parsed as a ``tf.train.Example`` (feature -> kind and values),
    sorted (order aside); each shard's SHA-256 is checked against ``dataset_info.json`` on the way."""
    info = _info(folder)
    found = {}
    for split, entry in info["splits"].items():
        decoded = []
        for shard in entry["shards"]:
            path = folder / shard["file"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == shard["sha256"], path
            for record in tf.data.TFRecordDataset(str(path), compression_type=info["compression"] or ""):
                example = tf.train.Example.FromString(record.numpy())
                decoded.append(sorted((k, _feature_values(f)) for k, f in example.features.feature.items()))
        assert len(decoded) == entry["count"], (split, len(decoded), entry["count"])
        found[split] = sorted(decoded, key=repr)
    return found


def assert_same_dataset(local: Path, beam: Path) -> dict:
    """The two builds hold the same examples, counts, label map and shard names; returns the Beam build's info."""
    a, b = _info(local), _info(beam)
    assert sorted(a) == sorted(b)  # the same fields
    for key in SAME_INFO:
        assert a.get(key) == b.get(key), key
    assert {s: e["count"] for s, e in a["splits"].items()} == {s: e["count"] for s, e in b["splits"].items()}
    for split in a["splits"]:
        assert [s["file"] for s in a["splits"][split]["shards"]] == [s["file"] for s in b["splits"][split]["shards"]]
    assert a["build_options"] | {"runner": "beam", "beam_runner": "FnApiRunner"} == b["build_options"]
    assert a["build_options"]["runner"] == "local" and a["build_options"]["beam_runner"] is None
    assert examples(local) == examples(beam)
    return b


# ------------------------------------------------------------------------- shapes, every task


@pytest.mark.parametrize("task", ["segmentation", "classification", "detection"])
def test_beam_build_of_shapes_equals_the_local_build(tmp_path: Path, task: str) -> None:
    from skelgen import api
    from skelgen_runtime.samples.shapes import write_shapes

    project = make_project(tmp_path / "ws", f"{task}_beam", task)
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
    write_shapes(project / "datasets/shapes", task=task, counts=COUNTS, size=SIZE)
    build = ["datasets/build_shapes_to_tfrecord.py", "--shard-size", "3"]

    script(project, *build, "--workers", "1", "--out", str(tmp_path / "local"))
    proc = script(project, *build, "--runner", "beam", "--out", str(tmp_path / "beam"))
    assert f"({SHARDS} shards written with Apache Beam's FnApiRunner, 0 reused)" in proc.stdout, proc.stdout
    info = assert_same_dataset(tmp_path / "local", tmp_path / "beam")
    assert {s: e["count"] for s, e in info["splits"].items()} == COUNTS
    classes = SHAPES_CLASSES if task == "segmentation" else SHAPES_CLASSES[1:]  # no background class
    assert [c["name"] for c in info["label_map"]] == list(classes)

    proc = script(project, *build, "--runner", "beam", "--out", str(tmp_path / "beam"))
    assert f"(0 shards written, {SHARDS} reused)" in proc.stdout, proc.stdout  # a rerun resumes, as locally
    assert "--runner {local,beam}" in script(project, build[0], "--help").stdout


# ------------------------------------------------------------------------------ BraTS volumes


def _build_brats(raw: Path, out: Path, *args: str):
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import BratsSource

    return main(
        dataset="brats",
        default_source=raw,
        out_dir=out,
        schema_task="segmentation",
        make_source=lambda root, release: BratsSource(root, release=release),
        argv=["--shard-size", "2", *args],
        extra_options=BratsSource.build_options,
    )


def test_beam_build_of_a_brats_replica_equals_the_local_build(tmp_path: Path) -> None:
    from test_brats import check_records, make_brats2021, records

    replica = make_brats2021(
        tmp_path / "raw", cases=("BraTS2021_00000", "BraTS2021_00002", "BraTS2021_00003", "BraTS2021_00004")
    )
    _build_brats(tmp_path / "raw", tmp_path / "local", "--workers", "1")
    report = _build_brats(tmp_path / "raw", tmp_path / "beam", "--runner", "beam")
    info = assert_same_dataset(tmp_path / "local", tmp_path / "beam")
    shards = [len(e["shards"]) for e in info["splits"].values()]
    assert report.runner == "FnApiRunner" and report.written_shards == sum(shards) and max(shards) == 2
    assert info["compression"] is None and info["source_info"]["release"] == "brats2021"
    check_records(replica, tmp_path / "beam", "brats2021")  # every voxel as the replica wrote it
    local, beam = records(tmp_path / "local"), records(tmp_path / "beam")
    assert sorted(local) == sorted(beam) == sorted(replica)
    for case in local:  # decoded volumes, labels, spacing, affine, header: equal
        assert sorted(local[case]) == sorted(beam[case])
        for key, value in local[case].items():
            np.testing.assert_array_equal(value, beam[case][key], err_msg=f"{case} {key}")


# -------------------------------------------------------------- where Beam builds write and run


def _shapes_raw(root: Path, *, bad: bool = False) -> Path:
    from skelgen_runtime.samples.shapes import write_shapes

    write_shapes(root, task="segmentation", counts=COUNTS, size=SIZE)
    if bad:  # a label of another size than its image
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(root / "annotations/train/train_00005.png")
    return root


def _build_shapes(raw: Path, out: Path | str, *args: str):
    from skelgen_runtime.records.build import main
    from skelgen_runtime.sources import ImagesMasksSource, LabelMap

    return main(
        dataset="shapes",
        default_source=raw,
        out_dir=out,
        schema_task="segmentation",
        make_source=lambda root: ImagesMasksSource(root, LabelMap(SHAPES_CLASSES)),
        argv=["--shard-size", "3", "--out", str(out), *args],
    )


def test_beam_build_writes_a_url_that_tf_io_gfile_writes(tmp_path: Path, monkeypatch) -> None:
    """TensorFlow's in-memory file system (``ram://``, in this process) stands in for a bucket."""
    scratch = tmp_path / "tmp"  # the temporary folders of this process's builds
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    raw = _shapes_raw(tmp_path / "raw")
    url = "ram://skelgen-test-bucket/shapes/tfrecords"
    _build_shapes(raw, tmp_path / "local", "--workers", "1")
    report = _build_shapes(raw, url, "--runner", "beam")
    assert report.info_path == f"{url}/dataset_info.json" and report.written_shards == SHARDS
    copied = tmp_path / "copied"
    copied.mkdir()
    for name in tf.io.gfile.listdir(url):
        assert ".tmp-" not in name
        if not tf.io.gfile.isdir(f"{url}/{name}"):
            tf.io.gfile.copy(f"{url}/{name}", str(copied / name))
    assert_same_dataset(tmp_path / "local", copied)
    assert {"dataset_info.json", "features.json"} <= set(tf.io.gfile.listdir(f"{url}/tfds"))  # TFDS reads it
    assert _build_shapes(raw, url, "--runner", "beam").reused_shards == SHARDS  # resumes from the URL's sidecars
    assert not list(scratch.iterdir())  # Beam's pipeline folder is removed also when no shard is left to write


def test_beam_build_in_worker_processes(tmp_path: Path) -> None:
    """Beam's local runner with two worker processes: the reader and the writer travel to them pickled."""
    raw = _shapes_raw(tmp_path / "raw")
    _build_shapes(raw, tmp_path / "local", "--workers", "1")
    report = _build_shapes(
        raw,
        tmp_path / "beam",
        "--runner",
        "beam",
        "--beam-options",
        "--direct_num_workers=2 --direct_running_mode=multi_processing",
    )
    assert report.written_shards == SHARDS
    assert_same_dataset(tmp_path / "local", tmp_path / "beam")


def test_bad_examples_skip_bad_and_max_examples_as_in_local_builds(tmp_path: Path, capsys) -> None:
    raw = _shapes_raw(tmp_path / "raw", bad=True)
    runners = {"local": ["--workers", "1"], "beam": ["--runner", "beam"]}
    errors = {}
    for name, args in runners.items():
        with pytest.raises(SystemExit) as stop:
            _build_shapes(raw, tmp_path / name, *args)
        assert stop.value.code == 1
        errors[name] = capsys.readouterr().err.strip().splitlines()[-1]
        assert not (tmp_path / name / "dataset_info.json").exists()
    assert errors["beam"] == errors["local"]
    assert errors["beam"].startswith(f"error: {raw / 'annotations/train/train_00005.png'}: label is 30x20")

    reports = {name: _build_shapes(raw, tmp_path / name, "--skip-bad", *args) for name, args in runners.items()}
    assert reports["beam"].skipped == reports["local"].skipped and len(reports["beam"].skipped) == 1
    assert reports["beam"].counts == reports["local"].counts == {**COUNTS, "train": COUNTS["train"] - 1}
    assert_same_dataset(tmp_path / "local", tmp_path / "beam")
    assert not [p for p in (tmp_path / "beam").iterdir() if ".tmp-" in p.name]  # the failure record is gone

    for name, args in runners.items():
        reports[name] = _build_shapes(raw, tmp_path / f"{name}3", "--skip-bad", "--max-examples", "3", *args)
    assert reports["beam"].counts == reports["local"].counts == {"train": 3, "val": 3, "pred": 2}
    assert_same_dataset(tmp_path / "local3", tmp_path / "beam3")


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--runner", "beam", "--beam-options", "--runer=DataflowRunner"],
            "error: --beam-options: Beam has no option --runer; did you mean 'runner'?",
        ),
        (
            ["--runner", "beam", "--beam-options", "--runner=NoSuchRunner"],
            "error: --beam-options '--runner=NoSuchRunner': Unexpected pipeline runner: NoSuchRunner.",
        ),
        (
            ["--beam-options", "--direct_num_workers=2"],
            "error: --beam-options applies to Beam builds: add --runner beam",
        ),
        (["--runner", "beam", "--workers", "2"], "error: --workers applies to local builds;"),
    ],
)
def test_beam_option_mistakes_stop_with_one_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    raw = _shapes_raw(tmp_path / "raw")
    with pytest.raises(SystemExit) as stop:
        _build_shapes(raw, tmp_path / "out", *args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and err.count("error:") == 1, err
    assert not (tmp_path / "out" / "dataset_info.json").exists()


def test_without_beam_installed_the_build_says_how_to_install_it(tmp_path: Path) -> None:
    raw = _shapes_raw(tmp_path / "raw")
    code = (
        "import sys\n"
        "sys.modules['apache_beam'] = None  # what an environment without Apache Beam imports\n"
        "from pathlib import Path\n"
        "from skelgen_runtime.records.build import main\n"
        "from skelgen_runtime.sources import ImagesMasksSource, LabelMap\n"
        f"args = dict(dataset='shapes', default_source=Path({str(raw)!r}), schema_task='segmentation',\n"
        f"            make_source=lambda root: ImagesMasksSource(root, LabelMap({SHAPES_CLASSES!r})))\n"
        f"main(out_dir=Path({str(tmp_path / 'local')!r}), argv=['--workers', '1'], **args)  # needs no Beam\n"
        f"main(out_dir=Path({str(tmp_path / 'beam')!r}), argv=['--runner', 'beam'], **args)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert (tmp_path / "local" / "dataset_info.json").is_file()
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: --runner beam needs Apache Beam, which is not installed here; install it with: "
        "pip install 'skelgen-tf[beam]'"
    )
    assert not (tmp_path / "beam").exists()  # said before reading the source
