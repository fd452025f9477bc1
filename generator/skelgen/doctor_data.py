"""``skelgen doctor``'s findings, and its checks of what a project holds and runs on: datasets, weights, disk,
devices. See :mod:`skelgen.doctor` for the order and the statuses."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from skelgen.workspace import read_answers
from skelgen_runtime._text import count, listing
from skelgen_runtime.layout import ProjectLayout

__all__ = ["CHECKS", "Finding", "check_datasets", "check_weights", "check_disk", "check_devices", "HASH_BUDGET"]

CHECKS = ("versions", "template", "git", "datasets", "runs", "weights", "disk", "devices")

#: bytes of shards hashed per project without --full (about 2 s of SHA-256 on one core)
HASH_BUDGET = 2 << 30


@dataclass(frozen=True)
class Finding:
    """One result: ``check`` (one of :data:`CHECKS`), ``status`` (ok, warn, fail), what was found, and the fix."""

    check: str
    status: str
    message: str
    fix: str | None = None
    project: str | None = None


def _ok(check: str, message: str) -> Finding:
    return Finding(check, "ok", message)


def _warn(check: str, message: str, fix: str | None = None) -> Finding:
    return Finding(check, "warn", message, fix)


def _fail(check: str, message: str, fix: str) -> Finding:
    return Finding(check, "fail", message, fix)


def _configs(root: Path) -> Iterable[tuple[Path, dict[str, Any]]]:
    import yaml

    for path in sorted(ProjectLayout(root).configs.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue  # the config's own errors are train.py's to report, with the line
        if isinstance(data, dict):
            yield path, data


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def _dataset_names(root: Path) -> list[str]:
    names = []
    for answers in ProjectLayout(root).all_dataset_answers():
        names.append(str(read_answers(answers).get("dataset_name") or answers.name.split(".")[2]))
    return names


def _runs_by_dataset(root: Path) -> dict[str, list[dict[str, Any]]]:
    from skelgen_runtime.runs import list_runs

    by_name: dict[str, list[dict[str, Any]]] = {}
    for run in list_runs(root):
        try:
            record = run.record()
        except Exception:  # noqa: BLE001 - reported by the runs check
            continue
        dataset = record.get("dataset") or {}
        if isinstance(dataset, dict) and dataset.get("name"):
            by_name.setdefault(dataset["name"], []).append(record)
    return by_name


def check_datasets(root: Path, *, full: bool = False) -> list[Finding]:
    from skelgen_runtime.errors import SkelgenError
    from skelgen_runtime.files import file_digest
    from skelgen_runtime.tasks import binding_for_schema, get_schema

    layout = ProjectLayout(root)
    task = str(read_answers(layout.answers).get("task", ""))
    runs = _runs_by_dataset(root)
    budget = None if full else HASH_BUDGET
    found = []
    for name in _dataset_names(root):
        info_file = layout.dataset_info(name)
        build = f"python datasets/build_{name}_to_tfrecord.py"
        if not info_file.is_file():
            found.append(_warn("datasets", f"{name}: not built yet", build))
            continue
        try:
            info = json.loads(info_file.read_text())
            schema, version = info["schema"], info.get("schema_version")
            splits = info["splits"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            found.append(_fail("datasets", f"{name}: {info_file.relative_to(root)} cannot be read ({err})", build))
            continue
        try:
            binding_for_schema(task, schema)
            readable = get_schema(schema).readable_versions
        except SkelgenError as err:
            found.append(_fail("datasets", f"{name}: {err}", build))
            continue
        if version not in readable:
            found.append(
                _fail(
                    "datasets",
                    f"{name}: its records are {schema} schema version {version}; this project reads version {readable[0]}",
                    build,
                )
            )
            continue
        missing, changed, unhashed, shards = [], [], 0, 0
        for split in splits.values():
            for shard in split.get("shards", []):
                if not shard.get("count"):
                    continue
                shards += 1
                path = info_file.parent / shard["file"]
                if not path.is_file():
                    missing.append(shard["file"])
                elif budget is not None and path.stat().st_size > budget:
                    unhashed += 1
                else:
                    if budget is not None:
                        budget -= path.stat().st_size
                    if shard.get("sha256") and file_digest(path) != shard["sha256"]:
                        changed.append(shard["file"])
        if missing or changed:
            what = "; ".join(
                part
                for part in (
                    f"missing: {listing(missing, 3)}" if missing else "",
                    f"changed since the build (SHA-256 differs): {listing(changed, 3)}" if changed else "",
                )
                if part
            )
            found.append(_fail("datasets", f"{name}: {what}", f"rebuild it: {build}"))
            continue
        note = f" ({count(unhashed, 'shard')} not hashed: skelgen doctor --full)" if unhashed else ""
        found.append(_ok("datasets", f"{name}: {count(shards, 'shard')} as dataset_info.json lists them{note}"))
        for record in runs.get(name, []):
            used = record["dataset"]
            if (used.get("schema"), used.get("schema_version")) != (schema, version):
                found.append(
                    _warn(
                        "datasets",
                        f"{name}: run {record.get('run_id')} trained on {used.get('schema')} schema version "
                        f"{used.get('schema_version')} records; the dataset now holds version {version}",
                        f"evaluate run {record.get('run_id')} on a dataset of its schema, or train again",
                    )
                )
    return found


def _is_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.endswith((".h5", ".keras", ".weights.h5")) or value.startswith("~")


def check_weights(root: Path) -> list[Finding]:
    from skelgen_runtime.models.applications import APPLICATIONS
    from skelgen_runtime.models.pretrained import IMAGENET, keras_models_dir

    found = []
    for path, config in _configs(root):
        model = _section(config, "model")
        weights, backbone = model.get("weights"), model.get("backbone")
        rel = path.relative_to(root)
        if not isinstance(weights, str):
            continue
        if weights == IMAGENET:
            app = APPLICATIONS.get(str(backbone))
            if app is None:
                continue  # validated by train.py with the project's registry
            size = _section(config, "data").get("image_size") or [224, 224]
            wanted = app.imagenet_file((*size[:2], 3)) if isinstance(size, list) and len(size) >= 2 else None
            cached = [f for f in app.imagenet_files() if (keras_models_dir() / f).is_file()]
            if (wanted and (keras_models_dir() / wanted).is_file()) or (not wanted and cached):
                found.append(_ok("weights", f"{rel}: {backbone} ImageNet weights are in {keras_models_dir()}"))
            else:
                name = wanted or app.imagenet_files()[0]
                found.append(
                    _warn(
                        "weights",
                        f"{rel}: model.weights: imagenet for {backbone} is not in {keras_models_dir()}: train.py "
                        "downloads it, which needs internet",
                        f"offline: download {app.weights_url}{name} elsewhere, then skelgen weights import {name} "
                        f"--backbone {backbone}",
                    )
                )
        elif _is_path(weights):
            given = Path(weights).expanduser()
            target = given if given.is_absolute() else root / given
            if target.exists():
                found.append(_ok("weights", f"{rel}: model.weights {weights} is there"))
            else:
                found.append(
                    _fail(
                        "weights",
                        f"{rel}: model.weights names {weights}, which does not exist ({target})",
                        f"put the file there, or change model.weights in {rel}",
                    )
                )
    return found or [_ok("weights", "no config names a weights file")]


def _size(path: Path) -> int:
    """Bytes under ``path`` (apparent sizes, what a build reads and writes), not following links."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def _gib(n: float) -> str:
    if n < 1 << 20:
        return "under 1 MiB"
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def check_disk(root: Path) -> list[Finding]:
    """A build writes its shards beside the current ones before replacing them: it needs about the size of the
    records it replaces, or, the first time, about the size of its raw data."""
    layout = ProjectLayout(root)
    need, largest = 0, None
    for name in _dataset_names(root):
        records = layout.tfrecords(name)
        if records.is_dir() and any(records.iterdir()):
            size = _size(records)
        else:
            answers = read_answers(layout.dataset_answers(name))
            source = Path(str(answers.get("source") or "")).expanduser() if answers.get("source") else None
            raw = source if source is not None and source.is_dir() else layout.dataset(name)
            size = _size(raw)
        if size > need:
            need, largest = size, name
    free = shutil.disk_usage(root).free
    if largest is not None and free < need * 1.1:
        return [
            _fail(
                "disk",
                f"building {largest} needs about {_gib(need * 1.1)}; {_gib(free)} is free on the disk of {root}",
                "free space there (old runs: logs/RUN and models/RUN of runs you no longer need), or build with "
                "--max-examples N for a subset",
            )
        ]
    return [
        _ok("disk", f"{_gib(free)} free" + (f" (the largest build, {largest}, needs {_gib(need)})" if largest else ""))
    ]


