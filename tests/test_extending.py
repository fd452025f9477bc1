"""The project is the user's to extend: config schema, losses and training steps live in the project.

Each test edits a generated project the way a researcher would (a new model keyword, a new loss, a
gradient-clipping step, a Keras ``train_step`` override) and runs its real scripts.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import epochs_logged, make_project, script, train_and_kill
from skelgen.api import TASKS

TINY = [
    "--config",
    "configs/demo.yaml",
    "--set",
    "data.image_size=[32,32]",
    "--set",
    "data.batch_size=8",
    "--set",
    "model.base_filters=4",
    "--set",
    "model.depth=2",
]


def _copy(built_projects, task: str, framework: str, tmp_path: Path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(built_projects(task, framework), copy, symlinks=True)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _run_dir(project: Path, stdout: str) -> Path:
    return project / "logs" / next(line.split()[1] for line in stdout.splitlines() if line.startswith("run "))


# ------------------------------------------------------------------ every config of every task validates


_CHECK_CONFIGS = textwrap.dedent("""
    import json, sys, pathlib
    sys.path.insert(0, ".")
    import core
    from core.config import Config
    from core.project import PROJECT
    from skelgen_runtime.config import load_config
    from skelgen_runtime.data import DataPipeline, pipeline_class
    from skelgen_runtime.tasks import TASKS
    from skelgen_runtime.tasks.binding import TaskBinding
    import importlib
    built = {}
    for path in sorted(pathlib.Path("configs").glob("*.yaml")):
        config = load_config(path, schema=Config)
        if config.data.dataset == "shapes":
            model = core.build_model(config.model, num_classes=4, input_shape=(*config.data.image_size, 3))
            built[path.name] = model.count_params()
        else:
            built[path.name] = None
    kinds = [k.schema for k in TASKS[PROJECT.task].records]
    assert all(issubclass(pipeline_class(s, PROJECT.pipelines), DataPipeline) for s in kinds), kinds
    bindings = [importlib.import_module(k.binding) for s in TASKS.values() for k in s.records]
    assert all(isinstance(b, TaskBinding) for b in bindings), bindings
    print(json.dumps(built))
