"""``train.distribute``: TensorFlow's own strategies for one device, one host's GPUs, several hosts, a TPU.

``train.py`` makes the strategy first (:func:`make_strategy`, before anything else touches
TensorFlow's devices), builds the model, the optimizer and the metrics inside ``strategy.scope()``
and batches ``data.batch_size`` x ``strategy.num_replicas_in_sync`` examples per step: the *global*
batch, which the strategy splits between the replicas (``model.fit`` distributes the datasets
itself; the custom loop uses ``strategy.experimental_distribute_dataset``).

- ``default``: no distribution (TensorFlow's default placement on one device).
- ``mirrored``: ``MirroredStrategy`` over every GPU of this host, or its CPU devices when it has
  none: one, unless the environment variable ``SKELGEN_LOGICAL_CPUS=N`` splits the CPU into N
  logical devices (to try a distributed config on a machine without GPUs; the tests do; with
  ``TF_ENABLE_ONEDNN_OPTS=0``, see :func:`make_strategy`).
- ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the hosts that ``TF_CONFIG`` lists; every
  host runs the same ``python train.py ...`` with its own ``task`` (the custom loop only: Keras 3's
  ``model.fit`` fails under this strategy). Worker 0 (or the ``chief`` task
  when the cluster has one) is the chief: it alone writes the run record, checkpoints, summaries
  and the final model. The other workers run the same code but write into a temporary folder that
  is removed when they exit (:func:`worker_run`), as TensorFlow's guide "Multi-worker training with
  Keras" prescribes (every worker saves, since saving may aggregate variables across workers; only
  the chief's copy counts). Resuming reads the chief's resume state, so ``models/`` must be on a
  filesystem every host reads.
- ``tpu``: ``TPUStrategy`` on the TPU that ``TPU_NAME`` names, else on this TPU VM's own.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import tensorflow as tf

from skelgen_runtime.errors import ConfigError, DatasetError
from skelgen_runtime.runs import Run
from skelgen_runtime.training.control import TrainingFailed

__all__ = [
    "LOGICAL_CPUS_ENV",
    "make_strategy",
    "global_batches",
    "is_chief",
    "describe",
    "worker_run",
    "agree",
    "distribute_validation",
    "sharding",
    "peer_loss_fails_the_run",
]

#: split this host's CPU into that many logical devices before the strategy is made (no GPUs needed)
LOGICAL_CPUS_ENV = "SKELGEN_LOGICAL_CPUS"

_TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
)


def make_strategy(train_cfg: Any, *, model_fit: bool = False) -> tf.distribute.Strategy:
    """The strategy ``train_cfg.distribute`` names, on this machine's devices.

    Call it before anything else uses TensorFlow: logical CPU devices and multi-worker collectives
    can only be set up before the runtime starts.

    Args:
        model_fit: the strategy is for ``model.fit`` (``--framework keras``), which Keras 3 cannot
            run under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585, checked with Keras 3.15).

    Raises:
        ConfigError: ``multi_worker`` with ``model_fit`` or without a usable ``TF_CONFIG``, ``tpu``
            without a reachable TPU, settings that fail on several CPU devices, or a bad
            ``SKELGEN_LOGICAL_CPUS``.
    """
    _split_cpu()
    kind = train_cfg.distribute
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        if not gpus and len(devices) > 1:
            _check_cpu_replicas(train_cfg)
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multi_worker":
        if model_fit:
            raise ConfigError(
                "train.distribute multi_worker needs the custom training loop: Keras 3's model.fit "
                "fails under MultiWorkerMirroredStrategy (keras-team/keras#20585); train on several "
                "hosts from a project generated with --framework tf, or use mirrored on one host"
            )
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy()


def _split_cpu() -> None:
    """Honour ``SKELGEN_LOGICAL_CPUS``: that many logical devices on the first CPU."""
    text = os.environ.get(LOGICAL_CPUS_ENV, "").strip()
    if not text:
        return
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{LOGICAL_CPUS_ENV}={text!r}: expected a number of devices (1 or more)")
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(int(text))]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) == len(wanted):
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise ConfigError(
            f"{LOGICAL_CPUS_ENV}={text}: TensorFlow's devices are already in use; "
            "make the strategy before anything else runs"
        ) from None


def _check_cpu_replicas(train_cfg: Any) -> None:
    """Refuse settings that break replicas on CPU devices (checked with TensorFlow 2.21)."""
    if train_cfg.jit_compile is True:
        raise ConfigError(
            "train.jit_compile: true cannot run on several CPU devices (XLA compiles for "
            "one); set train.jit_compile: auto, or run mirrored on GPUs"
        )
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false"):
        # a last partial batch leaves some replicas an empty batch, and oneDNN's convolution returns
        # the wrong shape for one (a (0, H, W, 3) input stays (0, H, W, 3) whatever the filters)
        raise ConfigError(
            "mirrored over several CPU devices needs TF_ENABLE_ONEDNN_OPTS=0 in the environment "
            "(TensorFlow's oneDNN convolutions fail on the empty per-replica batches of a "
            "last partial batch); set it before starting train.py"
        )


def _check_tf_config() -> dict[str, Any]:
    """``TF_CONFIG``, parsed; a :class:`ConfigError` saying what to set when it cannot work."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        raise ConfigError(
            "train.distribute is multi_worker but TF_CONFIG is not set: on every host set the "
            f"cluster and that host's task, e.g. {_TF_CONFIG_EXAMPLE} "
            "(index 1 on host2), or use train.distribute: mirrored on one host"
        )
    try:
        spec = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({err}); expected e.g. {_TF_CONFIG_EXAMPLE}") from None
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(f"TF_CONFIG needs a 'cluster' and a 'task', e.g. {_TF_CONFIG_EXAMPLE}")
    hosts = cluster.get(task.get("type"))
    if not isinstance(hosts, list) or not isinstance(task.get("index"), int) or not 0 <= task["index"] < len(hosts):
        raise ConfigError(
            f"TF_CONFIG's task {task} is not one of its cluster's {cluster}; "
            "'type' must be a job of the cluster and 'index' a position in its list"
        )
    return spec


