"""The one error hierarchy of skelgen and its runtime library.

Every mistake a user can make (a bad name, a corrupt file, a config typo) raises a subclass of
:class:`SkelgenError`. The CLI and the generated scripts turn it into a one-line message on stderr
and a non-zero exit code; nothing else should ever reach the user as a traceback.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

__all__ = [
    "SkelgenError",
    "BusyError",
    "DiskFullError",
    "UserInputError",
    "ProjectError",
    "TemplateError",
    "ConfigError",
    "DatasetError",
    "BadExampleError",
    "read_or_skip",
    "ExampleEncodingError",
    "RunError",
    "ExportError",
    "MissingDependencyError",
    "WeightsError",
    "exit_on_error",
    "did_you_mean",
]


class SkelgenError(Exception):
    """Base class of every error meant for the user. ``exit_code`` is what the process returns;
    ``prefix`` starts the one line the user sees (``error: ...``)."""

    exit_code = 1
    prefix = "error"


class UserInputError(SkelgenError):
    """A command-line value is invalid: a name, a choice, a path that must not exist."""

    exit_code = 2


class ProjectError(SkelgenError):
    """The command was run where it cannot work, e.g. ``add-dataset`` outside a project."""


class TemplateError(SkelgenError):
    """copier could not render skelgen's template (a template bug or an unusable destination)."""


class ConfigError(SkelgenError):
    """A configuration file or ``--set`` override is malformed or fails validation."""

    exit_code = 2


class DatasetError(SkelgenError):
    """A dataset is missing, incomplete, or does not match what the project expects."""


class BadExampleError(DatasetError):
    """One example of a dataset is unusable (corrupt image, size mismatch, bad label).

    Builds stop on it unless ``--skip-bad`` is given, in which case it is counted and reported.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):  # keep the two fields across process boundaries
        return (type(self), (self.path, self.reason))


def read_or_skip(read: Callable[[], T], on_bad: Callable[[BadExampleError], None] | None) -> T | None:
    """``read()``; a :class:`BadExampleError` it raises is raised again, or, with ``on_bad``, handed to it (None)."""
    try:
        return read()
    except BadExampleError as err:
        if on_bad is None:
            raise
        on_bad(err)
        return None


class ExampleEncodingError(DatasetError, ValueError):
    """A value handed to the ``tf.train.Example`` encoder that the format cannot hold as given (a ``str``
    for a bytes feature, an int64 out of range, a float for an int64 feature); names the feature key."""


class RunError(SkelgenError):
    """A training run cannot be found, resumed or loaded."""


class ExportError(SkelgenError):
    """A trained model cannot be written in the asked serving format (e.g. an op TensorFlow Lite lacks)."""


class MissingDependencyError(SkelgenError):
    """An optional package that the asked-for option needs is not installed (e.g. Apache Beam for
    ``--runner beam``); the message names the extra to install."""


class BusyError(SkelgenError):
    """Another process is working on the same thing (building the dataset, training the run); the
    message names that process and what to do."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class DiskFullError(SkelgenError):
    """The disk (or quota) a command writes to has no room left, or too little for what it is about to write;
    the message names the folder, the free space and about how much is needed. What was finished is kept."""

    exit_code = 74  # EX_IOERR


class WeightsError(SkelgenError):
    """Pretrained weights cannot be found, verified or loaded: a file missing or of another
    architecture, a hash that does not match, a download refused (no network); the message names
    the file and what to do (e.g. ``skelgen weights import``)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` naming the choice closest to ``word``, or ``""`` when none is close."""
    import difflib

    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn a :class:`SkelgenError` into ``error: ...`` on stderr and its exit code.

    Used by the ``main()`` of every generated script so that users see one line, not a traceback.
    """
    try:
        yield
    except SkelgenError as err:
        print(f"{err.prefix}: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # a full disk where no space_for block was around the write: one line too
        from skelgen_runtime._text import human_bytes
        from skelgen_runtime.files import free_bytes, is_disk_full

        if not is_disk_full(err):
            raise
        where = Path(getattr(err, "filename", None) or ".")
        print(
            f"error: no space left on the device of {where} ({human_bytes(free_bytes(where.parent))} free now): "
            "free space there, then rerun the same command",
            file=sys.stderr,
        )
        raise SystemExit(DiskFullError.exit_code) from None