""")


@pytest.mark.parametrize("task", TASKS)
def test_every_config_validates_against_the_projects_schema_and_builds(tmp_path: Path, task: str) -> None:
    from skelgen import api

    project = make_project(tmp_path, "p", task, "tf")
    if task == "segmentation":
        api.add_dataset(name="brats", project=project)  # adds configs/brats_2d.yaml and brats_3d.yaml
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK_CONFIGS], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {"default.yaml", "demo.yaml"} | ({"brats_2d.yaml", "brats_3d.yaml"} if task == "segmentation" else set())
    assert set(built) == expected
    assert built["default.yaml"] > 0 and built["demo.yaml"] > 0


# ------------------------------------------------------------------ acceptance 1: a new model keyword


def test_a_new_builder_keyword_is_a_config_key_that_reaches_the_builder(built_projects, tmp_path: Path) -> None:
    project = _copy(built_projects, "segmentation", "keras", tmp_path)
    unet = project / "core" / "unet.py"
    _edit(unet, "    dropout: float = 0.0,\n", "    dropout: float = 0.0,\n    attention: bool = False,\n")
    _edit(
        unet,
        '    logits = layers.Conv2D(num_classes, 1, dtype="float32", name="head.logits")(x)',
        "    if attention:  # a spatial gate on the decoder output\n"
        '        gate = layers.Conv2D(1, 1, activation="sigmoid", name="head.attention")(x)\n'
        '        x = layers.Multiply(name="head.gated")([x, gate])\n'
        '    logits = layers.Conv2D(num_classes, 1, dtype="float32", name="head.logits")(x)',
    )

    out = script(
        project,
        "train.py",
        *TINY,
        "--set",
        "model.attention=true",
        "--set",
        "train.epochs=1",
        "--set",
        "train.steps_per_epoch=1",
    ).stdout
    run_dir = _run_dir(project, out)
    assert "attention: true" in (run_dir / "config.yaml").read_text()
    probe = (
        "import sys; sys.path.insert(0, '.'); import keras, core; "
        f"m = keras.models.load_model('models/{run_dir.name}/final.keras', compile=False); "
        "print([l.name for l in m.layers if l.name.startswith('head.')])"
    )
    layers = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, check=True)
    assert "head.attention" in layers.stdout, layers.stdout

    # the default (False) is recorded too, and a misspelt key still fails, naming the closest one
    proc = script(project, "train.py", *TINY, "--set", "model.atention=true", check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error:")
    assert "model.atention: unknown key" in last and "did you mean 'attention'?" in last


# ------------------------------------------------------------------ acceptance 2: a loss in core/losses.py


@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_a_loss_added_in_the_project_is_the_one_optimised(built_projects, tmp_path: Path, framework: str) -> None:
    project = _copy(built_projects, "segmentation", framework, tmp_path)
    losses = project / "core" / "losses.py"
    losses.write_text(
        losses.read_text()
        + textwrap.dedent('''

        @LOSSES.register("constant")
        def constant(config, info):
            """7 for every example, whatever the prediction (so no gradient either)."""
            import tensorflow as tf

            return lambda y_true, y_pred: tf.reduce_mean(y_pred, axis=[1, 2, 3]) * 0.0 + 7.0
    ''')
    )
    out = script(
        project,
        "train.py",
        *TINY,
        "--set",
        "train.loss=constant",
        "--set",
        "train.epochs=2",
        "--set",
        "train.steps_per_epoch=2",
    ).stdout
    rows = _metrics(_run_dir(project, out))
    assert [float(r["loss"]) for r in rows] == [7.0, 7.0]
    assert [float(r["val_loss"]) for r in rows] == [7.0, 7.0]

    proc = script(project, "train.py", *TINY, "--set", "train.loss=constnt", check=False)
    assert proc.returncode == 2 and "did you mean 'constant'?" in proc.stderr.strip().splitlines()[-1]


# ------------------------------------------------------------------ acceptance 3: the custom loop's step


def test_an_edited_train_step_takes_effect_and_resume_still_logs_each_epoch_once(
    built_projects, tmp_path: Path
) -> None:
    project = _copy(built_projects, "segmentation", "tf", tmp_path)
    _edit(
        project / "core" / "config.py",
        '    loss: registry_key(LOSSES) = "ce"\n',
        '    loss: registry_key(LOSSES) = "ce"\n'
        '    clip_norm: float | None = Field(None, gt=0, description="clip gradients to this global norm")\n',
    )
    _edit(
        project / "core" / "steps.py",
        "        grads = tape.gradient(scaled, self.model.trainable_variables)\n",
        "        grads = tape.gradient(scaled, self.model.trainable_variables)\n"
        "        if self.config.train.clip_norm is not None:\n"
        "            grads, _ = tf.clip_by_global_norm(grads, self.config.train.clip_norm)\n",
    )
    _edit(
        project / "core" / "steps.py",
        '        return {"loss": loss}\n',
        '        return {"loss": loss, "grad_norm": tf.linalg.global_norm(grads)}\n',
    )

    out = script(project, "train.py", *TINY, "--set", "train.epochs=1").stdout
    free = float(_metrics(_run_dir(project, out))[0]["grad_norm"])
    assert free > 0.01, "without clipping the gradients are not tiny"

    epochs = 30  # enough that the kill lands mid-run on a fast machine
    run_dir, _ = train_and_kill(
        project, [*TINY, "--set", "train.clip_norm=0.001", "--set", f"train.epochs={epochs}"], after_epochs=2
    )
    assert 2 <= len(epochs_logged(run_dir)) < epochs
    out = script(project, "train.py", "--resume", "auto").stdout
    assert f"resuming run {run_dir.name}" in out
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))
    norms = [float(r["grad_norm"]) for r in _metrics(run_dir)]
    assert all(0 < n <= 0.001 * (1 + 1e-4) for n in norms), norms
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


# ------------------------------------------------------------------ acceptance 4: Keras train_step override


_CLIPPED_MODEL = '''

@keras.saving.register_keras_serializable(package="project")
class ClippedModel(keras.Model):
    """A functional model whose training step clips gradients and logs their norm."""

    def train_step(self, data):
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads, norm = tf.clip_by_global_norm(tape.gradient(loss, self.trainable_variables), 0.5)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {**self.get_metrics_result(), "grad_norm": norm}
'''


def test_a_keras_model_overriding_train_step_trains_and_writes_the_same_run_record(
    built_projects, tmp_path: Path
) -> None:
    project = _copy(built_projects, "segmentation", "keras", tmp_path)
    unet = project / "core" / "unet.py"
    unet.write_text(unet.read_text() + _CLIPPED_MODEL)
    _edit(
        unet, "    return keras.Model(inputs, logits, name=name)", "    return ClippedModel(inputs, logits, name=name)"
    )

    out = script(project, "train.py", *TINY, "--set", "train.epochs=2").stdout
    run_dir = _run_dir(project, out)
    rows = _metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "miou", "val_loss", "val_miou", "grad_norm", "learning_rate"} <= set(rows[0])
    assert all(float(r["grad_norm"]) > 0 for r in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["epochs_done"] == 2
    model_dir = project / "models" / run_dir.name
    for path in ("final.keras", "checkpoints/last.weights.h5", "checkpoints/best.weights.h5"):
        assert (model_dir / path).is_file(), path
    assert list(run_dir.glob("events.out.tfevents.*"))
    # the saved model is the subclass, and the scripts load it
    ev = script(project, "evaluate.py", "--run", run_dir.name).stdout
    assert "miou=" in ev


# ------------------------------------------------------------------ an optimizer in core/optimizers.py


def test_an_optimizer_added_in_the_project_is_the_one_used_and_keys_it_ignores_are_refused(
    built_projects, tmp_path: Path
) -> None:
    project = _copy(built_projects, "segmentation", "tf", tmp_path)
    optimizers = project / "core" / "optimizers.py"
    optimizers.write_text(
        optimizers.read_text()
        + textwrap.dedent("""

        import keras


        @OPTIMIZERS.register("heavy_ball")
        @reads("momentum")
        def heavy_ball(train, learning_rate):
            print(f"heavy_ball: momentum {train.momentum}, learning rate {learning_rate}", flush=True)
            return keras.optimizers.SGD(learning_rate, momentum=train.momentum)
    """)
    )
    out = script(
        project,
        "train.py",
        *TINY,
        "--set",
        "train.optimizer=heavy_ball",
        "--set",
        "train.momentum=0.5",
        "--set",
        "train.lr_schedule=constant",
        "--set",
        "train.learning_rate=0.05",
        "--set",
        "train.epochs=2",
        "--set",
        "train.steps_per_epoch=2",
    ).stdout
    assert "heavy_ball: momentum 0.5, learning rate 0.05" in out
    assert [float(r["learning_rate"]) for r in _metrics(_run_dir(project, out))] == pytest.approx([0.05, 0.05])

    def refused(*sets: str) -> str:
        proc = script(project, "train.py", *TINY, *(a for s in sets for a in ("--set", s)), check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        return proc.stderr.strip().splitlines()[-1]

    assert refused("train.optimizer=heavy_ball", "train.weight_decay=0.01").endswith(
        "train.weight_decay: 0.01 has no effect with train.optimizer heavy_ball (only adamw read it); "
        "remove it or choose adamw"
    )
    assert "train.momentum: 0.5 has no effect with train.optimizer adam (only heavy_ball, sgd read it)" in refused(
        "train.momentum=0.5"
    )
    assert "train.warmup_epochs: 2 has no effect with train.lr_schedule constant" in refused(
        "train.lr_schedule=constant", "train.warmup_epochs=2"
    )
    assert "did you mean 'heavy_ball'?" in refused("train.optimizer=heavy_bal")
    assert len(list((project / "logs").glob("*/run.json"))) == 1, "a refused config must not start a run"


# ------------------------------------------------------------------ the escape hatch: a train.py of your own


_EMA_TRAIN = '''"""A hand-written train.py: a student and an EMA teacher, from skelgen's public entry points."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import tensorflow as tf  # noqa: E402

