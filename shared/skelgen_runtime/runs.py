"""The run record: one folder per run in ``logs/`` and one in ``models/``.

::

    logs/RUN/run.json           status, its history, times, provenance (see below), last metrics
    logs/RUN/uncommitted.patch  the project's uncommitted changes when the run started (if any)
    logs/RUN/config.yaml        the resolved config (file + overrides)
    logs/RUN/metrics.csv        one row per epoch, each epoch exactly once, also across resumes
    logs/RUN/events.out.*       TensorBoard: one run per training (skelgen_runtime.training.summaries)
    logs/RUN/curves.png         loss and the monitored metric per epoch, train and validation
    logs/RUN/eval_SPLIT.json    evaluations
    logs/RUN/train.lock         locked while a process trains the run (skelgen_runtime.locks)
    models/RUN/backup/          resume state (removed when training completes)
    models/RUN/checkpoints/     last.weights.h5, best.weights.h5
    models/RUN/final.keras      the trained model

``RUN`` is ``YYYYMMDD-HHMMSS-EXPERIMENT`` (``-2``, ``-3``, ... for further runs started in the same
second), so runs sort by start time.

``run.json`` fields written by :func:`new_run`: ``run_id``, ``experiment``, ``status`` (one of
:data:`STATUSES`), ``history`` (``[{"status", "at", "reason"}]``, one entry per status change),
``started``, ``argv``, ``command``, ``cwd``, ``host``, ``pid``, ``seed``, ``monitor``,
``monitor_mode``, ``epoch_base`` (1: ``metrics.csv`` counts epochs from 1, as the training output
does; 0 in projects of a 0.1 or 0.2 template, see :func:`epoch_base`; runs of skelgen 0.2 lack it and
counted from 0), ``template_version``, ``dataset`` and the fields of
:mod:`skelgen_runtime.provenance` (git commit and patch, library versions). The training loops add
``epochs_done``, ``last_metrics`` and ``finished``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from skelgen_runtime._text import listing
from skelgen_runtime.errors import RunError, did_you_mean
from skelgen_runtime.files import atomic_write_text
from skelgen_runtime.layout import ProjectLayout
from skelgen_runtime.locks import Holder, ProcessLock, holder_of

__all__ = ["STATUSES", "Run", "now_iso", "new_run", "find_run", "find_resumable", "list_runs", "resolve_run"]

#: the values of ``run.json``'s ``status``
STATUSES = ("running", "interrupted", "failed", "complete", "pruned")
#: the statuses of a run that ended as it should (a sweep's pruner stopped a ``pruned`` one early): never resumed
FINISHED = ("complete", "pruned")
#: the runs this process trains: their ``train.lock`` held until the training ends (:meth:`Run.claim`)
_CLAIMS: dict[Path, ProcessLock] = {}


@dataclass(frozen=True)
class Run:
    """Paths of one run under a project root."""

    root: Path
    run_id: str

    @property
    def log_dir(self) -> Path:
        return ProjectLayout(self.root).run_logs(self.run_id)

    @property
    def model_dir(self) -> Path:
        return ProjectLayout(self.root).run_models(self.run_id)

    @property
    def config_file(self) -> Path:
        return self.log_dir / "config.yaml"

    @property
    def metrics_csv(self) -> Path:
        return self.log_dir / "metrics.csv"

    @property
    def tensorboard_dir(self) -> Path:
        """Where the run's TensorBoard events are: its log folder (one TensorBoard run per training)."""
        return self.log_dir

    @property
    def curves(self) -> Path:
        return self.log_dir / "curves.png"

    @property
    def backup_dir(self) -> Path:
        return self.model_dir / "backup"

    @property
    def checkpoint_dir(self) -> Path:
        return self.model_dir / "checkpoints"

    @property
    def final_model(self) -> Path:
        return self.model_dir / "final.keras"

    @property
    def record_file(self) -> Path:
        return self.log_dir / "run.json"

    @property
    def lock_file(self) -> Path:
        """Locked while a process trains the run (:mod:`skelgen_runtime.locks`)."""
        return self.log_dir / "train.lock"

    def claim(self) -> None:
        """Hold this run's lock while this process trains it, so that no second process trains or resumes it.

        Raises:
            BusyError: another process trains it (named, with what to do).
        """
        if self.lock_file not in _CLAIMS:
            lock = ProcessLock(
                self.lock_file,
                busy=f"run {self.run_id} is being trained",
                advice=f"wait for it to finish, or stop it (Ctrl-C in its terminal) and resume it with "
                f"python train.py --resume {self.run_id}",
            )
            _CLAIMS[self.lock_file] = lock.acquire()

    def release(self) -> None:
        """Let go of the lock :meth:`claim` took (the end of the process does the same)."""
        lock = _CLAIMS.pop(self.lock_file, None)
        if lock is not None:
            lock.release()

    def trained_by(self) -> Holder | None:
        """The process training this run now, or None."""
        return holder_of(self.lock_file)

    def record(self) -> dict[str, Any]:
        """``run.json`` as a dict (empty if it is missing or unreadable: ``run_summary.record_problem`` says why)."""
        try:
            data = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def epoch_base(self) -> int:
        """The number of the first epoch in ``metrics.csv``: 1, or 0 for runs that skelgen 0.2 started."""
        return int(self.record().get("epoch_base", 0))

    @property
    def status(self) -> str:
        return self.record().get("status", "unknown")

    def update_record(self, **fields: Any) -> None:
        """Set ``fields`` in ``run.json`` in one atomic write; a changed ``status`` is added to ``history``."""
        self._write(fields, status=fields.pop("status", None), reason=None, always=False)

    def set_status(self, status: str, *, reason: str | None = None, **fields: Any) -> None:
        """Set ``status``, add ``{"status", "at", "reason"}`` to ``history`` and set ``fields``, in one write.

        Args:
            status: one of :data:`STATUSES`.
            reason: why, e.g. ``"SIGINT at epoch 3"`` or the error of a failed run.
            fields: other ``run.json`` fields to set at the same time (``finished=now_iso()``, ...).

        Raises:
            ValueError: ``status`` is not one of :data:`STATUSES`.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; one of: {', '.join(STATUSES)}")
        self._write(fields, status=status, reason=reason, always=True)

    def _write(self, fields: dict[str, Any], *, status: str | None, reason: str | None, always: bool) -> None:
        from skelgen_runtime.records.writer import atomic_write_text  # imports the readers: only when writing

        data = self.record()
        if status is not None:
            if always or data.get("status") != status:
                data["history"] = [*data.get("history", []), {"status": status, "at": now_iso(), "reason": reason}]
            data["status"] = status
            if reason is not None:
                data["reason"] = reason  # why the run is in its current status
            elif always:
                data.pop("reason", None)
        data.update(fields)
        atomic_write_text(self.record_file, json.dumps(data, indent=2))


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _claim_run_id(root: Path, experiment: str) -> str:
    """Create ``logs/RUN`` for a new run id and return the id.

    ``mkdir`` either creates the folder or fails, also between processes, so the first free
    ``STAMP-EXPERIMENT[-N]`` belongs to exactly one caller.
    """
    logs = ProjectLayout(root).logs
    logs.mkdir(parents=True, exist_ok=True)
    stamp, n = _timestamp(), 1
    while True:
        run_id = f"{stamp}-{experiment}" + (f"-{n}" if n > 1 else "")
        n += 1
        if ProjectLayout(root).run_models(run_id).exists():
            continue  # the model folder of a run whose logs were deleted: do not mix with it
        try:
            (logs / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id


def _as_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if hasattr(config, "model_dump"):
        return config.model_dump(mode="json")
    return dict(config) if isinstance(config, Mapping) else {}


def _get(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def epoch_base(template_version: str | None) -> int:
    """Where a new run's ``metrics.csv`` counts epochs from: 1, as the training output counts; 0 in a
    project rendered from a 0.1 or 0.2 template (``_commit`` ``v0.2.0``, ``0.2.1-3-gabc``, ...), whose
    own tests and tools read it so, until it is updated."""
    match = re.match(r"v?(\d+)\.(\d+)", template_version or "")
    return 0 if match and (int(match.group(1)), int(match.group(2))) < (0, 3) else 1


def new_run(
    root: Path,
    experiment: str,
    config_yaml: str | None = None,
    *,
    config: Any = None,
    dataset_info: Path | None = None,
    monitor: str | None = None,
    monitor_mode: str | None = None,
    seed: int | None = None,
) -> Run:
    """Create the folders and record of a new run; return it.

    Args:
        root: the project folder.
        experiment: the config's ``experiment``; the run id ends with it.
        config_yaml: the resolved config as YAML, written to ``config.yaml`` (default: dumped from
            ``config``).
        config: the resolved config (a pydantic model or a dict); ``seed`` and the dataset default
            to its ``train.seed`` and ``datasets/{data.dataset}/tfrecords/dataset_info.json``
            (without it they are read from ``config_yaml``).
        dataset_info: the ``dataset_info.json`` the run trains on, fingerprinted into ``dataset``.
        monitor: the validation value that selects the best checkpoint (``val_miou``, ...).
        monitor_mode: ``"max"`` or ``"min"``: which way ``monitor`` improves.
        seed: the random seed of the run.
    """
    import yaml

    from skelgen_runtime import provenance

    settings = _as_dict(config)
    if config_yaml is None:
        if not settings:
            raise TypeError("new_run needs config_yaml or config")
        config_yaml = yaml.safe_dump(settings, sort_keys=False)
    elif not settings:
        try:
            settings = _as_dict(yaml.safe_load(config_yaml))
        except yaml.YAMLError:
            settings = {}
    if dataset_info is None and isinstance(_get(settings, "data.dataset"), str):
        candidate = ProjectLayout(root).dataset_info(_get(settings, "data.dataset"))
        dataset_info = candidate if candidate.is_file() else None
    run = Run(root, _claim_run_id(root, experiment))
    run.claim()
    run.model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.config_file, config_yaml)
    git = provenance.git_state(root, run.log_dir)
    if git.get("git_error"):  # the run cannot be reproduced from its record alone: say so now, not only in run.json
        print(f"warning: run {run.run_id}: {git['git_error']}", file=sys.stderr, flush=True)
    run.set_status(
        "running",
        reason="started",
        run_id=run.run_id,
        experiment=experiment,
        started=now_iso(),
        argv=sys.argv,
        command=shlex.join([Path(sys.executable).name, *sys.argv]),
        cwd=os.getcwd(),
        host=platform.node(),
        pid=os.getpid(),
        seed=seed if seed is not None else _get(settings, "train.seed"),
        monitor=monitor,
        monitor_mode=monitor_mode,
        epoch_base=epoch_base(provenance.template_version(root)),
        template_version=provenance.template_version(root),
        dataset=provenance.dataset_fingerprint(dataset_info, root=root) if dataset_info else None,
        **provenance.library_versions(),
        **git,
    )
    return run


def _order(run_id: str) -> list[tuple[int, Any]]:
    """Sort key: numbers compare as numbers (``-10`` after ``-9`` for runs of the same second)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", run_id)]


