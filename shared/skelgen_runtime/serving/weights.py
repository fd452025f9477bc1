"""Which weights of a run ``evaluate.py``, ``predict.py`` and ``export.py`` use: the best checkpoint or the final model.

- ``best`` (the default): ``models/RUN/checkpoints/best.weights.h5``, the epoch the task's monitor
  (``MONITOR`` of the task binding, e.g. ``val_miou``) liked best, loaded into the architecture of
  ``final.keras``. A run without that file falls back to ``final`` with a notice.
- ``final``: ``models/RUN/final.keras`` as saved at the end of training.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import keras

from skelgen_runtime.errors import RunError
from skelgen_runtime.models import preprocessing as _preprocessing  # noqa: F401 - its layers load by name
from skelgen_runtime.options import WEIGHTS, check_weights
from skelgen_runtime.runs import Run

__all__ = ["WEIGHTS", "BEST_CHECKPOINT", "Trained", "check_weights", "load_trained", "float32_copy"]

#: the best checkpoint's file name in ``models/RUN/checkpoints/``
BEST_CHECKPOINT = "best.weights.h5"


@dataclass(frozen=True)
class Trained:
    """A run's model with the weights that were loaded.

    Attributes:
        model: the Keras model (not compiled).
        weights: ``"best"`` or ``"final"``: what was loaded (``final`` after a fallback).
        path: the file the weights came from.
        notice: why the asked-for weights were not used, else None.
        monitor: the value that chose the best checkpoint, when known.
    """

    model: keras.Model
    weights: str
    path: Path
    notice: str | None = None
    monitor: str | None = None

    def describe(self) -> str:
        """``weights: best (checkpoint with the best val_miou: PATH)`` or ``weights: final (PATH)``."""
        if self.weights == "best":
            chosen = f"the best {self.monitor}" if self.monitor else "the best validation score"
            return f"weights: best (checkpoint with {chosen}: {self.path})"
        return f"weights: final ({self.path})"

    def in_float32(self) -> "Trained":
        """This, with a float32 copy of the model when it was trained under ``train.mixed_precision``
        (what an export serves on any device, and what the export's parity checks compare)."""
        copy = float32_copy(self.model)
        return self if copy is self.model else replace(self, model=copy)

    def announce(self) -> None:
        """Print the notice (if any) on stderr and :meth:`describe` on stdout."""
        if self.notice:
            print(f"notice: {self.notice}", file=sys.stderr, flush=True)
        print(self.describe(), flush=True)


def _float32_policies(node):
    """A serialised Keras object with every ``mixed_*`` dtype policy replaced by ``float32``."""
    if isinstance(node, dict):
        if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            name = str(node.get("config", {}).get("name", ""))
            if name.startswith("mixed_"):
                return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: _float32_policies(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_policies(v) for v in node]
    return node


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` itself when every layer computes in float32; else the same architecture built with
    float32 policies, holding the same weights."""

    def layers(layer):
        yield layer
        for inner in getattr(layer, "layers", ()):
            yield from layers(inner)

    if all(
        keras.backend.standardize_dtype(layer.compute_dtype) not in ("float16", "bfloat16") for layer in layers(model)
    ):
        return model
    copy = keras.saving.deserialize_keras_object(_float32_policies(keras.saving.serialize_keras_object(model)))
    copy.set_weights(model.get_weights())
    return copy


def _shown(run: Run, path: Path) -> Path:
    try:
        return path.relative_to(run.root)
    except ValueError:
        return path


def load_trained(run: Run, weights: str = "best", *, monitor: str | None = None) -> Trained:
    """Load ``run``'s model with its ``best`` or ``final`` weights (see the module docstring).

    The project's own layers must be registered first (``import core`` in the scripts).

    Args:
        run: a finished run (``skelgen_runtime.runs.find_run``).
        weights: ``"best"`` or ``"final"``.
        monitor: the task's ``MONITOR``, named in :meth:`Trained.describe`.

    Raises:
        UserInputError: ``weights`` is neither.
        RunError: the best checkpoint does not fit the final model's architecture.
    """
    check_weights(weights)
    from skelgen_runtime.models.extras import import_for

    import_for(run.final_model)  # keras-hub's layers, if the model has any
    model = keras.models.load_model(run.final_model, compile=False)
    final = Trained(model, "final", _shown(run, run.final_model))
    if weights == "final":
        return final
    best = run.checkpoint_dir / BEST_CHECKPOINT
    if not best.is_file():
        return Trained(
            model,
            "final",
            final.path,
            notice=f"run {run.run_id} has no {_shown(run, best)}; using final.keras (pass --weights final to say so)",
        )
    try:
        model.load_weights(best)
    except ValueError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunError(
            f"{_shown(run, best)} does not fit the model in {final.path} ({reason}); use --weights final"
        ) from None
    return Trained(model, "best", _shown(run, best), monitor=monitor)