def _tpu_strategy() -> tf.distribute.Strategy:
    try:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()  # TPU_NAME, or a Cloud TPU node
        except ValueError:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")  # a TPU VM
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"train.distribute is tpu but no TPU is reachable ({first}); run on a TPU VM, set "
            "TPU_NAME to a Cloud TPU, or choose train.distribute: default or mirrored"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def global_batches(data_cfg: Any, strategy: tf.distribute.Strategy, *, val_examples: int) -> Any:
    """``data_cfg`` with the batch sizes of one step of ``strategy``, which splits them between its replicas.

    Training batches ``data.batch_size`` x replicas; validation ``data.eval_batch_size`` x replicas,
    but no more than ``val_examples`` rounded down to a multiple of the replicas, because
    ``model.fit`` needs the first validation batch whole (it builds on it, even split). One replica:
    ``data_cfg`` itself.

    Raises:
        DatasetError: fewer validation examples than replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return data_cfg
    eval_batch = min(data_cfg.eval_batch_size * replicas, val_examples // replicas * replicas)
    if eval_batch == 0:
        raise DatasetError(
            f"the validation split has {val_examples} examples, fewer than the {replicas} "
            "replicas of train.distribute; add validation examples or use fewer devices"
        )
    return data_cfg.model_copy(update={"batch_size": data_cfg.batch_size * replicas, "eval_batch_size": eval_batch})


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    """``(task_type, task_id)`` of this process in a multi-worker cluster; ``(None, 0)`` elsewhere."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None, 0
    resolver = strategy.cluster_resolver
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run: always, but in a multi-worker cluster only its chief
    (the ``chief`` task, or worker 0 when the cluster has none)."""
    task_type, task_id = _task(strategy)
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def describe(strategy: tf.distribute.Strategy) -> dict[str, Any]:
    """What the run record notes about the distribution: the ``train.distribute`` kind, replicas, workers."""
    kinds = {
        tf.distribute.MirroredStrategy: "mirrored",
        tf.distribute.MultiWorkerMirroredStrategy: "multi_worker",
        tf.distribute.TPUStrategy: "tpu",
    }
    kind = next((name for cls, name in kinds.items() if type(strategy) is cls), "default")
    workers = 1
    if kind == "multi_worker":
        jobs = strategy.cluster_resolver.cluster_spec().as_dict()
        workers = len(jobs.get("chief", [])) + len(jobs.get("worker", []))
    return {"kind": kind, "replicas": strategy.num_replicas_in_sync, "workers": workers}


def worker_run(strategy: tf.distribute.Strategy, run: Run | None) -> Run:
    """The run a non-chief worker writes: under a new temporary folder, removed when the process exits.

    Args:
        run: the chief's run being resumed (on a filesystem this host reads), or None for a new run.

    Returns:
        A :class:`~skelgen_runtime.runs.Run` with ``run``'s id whose folders are temporary; when
        resuming, its ``backup_dir`` starts as a copy of the chief's, so every worker restores the
        same state. A new run's id, which only the chief knows, is ``auto`` here: what a message
        telling how to resume must name on this worker.
    """
    task_type, task_id = _task(strategy)
    root = Path(tempfile.mkdtemp(prefix=f"skelgen-{task_type}{task_id}-"))
    atexit.register(shutil.rmtree, root, True)
    temp = Run(root, run.run_id if run is not None else "auto")
    temp.log_dir.mkdir(parents=True)
    temp.model_dir.mkdir(parents=True)
    if run is not None and run.backup_dir.is_dir():
        shutil.copytree(run.backup_dir, temp.backup_dir)  # write: private
    return temp


def agree(strategy: tf.distribute.Strategy, *flags: bool) -> tuple[bool, ...]:
    """Each flag, true if it is true on any worker of a multi-worker cluster (elsewhere: as given).

    Every worker must call it at the same point (it is a collective): the way a per-step decision
    (Ctrl-C, a non-finite loss) is taken by all workers at once instead of leaving the others
    waiting for a step that never comes.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return tuple(bool(f) for f in flags)
    total = _any_worker(strategy)(tf.constant([1.0 if f else 0.0 for f in flags]))
    return tuple(bool(v > 0) for v in total.numpy())


