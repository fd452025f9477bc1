"""Training past one device: ``train.distribute`` and ``train.mixed_precision``, on this machine's CPU.

MirroredStrategy runs over two logical CPU devices (``SKELGEN_LOGICAL_CPUS=2``) and
MultiWorkerMirroredStrategy over two local worker processes (``TF_CONFIG`` on 127.0.0.1): the code
paths of several GPUs and several hosts, at a tiny size. What only a cluster or a TPU could show is
documented in the README ("When one machine is not enough"), not tested here.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import epochs_logged

#: two logical CPU devices; oneDNN off, since its convolution breaks on the empty per-replica batch
#: that a last partial batch gives (make_strategy refuses mirrored CPU devices without this)
TWO_CPUS = {"SKELGEN_LOGICAL_CPUS": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
SMALL = ["--config", "configs/demo.yaml", "--set", "data.image_size=[32,32]", "--set", "model.base_filters=4"]
MODEL = {
    "segmentation": ["--set", "model.depth=2"],
    "classification": ["--set", "model.depth=2"],
    "detection": ["--set", "model.depth=3", "--set", "model.neck_filters=8", "--set", "model.head_filters=8"],
}
NO_AUGMENT = {
    "segmentation": ["--set", "data.augment.flip=false"],
    "detection": [
        "--set",
        "data.augment.flip=false",
        "--set",
        "data.augment.crop=false",
        "--set",
        "data.augment.scale_min=1",
        "--set",
        "data.augment.scale_max=1",
    ],
}


def _copy(built_projects, task: str, framework: str, tmp_path: Path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(built_projects(task, framework), copy, symlinks=True)
    return copy


def _train(
    project: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: int = 600
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (
            f"train.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _run_dirs(project: Path) -> list[Path]:
    return sorted(p.parent for p in (project / "logs").glob("*/run.json"))


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _complete(project: Path, run_dir: Path, epochs: int) -> dict:
    """The run record of a finished run, checked whole: status, epochs, weights, summaries."""
    record = _record(run_dir)
    assert record["status"] == "complete" and record["epochs_done"] == epochs, record
    assert epochs_logged(run_dir) == list(range(1, epochs + 1))
    model_dir = project / "models" / run_dir.name
    for path in ("final.keras", "checkpoints/last.weights.h5", "checkpoints/best.weights.h5"):
        assert (model_dir / path).is_file(), path
    assert not (model_dir / "backup").exists(), "the resume state goes once training completes"
    assert list(run_dir.glob("events.out.tfevents.*")), "TensorBoard events"
    return record


# ------------------------------------------------------------------ MirroredStrategy, two CPU devices


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["keras", "tf"])
@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_mirrored_on_two_devices_trains_an_epoch_and_its_first_step_matches_one_device(
    built_projects, tmp_path: Path, task: str, framework: str
) -> None:
    project = _copy(built_projects, task, framework, tmp_path)
    # a global batch of the whole train split (48): every batch holds the same examples, so the first
    # step does not depend on which batch comes first (model.fit under a strategy builds on one first)
    args = [*SMALL, *MODEL[task], *NO_AUGMENT[task], "--set", "train.epochs=1"]
    out = _train(
        project, *args, "--set", "train.distribute=mirrored", "--set", "data.batch_size=24", env=TWO_CPUS
    ).stdout
    assert "distribute mirrored: 2 replicas, global batch 48 (data.batch_size 24 x 2)" in out
    (run_dir,) = _run_dirs(project)
    record = _complete(project, run_dir, epochs=1)
    assert record["distribute"] == {"kind": "mirrored", "replicas": 2, "workers": 1}
    assert record["global_batch_size"] == 48

    _train(project, *args, "--set", "data.batch_size=48")
    mirrored, single = (_rows(d)[0] for d in _run_dirs(project))
    for key in ("loss", "val_loss"):
        a, b = float(mirrored[key]), float(single[key])
        assert math.isfinite(a) and abs(a - b) <= 1e-4 * abs(b), (key, a, b)


# ------------------------------------------------------------------ MultiWorkerMirroredStrategy, two processes


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_cluster(project: Path, args: list[str], tmp: Path) -> list[subprocess.Popen]:
    """Worker 0 (the chief) and worker 1 of a new two-worker cluster, each running ``train.py ARGS``."""
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TMPDIR": str(tmp)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "train.py", *args],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _until_epochs(project: Path, count: int, procs: list[subprocess.Popen]) -> Path:
    """Wait until a run has ``count`` epochs in its metrics.csv; its log folder."""
    deadline = time.time() + 300
    while True:
        done = [d for d in _run_dirs(project) if (d / "metrics.csv").is_file() and len(epochs_logged(d)) >= count]
        if done:
            return done[0]
        assert all(p.poll() is None for p in procs), _finish(procs)
        assert time.time() < deadline, f"the cluster did not reach epoch {count} in time"
        time.sleep(0.05)


@pytest.mark.slow
def test_multi_worker_writes_one_run_record_and_resumes_after_a_worker_is_killed_or_interrupted(
    built_projects, tmp_path: Path
) -> None:
    project = _copy(built_projects, "classification", "tf", tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    epochs = 10  # enough that the kill and the Ctrl-C land mid-run
    args = [
        *SMALL,
        *MODEL["classification"],
        "--set",
        "train.distribute=multi_worker",
        "--set",
        "data.batch_size=8",
        "--set",
        f"train.epochs={epochs}",
    ]

    # a worker dies: the chief notices on its own, records the failure and says how to go on
    chief, worker = _start_cluster(project, args, tmp)
    run_dir = _until_epochs(project, 1, [chief, worker])
    worker.send_signal(signal.SIGKILL)
    chief_done, _ = _finish([chief, worker], timeout=120)
    assert _run_dirs(project) == [run_dir], "only the chief writes a run record"
    assert chief_done.returncode == 1, chief_done.stderr
    last = chief_done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: lost contact with another worker") and last.endswith(
        "restart every worker with: python train.py --resume auto"
    ), last
    record = _record(run_dir)
    assert record["status"] == "failed" and record["pid"] == chief.pid
    killed_at = len(epochs_logged(run_dir))
    assert 1 <= killed_at < epochs

    # restarted, both resume the chief's run; Ctrl-C on the worker stops both after the same step
    procs = _start_cluster(project, ["--resume", "auto"], tmp)
    _until_epochs(project, killed_at + 1, procs)
    procs[1].send_signal(signal.SIGINT)
    for done in _finish(procs, timeout=120):
        assert f"resuming run {run_dir.name}" in done.stdout
        assert done.returncode == 130, done.stderr
        # the last of skelgen's lines (gRPC may report the peer that already left after it, at exit)
        ours = [line for line in done.stderr.strip().splitlines() if not line.startswith(":UNKNOWN:Error received")]
        assert ours[-1].startswith("stopped: training stopped in epoch"), done.stderr
    assert _record(run_dir)["status"] == "interrupted"
    assert killed_at < len(epochs_logged(run_dir)) < epochs

    restarted = _start_cluster(project, ["--resume", "auto"], tmp)
    chief_done, worker_done = _finish(restarted)
    for done in (chief_done, worker_done):
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"resuming run {run_dir.name}" in done.stdout
    assert _run_dirs(project) == [run_dir]
    record = _complete(project, run_dir, epochs)
    assert record["pid"] == restarted[0].pid, "written by the chief"
    assert record["distribute"] == {"kind": "multi_worker", "replicas": 2, "workers": 2}
    # the worker wrote its copy into a temporary folder, removed when it finished
    worker_logs = Path(next(line.split()[1] for line in worker_done.stdout.splitlines() if line.startswith("  logs:")))
    assert worker_logs.is_relative_to(tmp) and not worker_logs.exists()


# ------------------------------------------------------------------ mixed precision


_PROBE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, ".")
    import keras, numpy as np, core
    model = keras.models.load_model(sys.argv[1], compile=False)
    out = model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0)
    print(json.dumps({"output": str(out.dtype), "policy": model.get_layer("encoder.stage0.conv1").dtype_policy.name}))
""")


