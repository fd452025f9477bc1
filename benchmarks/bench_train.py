"""Training rows: the generated ``train.py`` against a bare ``model.fit`` and a bare ``tf.GradientTape`` loop.

All three train the same model (the project's ``core.build_model``) on the same batches (the
project's ``data_generator``) with the same loss, optimiser and metrics, validating after each
epoch; each is one process, timed end to end. What differs is only the loop and what
``train.py`` adds around it (run folders, config dump, callbacks, checkpoints, TensorBoard).
"""

from __future__ import annotations

from pathlib import Path

from common import Row, Settings, interleave, median, python, run_timed

__all__ = ["train_rows"]

BARE = r'''
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
from skelgen_runtime.config import load_config
from datasets.build_data import TASK

loop, overrides = sys.argv[1], sys.argv[2:]
config = load_config(Path("configs/default.yaml"), overrides, task=TASK)

import keras
import tensorflow as tf

import core
from datasets import data_generator
from skelgen_runtime.tasks import get_task_for
from skelgen_runtime.training.optim import make_optimizer

keras.utils.set_random_seed(config.train.seed)
info = data_generator.dataset_info(config.data)
task = get_task_for(TASK, info.schema)
steps, epochs = config.train.steps_per_epoch, config.train.epochs
train_ds = data_generator.train_dataset(config.data, info, seed=config.train.seed, repeat=True)
val_ds = data_generator.eval_dataset(config.data, info, split="val")
model = core.build_model(config.model, num_classes=info.num_classes,
                         input_shape=tuple(data_generator.model_input_shape(config.data, info)))
optimizer, loss, metrics = make_optimizer(config.train, steps), task.loss(config, info), task.train_metrics(config, info)
if loop == "fit":
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps, verbose=0)
else:
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    @tf.function
    def val_step(x, y):
        pred = model(x, training=False)
        for metric in metrics:
            metric.update_state(y, pred)
        return loss(y, pred)

    batches = iter(train_ds)
    for _ in range(epochs):
        for _ in range(steps):
            train_step(*next(batches))
        for metric in metrics:
            metric.reset_state()
        for x, y in val_ds:
            val_step(x, y)
'''


def train_rows(settings: Settings, project: Path) -> list[Row]:
    """``project``: a generated segmentation project whose shapes dataset is built."""
    script = settings.work / "bare_loop.py"
    script.write_text(BARE)
    size = settings.pick(128, 32)
    overrides = [f"data.image_size=[{size},{size}]", f"train.epochs={settings.pick(3, 1)}",
                 f"train.steps_per_epoch={settings.pick(25, 2)}", f"data.shuffle_buffer={settings.pick(1024, 16)}"]
    if settings.quick:
        overrides += ["model.base_filters=4", "model.depth=2"]

    def train_py() -> float:
        sets = [a for o in overrides for a in ("--set", o)]
        return run_timed(python("train.py", "--config", "configs/default.yaml", *sets), cwd=project)

    times = interleave({
        "train.py": train_py,
        "fit": lambda: run_timed(python(script, "fit", *overrides), cwd=project),
        "tape": lambda: run_timed(python(script, "tape", *overrides), cwd=project),
    }, settings.reps)
    note = f"{' '.join(overrides)}; whole process each (TensorFlow start-up included)"
    return [
        Row("train", "train.py vs bare model.fit", median(times["train.py"]), median(times["fit"]), "s", False, 0.97,
            {"ours": times["train.py"], "baseline": times["fit"]}, note),
        Row("train", "train.py vs bare GradientTape loop", median(times["train.py"]), median(times["tape"]), "s",
            False, None, {"ours": times["train.py"], "baseline": times["tape"]}),
    ]
