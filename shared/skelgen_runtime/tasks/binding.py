"""The task interface: what a task binding provides to the generated scripts.

A binding is a module (``skelgen_runtime.tasks.segmentation`` ...) named in the task table
(:data:`skelgen_runtime.tasks.TASKS`) for one record schema. Modules satisfy a ``Protocol``
structurally; ``isinstance(module, TaskBinding)`` checks that every member is there.

What a binding does *not* provide is what the project owns: the model (``core/``), the loss
(``core/losses.py``), the training step (``core/steps.py`` or ``Model.train_step``) and the config
schema (``core/config.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, runtime_checkable

__all__ = ["TaskBinding"]


@runtime_checkable
class TaskBinding(Protocol):
    """The members every task binding module defines.

    Attributes:
        MONITOR: the logged validation value that selects ``checkpoints/best.weights.h5``.
        MONITOR_MODE: ``"max"`` or ``"min"``: which way ``MONITOR`` improves.
    """

    MONITOR: str
    MONITOR_MODE: str

    def train_metrics(self, config: Any, info: Any) -> list:
        """Keras metrics updated with ``(targets, outputs)`` and logged per epoch as ``NAME``/``val_NAME``."""

    def preview(self, model: Any, inputs: Any, targets: Any, config: Any, info: Any) -> Any:
        """uint8 ``(N, H, W, 3)`` pictures of ``model``'s predictions on a validation batch (TensorBoard images)."""

    def evaluate(self, model: Any, batches: Iterable[dict], config: Any, info: Any) -> dict:
        """Score ``model`` on ``pipeline.eval_dataset(..., for_keras=False)``; JSON-able, written to eval_SPLIT.json."""

    def report(self, result: dict, info: Any) -> str:
        """The printed table of an :meth:`evaluate` result, ending with its headline line."""

    def write_artifacts(self, result: dict, info: Any, out_dir: Path, split: str) -> list[Path]:
        """Pictures or tables of an evaluation beside ``eval_SPLIT.json`` (may be none)."""

    def read_inputs(self, path: Path, info: Any, on_bad: Callable[[Any], None] | None = None) -> Iterator[Any]:
        """Items to predict from a file or folder the user names (``predict.py --input``); an unreadable one
        raises :class:`~skelgen_runtime.errors.BadExampleError`, or is handed to ``on_bad`` and left out."""

    def predict_item(self, example: dict, info: Any) -> Any:
        """An item to predict from one decoded record (``predict.py --split``)."""

    def serving_function(self, model: Any, config: Any, info: Any) -> Callable[[Any], Mapping[str, Any]]:
        """Raw uint8 images ``(B, H, W, 3)`` -> named output tensors, resizing and normalisation inside.

        What :meth:`predict` runs on each image and ``export.py`` saves (``skelgen_runtime.serving``);
        raises :class:`~skelgen_runtime.errors.UserInputError` where the records cannot be served so.
        """

    def predict(self, model: Any, items: Iterable[Any], config: Any, info: Any, out_dir: Path) -> str:
        """Write predictions of ``items`` into ``out_dir``; return a one-line summary."""