@pytest.mark.parametrize("framework", ["keras", "tf"])
def test_mixed_float16_trains_the_segmentation_demo_with_finite_losses_and_float32_logits(
    built_projects, tmp_path: Path, framework: str
) -> None:
    project = _copy(built_projects, "segmentation", framework, tmp_path)
    proc = _train(
        project,
        *SMALL,
        *MODEL["segmentation"],
        "--set",
        "train.epochs=2",
        "--set",
        "train.mixed_precision=mixed_float16",
    )
    assert "scale_loss" not in proc.stderr, "the template's step scales the loss"
    (run_dir,) = _run_dirs(project)
    rows = _rows(run_dir)
    assert len(rows) == 2 and all(math.isfinite(float(r[k])) for r in rows for k in ("loss", "val_loss")), rows
    assert _record(run_dir)["status"] == "complete"
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, f"models/{run_dir.name}/final.keras"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == {"output": "float32", "policy": "mixed_float16"}


def test_loss_scaling_unscales_a_scaled_step_and_leaves_an_unscaled_one_as_it_is(capsys) -> None:
    import keras
    import tensorflow as tf

    from skelgen_runtime.training.precision import StepLossScaleOptimizer

    def sgd_step(optimizer, scale: bool) -> float:
        w = keras.Variable(1.0)
        with tf.GradientTape() as tape:
            loss = 3.0 * w
            target = optimizer.scale_loss(loss) if scale else loss
        optimizer.apply_gradients(zip(tape.gradient(target, [w]), [w]))
        return float(w.numpy())

    assert sgd_step(StepLossScaleOptimizer(keras.optimizers.SGD(0.1)), scale=True) == pytest.approx(0.7)
    assert "scale_loss" not in capsys.readouterr().err
    assert sgd_step(StepLossScaleOptimizer(keras.optimizers.SGD(0.1)), scale=False) == pytest.approx(0.7)
    assert "does not call optimizer.scale_loss(loss)" in capsys.readouterr().err
    # what Keras's own wrapper does to a step that does not scale: the gradient divided by 2**15
    plain = sgd_step(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)), scale=False)
    assert plain == pytest.approx(1 - 0.3 / 2**15)