@functools.lru_cache(maxsize=None)
def _any_worker(strategy: tf.distribute.Strategy):
    """A compiled all-reduce (a collective run eagerly is slow, and TensorFlow warns about each)."""

    @tf.function
    def total(local: tf.Tensor) -> tf.Tensor:
        per_replica = strategy.run(tf.identity, args=(local,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return total


def sharding(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset, *, validation: bool = False):
    """``dataset`` with the auto-shard policy that fits ``strategy``.

    Sharding splits the input between *workers*: with one worker (every strategy but ``multi_worker``)
    there is nothing to split, so the rewrite is turned off, rather than run to remove the validation
    split's ``assert_cardinality`` with a warning on every run. Between workers, a validation split is
    read whole by each, each keeping its share of the examples (``AutoShardPolicy.DATA``): it may have
    fewer record files than there are workers, which the default sharding by file refuses. Training data
    keeps the default (by file, else by example).
    """
    policy = tf.data.experimental.AutoShardPolicy
    options = tf.data.Options()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        options.experimental_distribute.auto_shard_policy = policy.OFF
    elif validation:
        options.experimental_distribute.auto_shard_policy = policy.DATA
    else:
        return dataset
    return dataset.with_options(options)


def distribute_validation(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """``dataset`` spread over ``strategy``'s replicas, split by examples between workers (:func:`sharding`)."""
    return strategy.experimental_distribute_dataset(sharding(strategy, dataset, validation=True))


@contextlib.contextmanager
def peer_loss_fails_the_run() -> Iterator[None]:
    """Turn the error of a collective that a dead worker aborted into :class:`TrainingFailed`, which
    says how to go on (inside :func:`~skelgen_runtime.training.control.supervised`, it is recorded)."""
    try:
        yield
    except tf.errors.UnavailableError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainingFailed(
            f"lost contact with another worker ({first}); restart every worker with: python train.py --resume auto"
        ) from None
