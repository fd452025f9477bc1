"""Sweep workers: each trial an ordinary ``train.py`` run, exactly N finished trials, whatever is killed.

A study (Optuna, RDB storage) is shared by every worker: the threads of one ``skelgen sweep run --workers
K`` and the processes of other ``skelgen sweep run`` commands on this or other machines. A worker loops:

1. under the study's lock (a file lock beside a SQLite file, ``pg_advisory_lock`` on PostgreSQL) it fails
   the trials whose worker died (on this host: the trial's claim file is locked by nobody; elsewhere: no
   heartbeat for a minute), counts the finished (complete or pruned) and running trials, and asks for a
   new trial only while finished + running < N, so the study never runs more than N to their end;
   trial k samples with a sampler seeded ``seed + k``, so workers do not repeat each other's draws;
2. it holds the trial's claim file (``logs/sweeps/ID/trial-NNNN.lock``) and records a heartbeat while
   ``python train.py --config BASE --set KEY=VALUE ...`` trains in its own process group (console output
   in ``trial-NNNN.log``), linked to the trial (:mod:`skelgen_runtime.sweeps.trial`);
3. it tells the study the trial's end: complete with the best value of the objective in ``metrics.csv``,
   pruned, or failed with the reason (the run's, else the last error line of its output).

A killed trial is failed (its run record too, by the next worker that finds it); its number is never
reused. Ctrl-C (or SIGTERM) stops every worker after its trial's current step: the trial's ``train.py``
gets one SIGINT and records its run interrupted (resumable by hand); the trial is failed, and the same
command goes on with new trials. Three trials failing in a row stop the sweep with the last reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from skelgen_runtime.errors import ConfigError, RunError, SkelgenError
from skelgen_runtime.layout import ProjectLayout
from skelgen_runtime.locks import ProcessLock, waiting_lock
from skelgen_runtime.sweeps.recovery import best_value, fail_dead, reconcile
from skelgen_runtime.sweeps.spec import SweepSpec
from skelgen_runtime.sweeps.trial import ENV, open_storage

__all__ = ["SweepStopped", "SweepOutcome", "Sweep", "default_storage", "open_study"]

#: consecutive failed trials that stop a sweep (a broken config fails every trial alike)
MAX_FAILURES_IN_A_ROW = 3
_WAIT = 2.0  # seconds between looks at the study while other workers' trials run


class SweepStopped(SkelgenError):
    """Ctrl-C or SIGTERM stopped the sweep; the same command goes on."""

    exit_code = 130
    prefix = "stopped"


def default_storage(root: Path) -> str:
    """The project's own storage: ``sqlite:///ROOT/logs/sweeps.db``."""
    return f"sqlite:///{ProjectLayout(root).sweep_db}"


def open_study(storage: Any, spec: SweepSpec, *, objective: str, direction: str, create: bool = True) -> Any:
    """The study ``spec.name`` in ``storage``, created with the sweep's search space if new.

    Raises:
        ConfigError: the study exists with another search space, objective or direction (how to start anew said).
    """
    import optuna

    wanted = {"space": spec.space(), "objective": objective, "direction": direction}
    study = (
        optuna.create_study(study_name=spec.name, storage=storage, direction=direction, load_if_exists=True)  # type: ignore[arg-type]
        if create
        else optuna.load_study(study_name=spec.name, storage=storage)
    )
    kept = study.user_attrs.get("skelgen")
    if kept is None:
        study.set_user_attr("skelgen", wanted)
        study.set_user_attr("sweep_file", str(spec.path))
    elif kept != wanted:
        differ = [k for k in wanted if kept.get(k) != wanted[k]]
        raise ConfigError(
            f"sweep {spec.name!r} exists in its storage with another {' and '.join(differ)}: a study keeps one "
            f"search space; start a new study by giving the sweep another name (name: in {spec.path}, or a copy "
            f"under another file name), or delete the old one: optuna delete-study --study-name {spec.name} "
            "--storage URL"
        )
    return study


@dataclass
class SweepOutcome:
    """How a sweep ended: the study, and what this command's workers ran."""

    study: Any
    finished: int
    ran: list[int] = field(default_factory=list)