from skelgen_runtime.errors import exit_on_error  # noqa: E402
from skelgen_runtime.jobs import Training, train_arguments  # noqa: E402


class EmaSteps:
    """The student learns; the teacher is its exponential moving average, validated and saved for resume."""

    def __init__(self, student, teacher, optimizer, loss, metrics, decay=0.9):
        self.student, self.teacher, self.optimizer, self.loss, self.metrics = student, teacher, optimizer, loss, metrics
        self.decay = decay
        self.updates = tf.Variable(0.0, trainable=False)
        self.state = {"teacher": teacher, "updates": self.updates}  # kept in the resume checkpoint

    @tf.function
    def train_step(self, inputs, targets):
        with tf.GradientTape() as tape:
            outputs = self.student(inputs, training=True)
            value = tf.nn.compute_average_loss(self.loss(targets, outputs))
        grads = tape.gradient(value, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
        for t, s in zip(self.teacher.weights, self.student.weights):
            t.assign(self.decay * t + (1 - self.decay) * s)
        self.updates.assign_add(1.0)
        taught = tf.nn.compute_average_loss(self.loss(targets, self.teacher(inputs, training=False)))
        return {"loss": value, "teacher_loss": taught, "ema_updates": self.updates + 0.0}

    @tf.function
    def val_step(self, inputs, targets):
        outputs = self.teacher(inputs, training=False)
        for metric in self.metrics:
            metric.update_state(targets, outputs)
        return {"loss": tf.nn.compute_average_loss(self.loss(targets, outputs))}


def main(argv=None):
    args = train_arguments(__doc__, ROOT).parse_args(argv)
    with exit_on_error():
        job = Training.start(ROOT, args)
        job.data()
        with job.scope():
            student, teacher = job.model(), job.model()
            teacher.set_weights(student.get_weights())
            optimizer = job.optimizer()
            metrics = job.metrics()
        loss = job.loss()
        run = job.record()
        job.fit(student, run, optimizer=optimizer, loss=loss, metrics=metrics,
                steps=EmaSteps(student, teacher, optimizer, loss, metrics))


if __name__ == "__main__":
    main()
'''


def test_a_hand_written_train_py_with_an_ema_teacher_keeps_the_run_record_resume_and_summaries(
    built_projects, tmp_path: Path
) -> None:
    """The escape hatch (README "A loop of your own"): train.py replaced by a non-standard loop built from
    skelgen_runtime.jobs; its steps' state (the teacher, a counter) survives SIGKILL and resume, every
    epoch is logged once with the values the steps return, TensorBoard has them, the run completes."""
    project = _copy(built_projects, "segmentation", "keras", tmp_path)
    (project / "train.py").write_text(_EMA_TRAIN)
    epochs, steps = 30, 2
    args = [*TINY, "--set", f"train.epochs={epochs}", "--set", f"train.steps_per_epoch={steps}"]
    run_dir, killed = train_and_kill(project, args, after_epochs=2)
    assert killed.returncode != 0 and 2 <= len(epochs_logged(run_dir)) < epochs
    out = script(project, "train.py", "--resume", "auto").stdout
    assert f"resuming run {run_dir.name}" in out and "restored" in out
    rows = _metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    # the counter is part of the resume state: epoch k averages the update counts k*steps+1 .. (k+1)*steps
    assert [float(r["ema_updates"]) for r in rows] == [k * steps + (steps + 1) / 2 for k in range(epochs)]
    assert all(float(r["teacher_loss"]) > 0 and "val_miou" in r for r in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    board.Reload()
    assert "teacher_loss/train" in board.Tags()["tensors"], board.Tags()
    assert sorted({e.step for e in board.Tensors("teacher_loss/train")}) == list(range(epochs))


# ------------------------------------------------------------------ metrics: a project registry


@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_a_metric_added_in_the_project_is_logged_and_the_monitor_cannot_be_left_out(
    built_projects, tmp_path: Path, framework: str
) -> None:
    project = _copy(built_projects, "segmentation", framework, tmp_path)
    _edit(
        project / "core" / "metrics.py",
        'METRICS = default_metrics("segmentation")\n',
        'METRICS = default_metrics("segmentation")\n\n\n'
        '@METRICS.register("pixel_accuracy")\n'
        "def pixel_accuracy(config, info):\n"
        "    import keras\n\n"
        '    return keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")\n',
    )
    out = script(
        project,
        "train.py",
        *TINY,
        "--set",
        "train.epochs=1",
        "--set",
        "train.steps_per_epoch=2",
        "--set",
        "train.metrics=[miou, pixel_accuracy]",
    ).stdout
    row = _metrics(_run_dir(project, out))[0]
    assert 0 <= float(row["pixel_accuracy"]) <= 1 and 0 <= float(row["val_pixel_accuracy"]) <= 1
    assert "val_miou" in row
    refused = script(project, "train.py", *TINY, "--set", "train.metrics=[pixel_accuracy]", check=False)
    assert refused.returncode == 2
    assert "the metrics must include 'miou'" in refused.stderr and "val_miou" in refused.stderr
    typo = script(project, "train.py", *TINY, "--set", "train.metrics=[pixel_acuracy]", check=False)
    assert typo.returncode == 2 and "did you mean 'pixel_accuracy'?" in typo.stderr
