"""Stopping a training run: Ctrl-C or SIGTERM after the current step, and failures recorded with their reason.

Both loops (``keras_fit`` and ``custom_loop``) train inside :func:`supervised`:

- the first Ctrl-C (SIGINT) asks the loop to stop after the step it is running; the loop raises
  :class:`StopRequested` from its per-step hook, so the interrupted epoch is neither logged nor
  backed up and ``--resume`` redoes it from its start. The run is recorded ``interrupted`` with the
  epoch reached and the process ends with :class:`TrainingInterrupted` (exit status 130), whose
  message is the exact command that resumes it;
- a second Ctrl-C restores the default signal action, so it ends the process at once (the resume
  state of the last finished epoch is on disk already);
- SIGTERM (what job schedulers, ``timeout`` and ``kill`` send) is handled the same way; the process
  then exits with status 143;
- a non-finite loss raises :class:`TrainingFailed`; any exception marks the run ``failed`` with its
  reason before it goes on.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Sequence

from skelgen_runtime.errors import SkelgenError

__all__ = [
    "StopRequested",
    "TrainingInterrupted",
    "TrainingFailed",
    "StopSignal",
    "supervised",
    "check_loss",
    "finish",
    "prune",
    "restore_newest_whole",
]


class StopRequested(Exception):
    """Raised from inside a training loop when a stop was asked for (not an error of the user's)."""


class TrainingInterrupted(SkelgenError):
    """Training stopped on Ctrl-C; the run can be resumed. The message says how."""

    exit_code = 130
    prefix = "stopped"


class TrainingFailed(SkelgenError):
    """Training cannot go on (a non-finite loss); the run is recorded ``failed`` with the reason."""


class StopSignal:
    """Whether Ctrl-C (SIGINT) or SIGTERM asked the running loop to stop (set from their handler)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.cause = "Ctrl-C"

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self, cause: str = "Ctrl-C") -> None:
        self.cause = cause
        self._event.set()

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop was asked for (call it after each step)."""
        if self._event.is_set():
            raise StopRequested


def check_loss(value: float, epoch: int, step: int) -> None:
    """Raise :class:`TrainingFailed` when a step's loss is NaN or infinite."""
    if not math.isfinite(value):
        raise TrainingFailed(
            f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; lower "
            "train.learning_rate, check the data (dataset_info.json, the viewer) or the loss"
        )


@contextlib.contextmanager
def supervised(run, *, epochs: int) -> Iterator[StopSignal]:
    """Train inside this: the run marked ``running``, Ctrl-C handling, and the run's status when training
    ends any other way.

    Yields the :class:`StopSignal` the loop checks after every step. On :class:`StopRequested` the
    run is marked ``interrupted`` and :class:`TrainingInterrupted` is raised; on any other exception
    it is marked ``failed`` (``interrupted`` for a KeyboardInterrupt) and the exception goes on.
    """
    stop = StopSignal()

    def on_signal(signum, frame) -> None:
        cause = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        stop.set(cause)
        signal.signal(signum, signal.SIG_DFL)  # the same signal again ends the process at once
        again = "press Ctrl-C again" if signum == signal.SIGINT else f"send {cause} again"
        print(f"\n{cause}: stopping after this step ({again} to stop at once)", file=sys.stderr, flush=True)

    main_thread = threading.current_thread() is threading.main_thread()
    handled = (signal.SIGINT, signal.SIGTERM)  # SIGTERM: what schedulers, timeout and kill send
    previous = {sig: signal.signal(sig, on_signal) for sig in handled} if main_thread else {}
    if run.status == "running":  # a new run: new_run recorded it
        run.update_record(pid=os.getpid())
    else:  # resumed
        run.set_status("running", reason="resumed", pid=os.getpid())
    try:
        yield stop
    except StopRequested:
        done = int(run.record().get("epochs_done", 0))
        run.set_status("interrupted", reason=f"{stop.cause} in epoch {done + 1}", interrupted_epoch=done + 1)
        run.release()
        interrupted = TrainingInterrupted(
            f"training stopped in epoch {done + 1} of {epochs} ({done} finished, kept); "
            f"resume with: python train.py --resume {run.run_id}"
        )
        if stop.cause != "Ctrl-C":  # 128 + the signal's number, as a shell reports a process it ended
            interrupted.exit_code = 128 + int(signal.SIGTERM)
        raise interrupted from None
    except KeyboardInterrupt:
        run.set_status("interrupted", reason="KeyboardInterrupt")
        run.release()
        raise
    except BaseException as err:
        run.set_status("failed", reason=str(err) or type(err).__name__)
        run.release()
        raise
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def restore_newest_whole(run, states: Sequence[str], restore: Callable[[str], Any]) -> str:
    """Restore the newest resume state that reads whole, newest first (``states``: the kept ones, newest first).

    A damaged state (a file cut short or bit-flipped by a crash or a copy) is named in a ``warning:`` line
    and the one before it is restored instead; the training then redoes the epochs after it (each logged
    once: ``metrics.csv`` drops the rows it redoes).

    Returns:
        The state restored.

    Raises:
        RunError: every kept state is damaged (the message says how to go on).
    """
    from skelgen_runtime.errors import RunError

    problems = []
    for state in states:
        try:
            restore(state)
        except Exception as err:  # noqa: BLE001 - any reading error of a damaged file
            problems.append(f"{state}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            continue
        for problem in problems:
            print(f"warning: run {run.run_id}: resume state {problem}; resumed from the one before it", file=sys.stderr)
        return state
    raise RunError(
        f"run {run.run_id} cannot be resumed: every resume state it kept is damaged ({'; '.join(problems)}); "
        f"its weights of the last finished epoch are in {run.checkpoint_dir / 'last.weights.h5'}: start a new run "
        "(python train.py), with model.weights set to that file to continue from them"
    )


def prune(run, *, epoch: int, monitor: str | None = None) -> None:
    """Mark ``run`` pruned after ``epoch`` (from 1: the last it trained) by its sweep's pruner, with its curves.

    A pruned run ended as the sweep wanted (no final model: its checkpoints hold the last and best epochs).
    """
    _draw_curves(run, monitor)
    run.set_status("pruned", reason=f"pruned by the sweep after epoch {epoch}", pruned_epoch=epoch)
    run.release()


def _draw_curves(run, monitor: str | None) -> None:
    from skelgen_runtime.curves import save_run_curves
    from skelgen_runtime.run_summary import read_metrics

    names = ["loss"] + ([monitor.removeprefix("val_")] if monitor and monitor.removeprefix("val_") != "loss" else [])
    try:
        save_run_curves(read_metrics(run), run.curves, metrics=names, title=run.run_id)
    except (OSError, ValueError, ImportError) as err:  # a picture never fails a finished run
        print(f"warning: no {run.curves.name} ({err})", file=sys.stderr)


def finish(run, *, monitor: str | None = None) -> None:
    """Mark ``run`` complete and draw its ``curves.png`` (loss and ``monitor``, train and validation)."""
    from skelgen_runtime.runs import now_iso

    _draw_curves(run, monitor)
    run.set_status("complete", finished=now_iso())
    run.release()