@contextlib.contextmanager
def _study_lock(storage: Any, url: str, name: str) -> Iterator[None]:
    """Held while a worker counts trials and asks for one (module docstring); none for other databases."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        with waiting_lock(Path(f"{parsed.database}.lock")):
            yield
        return
    if backend == "postgresql":
        key = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big", signed=True) ^ 0x736B656C
        with storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    yield


class Sweep:
    """The workers of one ``skelgen sweep run`` (module docstring).

    Args:
        root: the project.
        spec: the sweep file, read.
        storage_url: the database of the study.
        objective, direction: what a trial's value is (``check_sweep``'s answer).
        trials: finished trials the study ends with (default: the file's).
        workers: trials this command runs at once.
        say: where progress lines go.
    """

    def __init__(
        self,
        root: Path,
        spec: SweepSpec,
        storage_url: str,
        *,
        objective: str,
        direction: str,
        trials: int | None = None,
        workers: int = 1,
        say: Callable[[str], None] = print,
        python: str = sys.executable,
    ) -> None:
        self.root, self.spec, self.url = root, spec, storage_url
        self.objective, self.direction = objective, direction
        self.target = trials or spec.trials
        self.workers, self.say, self.python = max(1, workers), say, python
        self.folder = ProjectLayout(root).sweep_logs(spec.name)
        self.host = platform.node()
        self.stop = threading.Event()
        self._procs: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._failed_in_row, self._last_failure = 0, ""
        self._ran: list[int] = []
        self.storage = open_storage(storage_url)

    # ------------------------------------------------------------------ the whole sweep
    def run(self) -> SweepOutcome:
        """Run trials until the study has ``trials`` finished ones (also those of other workers).

        Raises:
            SweepStopped: Ctrl-C or SIGTERM (after the running trials' current step).
            RunError: three trials failed in a row (the last reason said).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        study = open_study(self.storage, self.spec, objective=self.objective, direction=self.direction)
        reconcile(study, self.root, self.host, self.spec.name)
        threads = [threading.Thread(target=self._worker, name=f"sweep-worker-{k}") for k in range(self.workers)]
        errors: list[BaseException] = []
        self._errors = errors
        with self._signals():
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=0.2)
        reconcile(study, self.root, self.host, self.spec.name)
        finished = _count(study)[0]
        if errors:
            raise errors[0]
        if self.stop.is_set() and finished < self.target:
            raise SweepStopped(
                f"sweep {self.spec.name} stopped with {finished} of {self.target} trials finished; the same command "
                "goes on with new trials"
            )
        return SweepOutcome(study, finished, sorted(self._ran))

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum, frame) -> None:
            cause = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self.stop.set()
            signal.signal(signum, signal.SIG_DFL)  # the same signal again ends the sweep at once
            with self._lock:
                for proc in self._procs.values():  # each trial stops after its current step
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGINT)
            print(f"\n{cause}: stopping the sweep after the running trials' current step", file=sys.stderr, flush=True)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, action in previous.items():
                signal.signal(sig, action)

    # ------------------------------------------------------------------ one worker
    def _worker(self) -> None:
        waiting_said = False
        try:
            while not self.stop.is_set():
                with self._lock:
                    if self._failed_in_row >= MAX_FAILURES_IN_A_ROW:
                        raise RunError(
                            f"sweep {self.spec.name}: {self._failed_in_row} trials failed in a row, the last with: "
                            f"{self._last_failure}; fix that (skelgen sweep show {self.spec.name} lists the "
                            "reasons), then run the same command again"
                        )
                claimed = self._next_trial()
                if claimed == "done":
                    return
                if claimed == "wait":
                    if not waiting_said:
                        self.say("waiting for the trials other workers are running")
                        waiting_said = True
                    self.stop.wait(_WAIT)
                    continue
                waiting_said = False
                self._run_trial(*claimed)
        except BaseException as err:  # noqa: BLE001 - handed to run(), which raises it
            self.stop.set()
            self._errors.append(err)

    def _next_trial(self) -> Any:
        import optuna

        with _study_lock(self.storage, self.url, self.spec.name):
            study = optuna.load_study(study_name=self.spec.name, storage=self.storage)
            fail_dead(study, self.root, self.host, self.objective, self.direction, self.say)
            reconcile(study, self.root, self.host, self.spec.name)
            finished, running, total = _count(study)
            if finished >= self.target:
                return "done"
            if finished + running >= self.target:
                return "wait"
            sampler = (
                optuna.samplers.TPESampler(seed=self.spec.seed + total, n_startup_trials=min(10, self.target))
                if self.spec.sampler == "tpe"
                else optuna.samplers.RandomSampler(seed=self.spec.seed + total)
            )
            study = optuna.load_study(study_name=self.spec.name, storage=self.storage, sampler=sampler)
            with warnings.catch_warnings():  # heartbeats are ours to send (Optuna sends them only in optimize())
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = study.ask({p.key: p.distribution() for p in self.spec.params})
            claim = ProcessLock(
                self.folder / f"trial-{trial.number:04d}.lock",
                busy=f"trial {trial.number} of sweep {self.spec.name} is being run",
                advice="this is a bug: trial numbers are unique",
            ).acquire()
            study._storage.set_trial_system_attr(trial._trial_id, "worker", {"host": self.host, "pid": os.getpid()})
            study._storage.set_trial_system_attr(trial._trial_id, "claim", str(claim.path))
            self.storage.record_heartbeat(trial._trial_id)
        return study, trial, claim

    def _run_trial(self, study: Any, trial: Any, claim: ProcessLock) -> None:
        import optuna
        from optuna.trial import TrialState

        number, params = trial.number, dict(trial.params)
        log = self.folder / f"trial-{number:04d}.log"
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        self.say(f"trial {number} started: {shown} (output: {log.relative_to(self.root)})")
        command = [self.python, str(self.root / "train.py"), "--config", str(self.spec.base)]
        named = {} if "experiment" in {**self.spec.fixed, **params} else {"experiment": f"{self.spec.name}-t{number}"}
        for override in self.spec.overrides({**named, **params}):  # run ids end with SWEEP-tN
            command += ["--set", override]
        link = {
            "storage_url": self.url,
            "study": self.spec.name,
            "trial_id": trial._trial_id,
            "number": number,
            "objective": self.objective,
            "direction": self.direction,
            "pruner": self.spec.pruner,
            "parent": os.getpid(),
        }
        env = {**os.environ, ENV: json.dumps(link), "PYTHONUNBUFFERED": "1"}
        beat = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(trial._trial_id, beat), daemon=True)
        try:
            with open(log, "ab") as out:  # write: console log
                out.write(f"$ {' '.join(command)}\n".encode())
                out.flush()
                proc = subprocess.Popen(
                    command, cwd=self.root, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )  # its own process group: a Ctrl-C in the terminal reaches it once, through the worker
                with self._lock:
                    self._procs[number] = proc
                    if self.stop.is_set():
                        proc.send_signal(signal.SIGINT)
                heart.start()
                code = proc.wait()
            beat.set()
            with self._lock:
                self._procs.pop(number, None)
            state, value, reason, run_id = self._outcome(study, trial, code, log)
            if reason:
                study._storage.set_trial_system_attr(trial._trial_id, "fail_reason", reason)
            try:
                if state == TrialState.COMPLETE:
                    study.tell(trial, value)
                else:
                    study.tell(trial, state=state)
            except optuna.exceptions.UpdateFinishedTrialError:
                reason = "another worker failed it first (no heartbeat for a minute)"
                state = TrialState.FAIL
        finally:
            beat.set()
            claim.release()
        with self._lock:
            self._ran.append(number)
            if state == TrialState.FAIL and not self.stop.is_set():  # a stopped trial is not a broken one
                self._failed_in_row += 1
                self._last_failure = reason
            else:
                self._failed_in_row = 0
        finished = _count(study)[0]
        result = {
            TrialState.COMPLETE: f"complete: {self.objective} {value:.4f}" if value is not None else "complete",
            TrialState.PRUNED: "pruned",
        }.get(state, f"failed: {reason}")
        self.say(f"trial {number} {result} (run {run_id or '-'}) [{finished}/{self.target} finished]")

    def _heartbeat(self, trial_id: int, done: threading.Event) -> None:
        while not done.wait(self.storage.get_heartbeat_interval() or 10):
            with contextlib.suppress(Exception):  # a missed beat is retried; a minute of them fails the trial
                self.storage.record_heartbeat(trial_id)

    def _outcome(self, study: Any, trial: Any, code: int, log: Path) -> tuple[Any, float | None, str, str | None]:
        """(state, value, failure reason, run id) of a trial whose ``train.py`` ended with ``code``."""
        from optuna.trial import TrialState

        from skelgen_runtime.runs import Run

        run_id = study._storage.get_trial(trial._trial_id).user_attrs.get("run_id")
        run = Run(self.root, run_id) if run_id else None
        record = run.record() if run is not None and run.record_file.is_file() else {}
        status = record.get("status")
        if code == 0 and status == "pruned":
            return TrialState.PRUNED, None, "", run_id
        if code == 0 and status == "complete" and run is not None:
            value = best_value(run, self.objective, self.direction)
            if value is not None:
                return TrialState.COMPLETE, value, "", run_id
            return TrialState.FAIL, None, f"the run logged no finite {self.objective}", run_id
        if code in (130, 143) or self.stop.is_set():
            return TrialState.FAIL, None, "stopped by Ctrl-C (its run is interrupted: resumable by hand)", run_id
        reason = str(record.get("reason") or "") if status == "failed" else ""
        return TrialState.FAIL, None, reason or _last_error(log) or f"train.py exited with status {code}", run_id


def _count(study: Any) -> tuple[int, int, int]:
    """(finished, running, all) trials of ``study`` (enqueued trials, WAITING, are not running yet)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)  # WAITING (enqueued) ones are asked for first
    return finished, running, len(trials)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _last_error(log: Path) -> str:
    """The last ``error: ...`` line of a trial's output, else its last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith(("error:", "Error", "Traceback")) or "Error:" in line]
    return (errors or lines or [""])[-1][:500]
