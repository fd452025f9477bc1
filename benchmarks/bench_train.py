"""Training rows: the generated ``train.py`` against a bare ``model.fit`` and a bare ``tf.GradientTape`` loop.

All three train the same model (the project's ``core.build_model``) on the same batches (the
project's pipeline) with the same loss, optimiser and metrics, validating after each
epoch. What differs is only the loop and what ``train.py`` adds around it (run folders, config
dump, callbacks, checkpoints, TensorBoard). Two measures per side:

- seconds per epoch after the first (which traces the step functions), from the start of an
  epoch to the end of its validation: ``train.py``'s own ``metrics.csv`` column ``seconds``, and
  the same interval in the bare loops;
- the whole process, start-up and everything between epochs included.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from common import Row, Settings, median, python, quiet_env

__all__ = ["train_rows"]

BARE = r"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
import keras
import tensorflow as tf

import core
from core.config import Config
from core.losses import build_loss
from datasets.build_data import TASK
from core.project import PROJECT
from skelgen_runtime.config import load_config
from skelgen_runtime.tasks import get_binding
from skelgen_runtime.training.optim import make_optimizer

loop, overrides = sys.argv[1], sys.argv[2:]
config = load_config(Path("configs/default.yaml"), overrides, schema=Config)
keras.utils.set_random_seed(config.train.seed)
pipeline = PROJECT.open_data(Path.cwd(), config.data)
info = pipeline.info
task = get_binding(TASK, info.schema)
steps, epochs = config.train.steps_per_epoch, config.train.epochs
train_ds = pipeline.train_batches(seed=config.train.seed, repeat=True)
val_ds = pipeline.val_batches("val")
model = core.build_model(config.model, num_classes=info.num_classes,
                         input_shape=tuple(pipeline.input_shape))
optimizer, loss, metrics = make_optimizer(config.train, steps), build_loss(config, info), task.train_metrics(config, info)
seconds = []


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        seconds.append(time.time() - self.start)


if loop == "fit":
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps, verbose=0,
              callbacks=[EpochTimer()])
else:
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(y, model(x, training=True)))  # per-example losses
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    @tf.function
    def val_step(x, y):
        pred = model(x, training=False)
        for metric in metrics:
            metric.update_state(y, pred)
        return tf.reduce_mean(loss(y, pred))

    batches = iter(train_ds)
    for _ in range(epochs):
        start = time.time()
        for _ in range(steps):
            train_step(*next(batches))
        for metric in metrics:
            metric.reset_state()
        for x, y in val_ds:
            val_step(x, y)
        seconds.append(time.time() - start)
print("epoch_seconds=" + ",".join(str(s) for s in seconds))
"""


def _run(cmd: list[str], project: Path) -> tuple[float, list[float]]:
    """Run one training process; return its wall time and its epoch times after the first."""
    import time

    logs = project / "logs"
    before = set(logs.iterdir()) if logs.is_dir() else set()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=quiet_env(), capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    printed = [line.split("=", 1)[1] for line in proc.stdout.splitlines() if line.startswith("epoch_seconds=")]
    if printed:
        epochs = [float(v) for v in printed[-1].split(",")]
    else:  # train.py: its run's metrics.csv
        (run,) = set(logs.iterdir()) - before
        with open(run / "metrics.csv") as f:
            epochs = [float(row["seconds"]) for row in csv.DictReader(f)]
    return wall, epochs[1:]


def train_rows(settings: Settings, project: Path) -> list[Row]:
    """``project``: a generated segmentation project whose shapes dataset is built."""
    script = settings.work / "bare_loop.py"
    script.write_text(BARE)
    size = settings.pick(128, 32)
    overrides = [
        f"data.image_size=[{size},{size}]",
        f"train.epochs={settings.pick(3, 2)}",
        f"train.steps_per_epoch={settings.pick(8, 2)}",
        f"data.shuffle_buffer={settings.pick(1024, 16)}",
    ]
    if settings.quick:
        overrides += ["model.base_filters=4", "model.depth=2"]
    sets = [a for o in overrides for a in ("--set", o)]
    commands = {
        "train.py": python("train.py", "--config", "configs/default.yaml", *sets),
        "fit": python(script, "fit", *overrides),
        "tape": python(script, "tape", *overrides),
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    epochs: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(max(1, settings.reps - 1)):  # each run gives several epochs; the suite's slowest group
        for name, cmd in commands.items():
            wall, seconds = _run(cmd, project)
            walls[name].append(wall)
            epochs[name] += seconds
    note = " ".join(overrides)
    rows = []
    for base, label in (("fit", "bare model.fit"), ("tape", "bare GradientTape loop")):
        rows += [
            Row(
                "train",
                f"train.py vs {label}: seconds per epoch after the first",
                median(epochs["train.py"]),
                median(epochs[base]),
                "s/epoch",
                False,
                0.97 if base == "fit" else None,
                {"ours": epochs["train.py"], "baseline": epochs[base]},
                f"{note}; steps and validation",
            ),
            Row(
                "train",
                f"train.py vs {label}: whole process",
                median(walls["train.py"]),
                median(walls[base]),
                "s",
                False,
                None,
                {"ours": walls["train.py"], "baseline": walls[base]},
                "start-up, checkpoints, TensorBoard and the final save included",
            ),
        ]
    return rows