def list_runs(root: Path) -> list[Run]:
    """Every run with a record, oldest first."""
    logs = ProjectLayout(root).logs
    if not logs.is_dir():
        return []
    names = [p.name for p in logs.iterdir() if (p / "run.json").is_file()]
    return [Run(root, name) for name in sorted(names, key=_order)]


def _match(root: Path, runs: list[Run], spec: str) -> Run:
    """The run whose id is ``spec`` or, failing that, starts with it; else a :class:`RunError`."""
    matches = [r for r in runs if r.run_id == spec] or [r for r in runs if r.run_id.startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = listing((r.run_id for r in matches), 6)
        raise RunError(f"run {spec!r} is ambiguous: it starts {shown}; give more of the id")
    if not runs:
        raise RunError(f"no runs in {ProjectLayout(root).logs} yet; train one with python train.py")
    ids = [r.run_id for r in reversed(runs)]
    known = listing(ids, 5)
    raise RunError(
        f"no run {spec!r} in {ProjectLayout(root).logs}{did_you_mean(spec, ids)} (known runs, newest first: {known})"
    )


def resolve_run(root: Path, spec: str) -> Run:
    """A run of any status from ``latest`` (the newest), its id or a unique prefix of it.

    Raises:
        RunError: no run matches (with the closest id and the known runs), several do, or there is none.
    """
    runs = list_runs(root)
    if spec == "latest":
        if not runs:
            raise RunError(f"no runs in {ProjectLayout(root).logs} yet; train one with python train.py")
        return runs[-1]
    return _match(root, runs, spec)


def find_run(root: Path, spec: str) -> Run:
    """Resolve ``latest`` (newest complete run) or a run id (or unique prefix) to a finished run."""
    runs = list_runs(root)
    if spec == "latest":
        done = [r for r in runs if r.status == "complete"]
        if not done:
            raise RunError(f"no completed run in {ProjectLayout(root).logs}; train one with python train.py")
        return done[-1]
    run = _match(root, runs, spec)
    if not run.final_model.is_file():
        raise RunError(
            f"run {run.run_id} has no trained model ({run.final_model}); "
            f"finish it with python train.py --resume {run.run_id}"
        )
    return run


def find_resumable(root: Path, spec: str) -> Run | None:
    """``auto``: the newest run that did not complete (None if there is none); ``latest``: the same, but an
    error when there is none; else the run with that id or unique prefix, which must not be complete."""
    runs = list_runs(root)
    unfinished = [r for r in runs if r.status not in FINISHED]
    if spec == "auto":
        return unfinished[-1] if unfinished else None
    if spec == "latest":
        if not unfinished:
            raise RunError(
                f"no unfinished run in {ProjectLayout(root).logs} to resume; start a new run with python train.py"
            )
        return unfinished[-1]
    run = _match(root, runs, spec)
    if run.status in FINISHED:
        raise RunError(f"run {run.run_id} already {run.status}; start a new run instead")
    return run