def test_models_without_float32_outputs_get_a_cast_or_a_clear_error() -> None:
    import keras

    from skelgen_runtime.errors import ConfigError
    from skelgen_runtime.training.precision import float32_outputs, set_precision

    try:
        assert set_precision(SimpleNamespace(mixed_precision="mixed_float16")) == "mixed_float16"
        inputs = keras.Input((8,))
        old = keras.Model(inputs, keras.layers.Dense(3, name="head")(inputs), name="old")
        assert old.output.dtype == "float16"
        new = float32_outputs(old)
        assert new.output.dtype == "float32" and new.get_layer("head").dtype_policy.name == "mixed_float16"
        assert float32_outputs(new) is new

        class Own(keras.Model):
            def call(self, x):
                return self.dense(x)

        own = Own(inputs, keras.layers.Dense(3)(inputs), name="own")
        with pytest.raises(ConfigError, match='give its last layer dtype="float32"'):
            float32_outputs(own)
    finally:
        set_precision(SimpleNamespace(mixed_precision=False))


# ------------------------------------------------------------------ losses over the global batch


_GLOBAL_BATCH_LOSSES = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    from types import SimpleNamespace
    from skelgen_runtime import losses
    from skelgen_runtime.formats import centernet
    from skelgen_runtime.training.distribute import make_strategy

    strategy = make_strategy(SimpleNamespace(distribute="mirrored", jit_compile="auto"))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (8, 6, 6, 1))
    labels[:3, :4] = 255  # the first replica's examples have many ignored pixels
    logits = rng.normal(size=(8, 6, 6, 3)).astype("float32")
    heat = rng.uniform(0, 0.9, (8, 4, 4, 2)).astype("float32")
    heat[0, 1, 1, 0] = heat[0, 2, 3, 1] = heat[1, 0, 0, 0] = heat[5, 3, 3, 1] = 1.0  # 3 objects, then 1
    boxes = np.concatenate([heat, rng.uniform(0, 2, (8, 4, 4, 4)), (heat[..., :1] == 1) * 1.0
                            + (heat[..., 1:] == 1)], -1).astype("float32")
    cases = {
        "ce": (losses.sparse_cross_entropy(255), labels, logits),
        "dice": (losses.soft_dice_loss(3, 255), labels, logits),
        "centernet": (centernet.make_loss(2), boxes, rng.normal(size=(8, 4, 4, 6)).astype("float32")),
        "regions": (losses.region_dice_bce(np.array([[0, 0], [1, 0], [1, 1]], bool), 255), labels,
                    rng.normal(size=(8, 6, 6, 2)).astype("float32")),
    }
    out = {}
    for name, (loss, y, p) in cases.items():
        single = float(tf.reduce_mean(loss(y, p)))
        ds = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((y, p)).batch(8))
        step = tf.function(lambda a, b: strategy.reduce("SUM", strategy.run(
            lambda y, p: tf.nn.compute_average_loss(loss(y, p)), args=(a, b)), axis=None))
        out[name] = [single, float(step(*next(iter(ds))))]
    print(json.dumps(out))