def check_devices(root: Path) -> list[Finding]:
    """What TensorFlow sees, and whether each config's ``train.distribute`` fits it (imports TensorFlow)."""
    from skelgen_runtime.startup import import_tensorflow

    try:
        tf = import_tensorflow()
    except Exception as err:  # noqa: BLE001 - any broken install
        return [
            _fail("devices", f"TensorFlow cannot be imported ({type(err).__name__}: {err})", "pip install -e '.[cpu]'")
        ]
    physical = tf.config.list_physical_devices()
    kinds: dict[str, int] = {}
    for device in physical:
        kinds[device.device_type] = kinds.get(device.device_type, 0) + 1
    seen = ", ".join(f"{count(n, kind)}" for kind, n in sorted(kinds.items())) or "no device"
    found = [_ok("devices", f"TensorFlow {tf.__version__} sees {seen}")]
    for path, config in _configs(root):
        strategy = _section(config, "train").get("distribute")
        rel = path.relative_to(root)
        if strategy == "mirrored" and not kinds.get("GPU"):
            found.append(
                _warn(
                    "devices",
                    f"{rel}: train.distribute: mirrored on a machine without GPUs trains on the CPU as one replica",
                    f"use train.distribute: default in {rel} here, mirrored on a GPU machine",
                )
            )
        elif strategy == "tpu" and not kinds.get("TPU") and not os.environ.get("TPU_NAME"):
            found.append(
                _fail(
                    "devices",
                    f"{rel}: train.distribute: tpu, but TensorFlow sees no TPU and TPU_NAME is not set",
                    f"run on a TPU VM, or set train.distribute: default in {rel}",
                )
            )
        elif strategy == "multi_worker":
            try:
                cluster = json.loads(os.environ.get("TF_CONFIG", "")).get("cluster")
            except (ValueError, AttributeError):
                cluster = None
            if not cluster:
                found.append(
                    _fail(
                        "devices",
                        f"{rel}: train.distribute: multi_worker needs TF_CONFIG (the cluster and this worker's task), "
                        "which is not set or not JSON",
                        'export TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                        '"task": {"type": "worker", "index": 0}}\' on each worker',
                    )
                )
    return found
