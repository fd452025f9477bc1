"""Stopping a training run: Ctrl-C after the current step, and failures recorded with their reason.

Both loops (``keras_fit`` and ``custom_loop``) train inside :func:`supervised`:

- the first Ctrl-C (SIGINT) asks the loop to stop after the step it is running; the loop raises
  :class:`StopRequested` from its per-step hook, so the interrupted epoch is neither logged nor
  backed up and ``--resume`` redoes it from its start. The run is recorded ``interrupted`` with the
  epoch reached and the process ends with :class:`TrainingInterrupted` (exit status 130), whose
  message is the exact command that resumes it;
- a second Ctrl-C restores the default signal action, so it ends the process at once (the resume
  state of the last finished epoch is on disk already);
- a non-finite loss raises :class:`TrainingFailed`; any exception marks the run ``failed`` with its
  reason before it goes on.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from typing import Iterator

from skelgen_runtime.errors import SkelgenError

__all__ = ["StopRequested", "TrainingInterrupted", "TrainingFailed", "StopSignal", "supervised", "check_loss"]


class StopRequested(Exception):
    """Raised from inside a training loop when a stop was asked for (not an error of the user's)."""


class TrainingInterrupted(SkelgenError):
    """Training stopped on Ctrl-C; the run can be resumed. The message says how."""

    exit_code = 130
    prefix = "stopped"


class TrainingFailed(SkelgenError):
    """Training cannot go on (a non-finite loss); the run is recorded ``failed`` with the reason."""


class StopSignal:
    """Whether Ctrl-C asked the running loop to stop (set from the SIGINT handler)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop was asked for (call it after each step)."""
        if self._event.is_set():
            raise StopRequested


def check_loss(value: float, epoch: int, step: int) -> None:
    """Raise :class:`TrainingFailed` when a step's loss is NaN or infinite."""
    if not math.isfinite(value):
        raise TrainingFailed(f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; lower "
                             "train.learning_rate, check the data (dataset_info.json, the viewer) or the loss")


@contextlib.contextmanager
def supervised(run, *, epochs: int) -> Iterator[StopSignal]:
    """Train inside this: Ctrl-C handling, and the run's status when training ends any other way.

    Yields the :class:`StopSignal` the loop checks after every step. On :class:`StopRequested` the
    run is marked ``interrupted`` and :class:`TrainingInterrupted` is raised; on any other exception
    it is marked ``failed`` (``interrupted`` for a KeyboardInterrupt) and the exception goes on.
    """
    stop = StopSignal()

    def on_sigint(signum, frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C ends the process at once
        print("\nCtrl-C: stopping after this step (press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        yield stop
    except StopRequested:
        done = int(run.record().get("epochs_done", 0))
        _mark(run, "interrupted", reason="Ctrl-C", interrupted_epoch=done + 1)
        raise TrainingInterrupted(
            f"training stopped in epoch {done + 1} of {epochs} ({done} finished, kept); "
            f"resume with: python train.py --resume {run.run_id}"
        ) from None
    except KeyboardInterrupt:
        _mark(run, "interrupted", reason="KeyboardInterrupt")
        raise
    except BaseException as err:
        _mark(run, "failed", reason=str(err) or type(err).__name__)
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def _mark(run, status: str, *, reason: str, **fields) -> None:
    setter = getattr(run, "set_status", None)
    if setter is not None:
        setter(status, reason=reason, **fields)
    else:
        run.update_record(status=status, reason=reason, **fields)