""")


def test_batch_level_losses_are_those_of_the_global_batch_under_mirrored() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _GLOBAL_BATCH_LOSSES],
        capture_output=True,
        text=True,
        env={**os.environ, **TWO_CPUS},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    values = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(values) == {"ce", "dice", "centernet", "regions"}
    for name, (single, mirrored) in values.items():
        assert mirrored == pytest.approx(single, rel=1e-5), (name, single, mirrored)


# ------------------------------------------------------------------ what cannot work says so


@pytest.mark.parametrize(
    ("distribute", "tf_config", "model_fit", "message"),
    [
        ("multi_worker", None, False, "train.distribute is multi_worker but TF_CONFIG is not set"),
        ("multi_worker", "{cluster: 1}", False, "TF_CONFIG is not valid JSON"),
        (
            "multi_worker",
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            False,
            "is not one of its cluster's",
        ),
        (
            "multi_worker",
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}',
            True,
            "Keras 3's model.fit fails under MultiWorkerMirroredStrategy",
        ),
    ],
)
def test_multi_worker_without_a_usable_cluster_fails_saying_what_to_set(
    monkeypatch, distribute: str, tf_config: str | None, model_fit: bool, message: str
) -> None:
    from skelgen_runtime.errors import ConfigError
    from skelgen_runtime.training.distribute import make_strategy

    monkeypatch.delenv("SKELGEN_LOGICAL_CPUS", raising=False)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_strategy(SimpleNamespace(distribute=distribute, jit_compile="auto"), model_fit=model_fit)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--set", "train.distribute=tpu"], {}, "error: train.distribute is tpu but no TPU is reachable"),
        (
            ["--set", "train.distribute=mirrored"],
            {"SKELGEN_LOGICAL_CPUS": "2", "TF_ENABLE_ONEDNN_OPTS": "1"},
            "error: mirrored over several CPU devices needs TF_ENABLE_ONEDNN_OPTS=0",
        ),
    ],
)
def test_a_strategy_this_machine_cannot_run_fails_with_one_line_and_no_run(
    built_projects, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    project = _copy(built_projects, "segmentation", "tf", tmp_path)
    proc = _train(project, *SMALL, *args, env=env, check=False)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(message) and "Traceback" not in proc.stderr, proc.stderr
    assert not _run_dirs(project), "a refused strategy must not start a run"
