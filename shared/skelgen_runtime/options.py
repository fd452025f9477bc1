"""The choices and paths the scripts' options name, checked without TensorFlow.

``evaluate.py``, ``predict.py`` and ``export.py`` check ``--weights``, ``--format``, ``--split``,
``--input`` and ``--output``/``--out`` with these before TensorFlow loads (seconds), so a typo costs
no start-up. :mod:`skelgen_runtime.serving` re-exports the names it documents.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from skelgen_runtime.errors import UserInputError, did_you_mean

if TYPE_CHECKING:
    from skelgen_runtime.runs import Run

__all__ = [
    "WEIGHTS",
    "FORMATS",
    "check_weights",
    "check_format",
    "check_export_dir",
    "check_writable",
    "default_export_dir",
]

#: ``--weights``: the checkpoint with the best validation score, or ``final.keras``
WEIGHTS = ("best", "final")
#: ``export.py --format``
FORMATS = ("saved_model", "tflite", "onnx")


def _choose(choices: tuple[str, ...]) -> str:
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def check_weights(weights: str) -> str:
    """``weights`` if it is one of :data:`WEIGHTS`; else :class:`UserInputError` naming the choices."""
    if weights not in WEIGHTS:
        raise UserInputError(
            f"unknown --weights {weights!r}; choose {_choose(WEIGHTS)}{did_you_mean(weights, WEIGHTS)}"
        )
    return weights


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS`; else :class:`UserInputError` naming the choices."""
    if fmt not in FORMATS:
        raise UserInputError(f"unknown --format {fmt!r}; choose {_choose(FORMATS)}{did_you_mean(fmt, FORMATS)}")
    return fmt


def check_export_dir(path: Path) -> Path:
    """``path`` if nothing would be overwritten there; else :class:`UserInputError` saying what to do."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserInputError(
            f"{path} already exists and is not empty; remove it (rm -r {path}) or choose another folder with --out"
        )
    return path


def default_export_dir(run: Run, fmt: str, weights: str) -> Path:
    """``models/RUN/export/FORMAT-WEIGHTS``, e.g. ``models/RUN/export/tflite-best``."""
    return run.model_dir / "export" / f"{fmt}-{weights}"


def check_writable(folder: Path, what: str) -> None:
    """Raise :class:`UserInputError` unless ``folder`` is, or can be made as, a folder this user writes into.

    ``what`` names the option in the message (``"workspace"``, ``"--output"``). The nearest existing folder
    is probed with a temporary folder: some look writable and refuse anyway (``/proc``, read-only mounts).
    """
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserInputError(f"{what} {folder} cannot be made: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"{what} {folder} cannot be written: this user may not create files in {existing}")
    try:
        probe = Path(tempfile.mkdtemp(prefix=".skelgen-probe-", dir=existing))
    except OSError as err:
        raise UserInputError(f"{what} {folder} cannot be written in {existing}: {err.strerror or err}") from None
    probe.rmdir()
