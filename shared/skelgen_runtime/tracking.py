"""MLflow tracking of runs (``train.trackers: [tensorboard, mlflow]``; the ``skelgen-tf[mlflow]`` extra).

A tracked run is the same run (``logs/RUN``, ``models/RUN``, ``run.json``), mirrored into one MLflow run:

- where: ``MLFLOW_TRACKING_URI`` if set, else the project's own SQLite store ``sqlite:///ROOT/logs/mlflow.db``
  with artifacts under ``logs/mlflow-artifacts/`` (``mlflow ui --backend-store-uri sqlite:///logs/mlflow.db``
  shows them). MLflow's file store (a plain folder URI) is deprecated and refused;
- the MLflow experiment is the project (its folder name); the MLflow run is named by the run id and tagged
  with the config's ``experiment``, the git commit (and whether the work tree had changes), the dataset's
  name and fingerprint, the template version, and the sweep id and trial number of a sweep's trial;
- params: the flattened config (``train.learning_rate``, ...);
- metrics: every row of ``metrics.csv``, each column at step = the epoch (from 1), the very numbers of the
  file: rows are logged once the epoch is saved (a row that a resume may redo is not logged yet), and a
  resumed run first logs the rows MLflow lacks, so the two agree after any kill;
- artifacts: ``config.yaml``, ``run.json`` and ``curves.png`` when the run ends, each ``eval_*.json``
  (``evaluate.py``, its scores as ``eval_SPLIT.KEY`` metrics too) and each export (``export.py``);
- a resumed run continues its MLflow run (its id is kept in ``run.json`` under ``mlflow``); the MLflow run
  ends FINISHED (complete or pruned), KILLED (interrupted) or FAILED, the run's status in the
  ``skelgen.status`` tag.

Logging never fails a training: a store that is unreachable at the start stops ``train.py`` before the
first epoch; a later hiccup is a warning, and the next epoch logs what was missed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from skelgen_runtime.errors import ConfigError, MissingDependencyError
from skelgen_runtime.layout import ProjectLayout
from skelgen_runtime.locks import waiting_lock
from skelgen_runtime.runs import Run

__all__ = ["MlflowRun", "check_tracking", "tracking_uri", "log_run_files"]

ENV = "MLFLOW_TRACKING_URI"
_ENDED = {"complete": "FINISHED", "pruned": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
_BATCH = 100  # MLflow's limit of metrics per log_batch call is 1000; params and tags 100


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise MissingDependencyError(
            "train.trackers lists mlflow but MLflow is not installed: pip install 'skelgen-tf[mlflow]' "
            "(or remove mlflow from train.trackers)"
        ) from None
    return mlflow


def tracking_uri(root: Path, saved: Mapping[str, Any] | None = None) -> str:
    """Where a run of ``root`` is tracked: a tracked run's store (``saved``: ``run.json``'s ``mlflow``), else
    ``MLFLOW_TRACKING_URI``, else the project's SQLite store. A plain folder (MLflow's deprecated file
    store) is refused."""
    own = f"sqlite:///{ProjectLayout(root).logs / 'mlflow.db'}"
    saved = saved or {}
    uri = (saved.get("tracking_uri") or own) if saved.get("run_id") else (os.environ.get(ENV) or own)
    scheme = uri.split(":", 1)[0] if "://" in uri else ""
    if scheme in ("", "file"):
        raise ConfigError(
            f"{ENV}={uri} is MLflow's file store, which MLflow deprecated; use a database ({own}, "
            "postgresql://...) or a tracking server (http://HOST:5000), or unset it for the project's own store"
        )
    return uri


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Held around each use of a SQLite store: several trainings at once (a sweep's workers) would otherwise
    race to create its tables (MLflow migrates a new database in place) and meet locked-database errors."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri[len(prefix) :] in ("", ":memory:"):
        yield
        return
    with waiting_lock(Path(f"{uri[len(prefix) :]}.lock")):
        yield


def check_tracking(root: Path) -> None:
    """Before a tracked run starts: MLflow installed and ``MLFLOW_TRACKING_URI`` not the file store.

    Raises:
        MissingDependencyError, ConfigError: as said.
    """
    _mlflow()
    tracking_uri(root)


def _experiment(client: Any, root: Path, *, own: bool) -> str:
    """The project's MLflow experiment (its folder name), made if new: in the project's own store with its
    artifacts under ``logs/mlflow-artifacts/``, elsewhere where the store or server puts them."""
    name = root.resolve().name
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (ProjectLayout(root).logs / "mlflow-artifacts").resolve().as_uri() if own else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # noqa: BLE001 - another process created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _tags(record: Mapping[str, Any]) -> dict[str, str]:
    dataset = record.get("dataset") or {}
    sweep = record.get("sweep") or {}
    tags = {
        "mlflow.runName": record.get("run_id"),
        "skelgen.run_id": record.get("run_id"),
        "skelgen.experiment": record.get("experiment"),
        "mlflow.source.git.commit": record.get("git_commit"),
        "skelgen.git_dirty": record.get("git_dirty"),
        "skelgen.dataset": dataset.get("name"),
        "skelgen.dataset_fingerprint": dataset.get("fingerprint"),
        "skelgen.template_version": record.get("template_version"),
        "skelgen.sweep": sweep.get("id"),
        "skelgen.trial": sweep.get("trial"),
    }
    return {key: str(value) for key, value in tags.items() if value is not None}


class MlflowRun:
    """The MLflow run of one training run (module docstring); made by :meth:`open`."""

    def __init__(self, client: Any, run_id: str, run: Run, uri: str) -> None:
        self.client, self.id, self.run, self.uri = client, run_id, run, uri
        self._logged = self._last_step()

    @classmethod
    def open(cls, root: Path, run: Run, params: Mapping[str, Any]) -> "MlflowRun":
        """Start the MLflow run of ``run`` (params and tags logged), or continue the one ``run.json`` names.

        Raises:
            MissingDependencyError: MLflow is not installed.
            ConfigError: the tracking URI is MLflow's file store.
            RunError: the store cannot be reached (one line: what failed, where).
        """
        mlflow = _mlflow()
        from mlflow.entities import Param

        from skelgen_runtime.errors import RunError

        saved = run.record().get("mlflow") or {}
        uri = tracking_uri(root, saved)
        try:
            with _store_lock(uri):
                client = mlflow.MlflowClient(tracking_uri=uri)
                if saved.get("run_id"):
                    client.update_run(saved["run_id"], status="RUNNING")
            if saved.get("run_id"):
                return cls(client, saved["run_id"], run, uri)  # outside the lock: it reads the store itself
            with _store_lock(uri):
                own = ENV not in os.environ
                experiment = _experiment(client, root, own=own)
                created = client.create_run(experiment, run_name=run.run_id, tags=_tags(run.record()))
                items = [Param(key, str(value)[:6000]) for key, value in params.items()]
                for start in range(0, len(items), _BATCH):
                    client.log_batch(created.info.run_id, params=items[start : start + _BATCH])
                client.set_tag(created.info.run_id, "skelgen.status", "running")
        except mlflow.exceptions.MlflowException as err:
            raise RunError(f"MLflow tracking at {uri}: {str(err).splitlines()[0]}") from None
        except Exception as err:  # noqa: BLE001 - a database driver's or the network's error, one line
            raise RunError(f"MLflow tracking at {uri}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
        kept = {"run_id": created.info.run_id, "experiment_id": experiment}
        if not own:
            kept["tracking_uri"] = uri  # the project's own store is found again from the project, wherever it moved
        run.update_record(mlflow=kept)
        print(f"MLflow: run {created.info.run_id} in {uri}", flush=True)
        return cls(client, created.info.run_id, run, uri)

    def _last_step(self) -> int:
        """The last epoch logged (0 for none): the step of ``loss``, logged every epoch."""
        try:
            with _store_lock(self.uri):
                history = self.client.get_metric_history(self.id, "loss")
        except Exception:  # noqa: BLE001 - none yet
            return 0
        return max((m.step for m in history), default=0)

    def sync(self) -> None:
        """Log the rows of ``metrics.csv`` that MLflow lacks (the very numbers of the file)."""
        from mlflow.entities import Metric

        from skelgen_runtime.run_summary import read_metrics

        rows = [row for row in read_metrics(self.run) if int(row["epoch"]) > self._logged]
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, value, now, int(row["epoch"])) for row in rows for key, value in row.items() if key != "epoch"
        ]
        try:
            with _store_lock(self.uri):
                for start in range(0, len(metrics), 1000):
                    self.client.log_batch(self.id, metrics=metrics[start : start + 1000])
        except Exception as err:  # noqa: BLE001 - retried at the next epoch
            print(f"warning: MLflow: epoch metrics not logged yet ({str(err).splitlines()[0]})", file=sys.stderr)
            self._logged = self._last_step()
            return
        if rows:
            self._logged = max(int(row["epoch"]) for row in rows)

    def after_epoch(self, epoch: int, logs: Mapping[str, Any]) -> bool:
        """The training loops' hook, once the epoch is saved: its row goes to MLflow. Never stops training."""
        self.sync()
        return False

    def close(self) -> None:
        """The rows not logged yet, the run's files, and the end status from ``run.json``."""
        self.sync()
        status = self.run.status
        files = [self.run.config_file, self.run.record_file, self.run.curves]
        with _store_lock(self.uri):  # an artifact's place is asked of the store
            _log_files(self.client, self.id, [path for path in files if path.is_file()])
        try:
            with _store_lock(self.uri):
                self.client.set_tag(self.id, "skelgen.status", status)
                if status in _ENDED:
                    self.client.set_terminated(self.id, _ENDED[status])
        except Exception as err:  # noqa: BLE001 - the run record is what counts
            print(f"warning: MLflow: run {self.id} not ended ({str(err).splitlines()[0]})", file=sys.stderr)


