"""Model rows: transfer from the project's own pretraining, measured without any download.

- ``transfer``: a classification project trains its demo (the ``simple`` backbone on the ``shapes``
  classification set, 2,000 images); a segmentation project then trains on 40 ``shapes`` images (5 %
  of the 800 of the full training split) twice, same config, epochs and seed: from scratch, and from the
  classification run's ``final.keras`` (``model.weights``: its ``encoder.*`` layers), the backbone
  frozen for the first epochs. The row reports both runs' best validation mIoU on the full
  validation split; the target is the pretrained start at least 0.05 mIoU higher.
- ``latency``: per task and backbone, the serving function (raw uint8 image in, the task's outputs
  out: resizing, normalisation or the backbone's own preprocessing, decoding) on one 128x128 image,
  median of 50 calls after 5 warm-ups: the SavedModel in TensorFlow against ``model.onnx`` in
  onnxruntime (both on this CPU, written by ``export.py``'s library function). These are the
  milliseconds of the generated README's model table.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

from common import Row, Settings, python, quiet_env

__all__ = ["transfer_rows", "latency_rows", "LATENCY"]

#: the segmentation runs: the classification demo's backbone (simple, 16 filters, depth 4) at its size
SEGMENTATION = ["--config", "configs/demo.yaml", "--set", "model.depth=4", "--set", "data.batch_size=8"]


def _train(project: Path, *args: str) -> Path:
    """Run ``train.py ARGS`` in ``project``; its run's log folder."""
    logs = project / "logs"
    before = {p for p in logs.iterdir() if p.is_dir()}
    proc = subprocess.run(
        python("train.py", *args), cwd=project, env=quiet_env(), capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise SystemExit(f"train.py {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    (run,) = {p for p in logs.iterdir() if p.is_dir()} - before
    return run


def _best(run: Path, column: str) -> float:
    with open(run / "metrics.csv") as f:
        return max(float(row[column]) for row in csv.DictReader(f))


def _project(work: Path, name: str, task: str, counts: dict[str, int]) -> Path:
    from skelgen import api
    from skelgen_runtime.samples.shapes import write_shapes

    shutil.rmtree(work / "models-ws" / name, ignore_errors=True)
    project = api.new_project(name=name, task=task, framework="keras", workspace=work / "models-ws").path
    api.add_dataset(name="shapes", project=project, sample_counts={"train": 0, "val": 0, "pred": 0})
    write_shapes(project / "datasets" / "shapes", task=task, counts=counts, size=64)
    subprocess.run(
        python("datasets/build_shapes_to_tfrecord.py"), cwd=project, env=quiet_env(), check=True, capture_output=True
    )
    return project


def transfer_rows(settings: Settings) -> list[Row]:
    """Segmentation on 40 images from a classification-pretrained backbone vs from scratch."""
    work = settings.work
    cls_counts = settings.pick({"train": 2000, "val": 400, "pred": 0}, {"train": 64, "val": 16, "pred": 0})
    seg_counts = settings.pick({"train": 40, "val": 200, "pred": 0}, {"train": 16, "val": 16, "pred": 0})
    classification = _project(work, "pretrain", "classification", cls_counts)
    cls_epochs = settings.pick([], ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=2"])
    pretrain = _train(classification, "--config", "configs/demo.yaml", *cls_epochs)
    weights = classification / "models" / pretrain.name / "final.keras"

    segmentation = _project(work, "transfer", "segmentation", seg_counts)
    # 40 images make 5 batches: 20 steps per epoch (the images repeat, augmented) give BatchNorm's moving
    # statistics the steps they need to settle
    epochs = settings.pick(
        ["--set", "train.epochs=30", "--set", "train.steps_per_epoch=20"],
        ["--set", "train.epochs=2", "--set", "train.steps_per_epoch=2"],
    )
    scratch = _train(segmentation, *SEGMENTATION, *epochs)
    pretrained = _train(
        segmentation,
        *SEGMENTATION,
        *epochs,
        "--set",
        f"model.weights={weights}",
        "--set",
        f"train.freeze_backbone_epochs={settings.pick(3, 1)}",
    )
    ours, baseline = _best(pretrained, "val_miou"), _best(scratch, "val_miou")
    return [
        Row(
            "models",
            f"transfer: segmentation on {seg_counts['train']} shapes images, best val mIoU, backbone pretrained "
            "by the project's classification demo vs from scratch",
            ours,
            baseline,
            "mIoU",
            True,
            0.05,
            {"ours": [ours], "baseline": [baseline], "classification_val_accuracy": [_best(pretrain, "val_accuracy")]},
            f"{' '.join(SEGMENTATION[2:] + epochs)}; pretrained: model.weights=<classification final.keras>, "
            f"freeze_backbone_epochs={settings.pick(3, 1)}; same seed",
            compare="difference",
        )
    ]


#: run inside a project: every backbone's serving function timed in TensorFlow and onnxruntime
LATENCY = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
import keras, numpy as np, onnxruntime, tensorflow as tf

import core
from core.backbones import BACKBONES
from core.config import Config
from datasets.build_data import TASK
from core.project import PROJECT
from skelgen_runtime.config import load_config
from skelgen_runtime.serving import Trained, export_model
from skelgen_runtime.tasks import get_binding

backbones, calls, size = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
image = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)


def median_ms(call):
    for _ in range(5):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


for name in backbones:
    keras.utils.set_random_seed(0)
    config = load_config(Path("configs/default.yaml"), [f"model.backbone={name}", f"data.image_size=[{size},{size}]"],
                         schema=Config)
    pipeline = PROJECT.open_data(Path.cwd(), config.data)
    info = pipeline.info
    task = get_binding(TASK, info.schema)
    model = core.build_model(config.model, num_classes=info.num_classes,
                             input_shape=tuple(pipeline.input_shape))
    with tempfile.TemporaryDirectory() as tmp:
        serve = task.serving_function(model, config, info)
        trained = Trained(model, "final", Path(tmp) / "none")
        export_model(serve, trained, "saved_model", Path(tmp) / "saved", labels=[])
        # an untrained detector's scores tie (all at the prior, or saturated): its rows are any order,
        # so the parity check (done for the trained models of tests/test_export.py) would compare nothing
        export_model(serve, trained, "onnx", Path(tmp) / "onnx", labels=[], check_parity=TASK != "detection")
        signature = tf.saved_model.load(str(Path(tmp) / "saved")).signatures["serving_default"]
        session = onnxruntime.InferenceSession(str(Path(tmp) / "onnx" / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        tensor = tf.constant(image)
        tf_ms = median_ms(lambda: signature(images=tensor))
        ort_ms = median_ms(lambda: session.run(None, {"images": image}))
        parity = json.loads((Path(tmp) / "onnx" / "export.json").read_text())["parity"]
    print("latency=" + json.dumps({"task": TASK, "backbone": name, "parameters": model.count_params(),
                                   "input": getattr(BACKBONES.get(name), "input_preprocessing", None)
                                   or "(x / 255 - data.mean) / data.std",
                                   "tf_ms": tf_ms, "onnx_ms": ort_ms, "parity": parity}), flush=True)
"""


def latency_rows(settings: Settings) -> list[Row]:
    """TensorFlow vs onnxruntime milliseconds per image, every task and backbone (``--quick``: one)."""
    script = settings.work / "latency.py"
    script.write_text(LATENCY)
    backbones = settings.pick(["simple", "mobilenetv2", "resnet50", "efficientnetb0"], ["simple"])
    tasks = settings.pick(["segmentation", "classification", "detection"], ["classification"])
    calls = settings.pick(50, 5)
    rows, table = [], []
    for task in tasks:
        project = _project(settings.work, f"latency_{task}", task, {"train": 8, "val": 8, "pred": 0})
        proc = subprocess.run(
            python(script, ",".join(backbones), calls, 128),
            cwd=project,
            env=quiet_env(),
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise SystemExit(f"latency ({task}) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        for line in proc.stdout.splitlines():
            if not line.startswith("latency="):
                continue
            m = json.loads(line.removeprefix("latency="))
            table.append(m)
            rows.append(
                Row(
                    "models",
                    f"{task} {m['backbone']} 128x128: onnxruntime vs TensorFlow (SavedModel), ms per image",
                    m["onnx_ms"],
                    m["tf_ms"],
                    "ms",
                    False,
                    None,
                    {"ours": [m["onnx_ms"]], "baseline": [m["tf_ms"]]},
                    f"{m['parameters']:,} parameters; median of {calls} calls; ONNX parity "
                    f"{(m['parity'] or {}).get('max_abs_difference', 'not checked (untrained detector)')}",
                )
            )
    (settings.work / "model-table.json").write_text(json.dumps(table, indent=2))
    return rows
