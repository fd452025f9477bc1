"""Runs you can stop and trust: Ctrl-C, failures, the TensorBoard record, and the scripts' messages."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from conftest import epochs_logged, in_terminal, make_project, script, train_and_kill

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


@pytest.fixture(params=["keras", "tf"])
def project(request, built_projects, tmp_path: Path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", request.param), copy, symlinks=True)
    return copy


def test_ctrl_c_stops_after_the_step_keeps_the_run_resumable_and_exits_130(project: Path) -> None:
    epochs = 30  # enough that Ctrl-C lands mid-run on a fast machine
    run_dir, proc = train_and_kill(
        project, [*TINY, "--set", f"train.epochs={epochs}"], after_epochs=1, sig=signal.SIGINT
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.seconds_after_signal < 15, "Ctrl-C stops after the current step, not the epoch"
    assert "Ctrl-C: stopping after this step" in proc.stderr
    # the signal came early in an epoch (right after the previous one was logged): it is not finished
    assert len(epochs_logged(run_dir)) == proc.epochs_at_signal
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"stopped: training stopped in epoch {len(epochs_logged(run_dir)) + 1} of {epochs} "
        f"({len(epochs_logged(run_dir))} finished, kept); resume with: python train.py --resume {run_dir.name}"
    )
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["epochs_done"] == len(epochs_logged(run_dir))
    assert "Traceback" not in proc.stderr

    out = script(project, "train.py", "--resume", "auto").stdout  # auto: the newest unfinished run
    assert f"resuming run {run_dir.name}" in out
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete"
    assert [h["status"] for h in record["history"]] == ["running", "interrupted", "running", "complete"]
    proc = script(project, "train.py", "--resume", "latest", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("error: no unfinished run")


def test_sigterm_is_handled_like_ctrl_c(built_projects, tmp_path: Path) -> None:
    """What a job scheduler, timeout or kill sends: the run stops after the step, recorded interrupted
    with the cause, exit status 143, its resume state kept."""
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    epochs = 30
    run_dir, proc = train_and_kill(
        project, [*TINY, "--set", f"train.epochs={epochs}"], after_epochs=1, sig=signal.SIGTERM
    )
    assert proc.returncode == 143, proc.stderr
    assert "SIGTERM: stopping after this step" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith(f"resume with: python train.py --resume {run_dir.name}")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["history"][-1]["reason"].startswith("SIGTERM in epoch")
    assert (project / "models" / run_dir.name / "backup").is_dir()  # resumable as after Ctrl-C (tested above)


def test_a_run_stopped_after_its_last_epoch_resumes_by_writing_its_final_model(built_projects, tmp_path) -> None:
    """Killed between the last epoch (resume state removed by then) and final.keras: --resume writes the
    final model from the last weights rather than training again from epoch 1."""
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    out = script(project, "train.py", *TINY, "--set", "train.epochs=2").stdout
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    final = project / "models" / run_id / "final.keras"
    final.unlink()  # what a kill right after the last epoch leaves
    record_file = project / "logs" / run_id / "run.json"
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "status": "running"}))
    resumed = script(project, "train.py", "--resume", "auto")
    assert f"run {run_id} had trained all 2 epochs: wrote its final model" in resumed.stdout + resumed.stderr
    assert final.is_file() and epochs_logged(project / "logs" / run_id) == [1, 2]
    assert "best val_miou " in resumed.stdout and f"next: python evaluate.py --run {run_id}" in resumed.stdout
    assert json.loads(record_file.read_text())["status"] == "complete"


def test_a_second_ctrl_c_ends_the_process_at_once(built_projects, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    epochs = 4
    proc = subprocess.Popen(
        [sys.executable, "train.py", *TINY, "--set", f"train.epochs={epochs}"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not [p for p in (project / "logs").glob("*/metrics.csv") if epochs_logged(p.parent)]:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    (run_dir,) = [p.parent for p in (project / "logs").glob("*/metrics.csv")]
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # the first Ctrl-C is being handled: training stops after this step
        if line.startswith("Ctrl-C: stopping after this step"):
            break
    else:
        pytest.fail("the first Ctrl-C was not acknowledged")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == -signal.SIGINT and time.monotonic() - sent < 5  # killed by the signal
    assert "stopped:" not in rest  # no orderly stop ran
    script(project, "train.py", "--resume", "auto")  # the resume state is intact
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))


def test_a_nan_loss_fails_the_run_with_the_reason(project: Path) -> None:
    losses = project / "core" / "losses.py"
    losses.write_text(
        losses.read_text()
        + textwrap.dedent("""

        @LOSSES.register("broken")
        def broken(config, info):
            import tensorflow as tf

            return lambda y_true, y_pred: tf.reduce_mean(y_pred, axis=[1, 2, 3]) * float("nan")
    """)
    )
    proc = script(project, "train.py", *TINY, "--set", "train.loss=broken", check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the loss became nan at epoch 1, step 1") and "Traceback" not in proc.stderr
    (record,) = [json.loads(p.read_text()) for p in (project / "logs").glob("*/run.json")]
    assert record["status"] == "failed" and "the loss became nan" in record["reason"]


def test_tensorboard_has_one_run_with_scalars_hparams_and_prediction_pictures(project: Path) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    out = script(project, "train.py", *TINY, "--set", "train.epochs=2").stdout
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    event_dirs = {p.parent for p in (project / "logs").rglob("events.out.tfevents.*")}
    assert event_dirs == {project / "logs" / run_id}, "one TensorBoard run per training"
    acc = event_accumulator.EventAccumulator(str(project / "logs" / run_id), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = set(tags["tensors"]) | set(tags["scalars"])
    assert {"loss/train", "loss/validation", "miou/train", "miou/validation", "learning_rate"} <= scalars
    assert [e.step for e in acc.Tensors("loss/validation")] == [0, 1]
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    from tensorboard.plugins.hparams import plugin_data_pb2

    info = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"]).session_start_info
    assert info.hparams["train.learning_rate"].number_value == pytest.approx(0.003)
    assert info.hparams["data.dataset"].string_value == "shapes" and info.group_name == run_id
    from skelgen_runtime.run_summary import flatten

    config = yaml.safe_load((project / "logs" / run_id / "config.yaml").read_text())
    assert set(info.hparams) == set(flatten(config))  # the whole resolved config, one entry per key
    images = [t for t in scalars | set(tags["images"]) if t.startswith("validation/predictions")]
    assert images, tags
    pictures = acc.Tensors(images[0])
    assert [e.step for e in pictures] == [0, 1]  # every epoch of a 2-epoch run is pictured
    assert acc.SummaryMetadata(images[0]).plugin_data.plugin_name == "images"
    width, height, png = pictures[-1].tensor_proto.string_val[:3]
    assert (int(width), int(height)) == (3 * 32 + 4, 32)  # image | labels | predictions
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (3 * 32 + 4, 32)

    curves = Image.open(project / "logs" / run_id / "curves.png")
    assert curves.format == "PNG" and curves.size[0] >= 800  # loss and miou side by side

    script(project, "evaluate.py", "--run", run_id)  # the evaluation joins the same TensorBoard run
    acc = event_accumulator.EventAccumulator(str(project / "logs" / run_id))
    acc.Reload()
    assert {"eval/val/miou", "eval/val/pixel_accuracy"} <= set(acc.Tags()["tensors"])


# ------------------------------------------------------------------ messages: one line, the next step that exists


def test_training_before_the_dataset_is_added_names_the_command_that_adds_it(tmp_path: Path) -> None:
    project = make_project(tmp_path, "p")
    proc = script(project, "train.py", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: dataset 'shapes' is not in this project") and "skelgen add-dataset shapes" in line
    assert "build_shapes_to_tfrecord.py" not in line


def test_a_misspelt_dataset_and_an_unknown_split_get_one_line_with_a_suggestion(built_projects, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    proc = script(project, "train.py", *TINY, "--set", "data.dataset=shapez", check=False)
    (line,) = [x for x in proc.stderr.strip().splitlines() if x.startswith("error:")]
    assert proc.returncode == 1 and "did you mean 'shapes'?" in line and "Traceback" not in proc.stderr
    script(project, "train.py", *TINY, "--set", "train.epochs=1", "--set", "train.steps_per_epoch=1")
    proc = script(project, "evaluate.py", "--split", "test", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "has no split 'test'; it has: pred, train, val" in last


def test_classification_evaluation_puts_its_confusion_matrix_in_tensorboard(built_projects, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    project = tmp_path / "p"
    shutil.copytree(built_projects("classification", "keras"), project, symlinks=True)
    out = script(project, "train.py", *TINY[:4], "--set", "train.epochs=1", "--set", "model.base_filters=4").stdout
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run "))
    script(project, "evaluate.py", "--run", run_id)
    acc = event_accumulator.EventAccumulator(str(project / "logs" / run_id), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    assert "eval/val/accuracy" in tags and "eval/val/confusion_val" in tags
    assert "top3/train" not in tags, "top-3 of 3 classes is always 1: not logged"


def test_start_up_noise_is_hidden_and_phases_are_announced(project: Path) -> None:
    """TensorFlow's absl notice and oneDNN lines are dropped even where nothing lowered its log level."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    proc = subprocess.run(
        [sys.executable, "train.py", *TINY, "--set", "train.epochs=2", "--set", "train.steps_per_epoch=1"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    for noise in ("absl::InitializeLog", "oneDNN custom operations", "port.cc"):
        assert noise not in proc.stdout + proc.stderr, proc.stderr
    out = proc.stdout
    phases = [out.index(line) for line in ("loading TensorFlow", "dataset shapes:", "model unet:", "run ")]
    assert phases == sorted(phases) and phases[-1] < out.lower().index("epoch 1/2"), out  # all before training


def test_an_exception_in_training_fails_the_run_with_its_reason(project: Path) -> None:
    losses = project / "core" / "losses.py"
    losses.write_text(
        losses.read_text()
        + textwrap.dedent("""

        @LOSSES.register("raising")
        def raising(config, info):
            def loss(y_true, y_pred):
                raise ValueError("boom from the project's loss")

            return loss
    """)
    )
    proc = script(project, "train.py", *TINY, "--set", "train.loss=raising", check=False)
    assert proc.returncode != 0
    (record,) = [json.loads(p.read_text()) for p in (project / "logs").glob("*/run.json")]
    assert record["status"] == "failed" and "boom from the project's loss" in record["reason"]
    assert [h["status"] for h in record["history"]] == ["running", "failed"]


LOUD = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
NOISE = re.compile(r"^(?:[IW]\d{4} \d\d:\d\d|WARNING)", re.M)


def _quiet(project: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, env=LOUD, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not NOISE.search(proc.stderr), f"{' '.join(args)}:\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_the_normal_flows_print_no_tensorflow_warning(built_projects, tmp_path: Path) -> None:
    """TensorFlow's log level left as it is (the tests lower it elsewhere): training that reads less than one
    pass of a cached dataset, under train.distribute: mirrored, evaluate and predict (on a terminal, with
    their progress bars) and a TFLite export. One framework: the warnings come from tf.data and tf.distribute,
    which both loops share (tests/test_distribute.py runs mirrored under each)."""
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    few = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=1", "--set", "data.shuffle_buffer=2"]
    _quiet(project, "train.py", *TINY, *few)
    _quiet(project, "train.py", *TINY, *few, "--set", "train.distribute=mirrored")
    # on a terminal, evaluation and prediction draw a progress bar (and still no warning)
    for args, bar in (
        (["evaluate.py", "--run", "latest"], "evaluating val"),
        (["predict.py", "--run", "latest", "--input", "datasets/shapes/data/pred", "--output", "out"], "predicting"),
    ):
        status, out = in_terminal([sys.executable, *args], project, env=LOUD)
        assert status == 0 and bar in out and "it/s" in out, out
        assert not NOISE.search(out), out
    _quiet(project, "export.py", "--run", "latest", "--format", "tflite")


def test_known_tensorflow_noise_is_dropped_and_everything_else_kept(tmp_path: Path) -> None:
    """native_log_filter on the real descriptor 2 of a process: the known lines go, a real warning, an error
    and Python's own output stay, in order, a partial last line included."""
    code = (
        "import os, sys\n"
        "from skelgen_runtime.startup import native_log_filter\n"
        "with native_log_filter():\n"
        "    os.write(2, b'W0000 00:00:1.1   12 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\\n')\n"
        "    os.write(2, b'I0000 00:00:1.2   12 port.cc:153] oneDNN custom operations are on.\\nmore of it\\n')\n"
        "    os.write(2, b'W0000 00:00:1.3   12 something.cc:1] a real warning\\n')\n"
        "    print('python says', file=sys.stderr)\n"
        "    os.write(2, b'W0000 00:00:1.4   12 dataset.cc:997] Input of GeneratorDatasetOp::Dataset will not be"
        " optimized because\\n')\n"
        "    os.write(2, b'W0000 00:00:1.45  12 local_rendezvous.cc:412] Local rendezvous is aborting with status: "
        "CANCELLED: GetNextFromShard was cancelled\\n\\t [[{{node MultiDeviceIteratorGetNextFromShard}}]]\\n')\n"
        "    os.write(2, b'E0000 00:00:1.5   12 other.cc:2] an error')\n"
        "print('after', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "W0000 00:00:1.3   12 something.cc:1] a real warning",
        "python says",
        "E0000 00:00:1.5   12 other.cc:2] an errorafter",
    ], proc.stderr


def test_one_command_line_a_scheduler_reruns_resumes_its_own_run(built_projects, tmp_path: Path) -> None:
    """``train.py --config C --set K=V --resume auto`` after a kill resumes the run it started; an unfinished run
    of another config is refused, not resumed with the wrong settings."""
    project = tmp_path / "p"
    shutil.copytree(built_projects("segmentation", "keras"), project, symlinks=True)
    command = [*TINY, "--set", "train.epochs=3", "--resume", "auto"]
    run_dir, _ = train_and_kill(project, command, after_epochs=1)
    other = script(project, "train.py", *TINY, "--set", "train.epochs=4", "--resume", "auto", check=False)
    assert other.returncode == 2 and f"the newest unfinished run {run_dir.name} was started with another config" in (
        other.stderr
    ), other.stderr
    out = script(project, "train.py", *command).stdout
    assert f"resuming run {run_dir.name}" in out and epochs_logged(run_dir) == [1, 2, 3]
    assert len([p for p in (project / "logs").iterdir() if (p / "run.json").exists()]) == 1