def _log_files(client: Any, run_id: str, paths: Iterable[Path], folder: str | None = None) -> None:
    for path in paths:
        try:
            if path.is_dir():
                client.log_artifacts(run_id, str(path), artifact_path=f"{folder}/{path.name}" if folder else path.name)
            else:
                client.log_artifact(run_id, str(path), artifact_path=folder)
        except Exception as err:  # noqa: BLE001 - the files are in logs/ and models/ anyway
            print(f"warning: MLflow: {path.name} not logged ({str(err).splitlines()[0]})", file=sys.stderr)


def log_run_files(
    root: Path, run: Run, paths: Iterable[Path], *, folder: str | None = None, scores: Any = None
) -> None:
    """``evaluate.py``'s and ``export.py``'s files (and numeric ``scores`` as ``folder.KEY`` metrics) into the
    MLflow run of ``run``, if it is tracked; nothing otherwise."""
    saved = run.record().get("mlflow") or {}
    if not saved.get("run_id"):
        return
    mlflow = _mlflow()
    uri = tracking_uri(root, saved)
    client = mlflow.MlflowClient(tracking_uri=uri)
    with _store_lock(uri):
        _log_files(client, saved["run_id"], paths, folder)
    numbers = {
        key: float(value)
        for key, value in (scores or {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    if numbers:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        try:
            with _store_lock(uri):
                client.log_batch(
                    saved["run_id"], metrics=[Metric(f"{folder}.{k}", v, now, 0) for k, v in numbers.items()]
                )
        except Exception as err:  # noqa: BLE001 - the scores are in their JSON file anyway
            print(f"warning: MLflow: scores not logged ({str(err).splitlines()[0]})", file=sys.stderr)
    print(f"MLflow: logged to run {saved['run_id']}", flush=True)
