"""What every dataset pipeline is: bound once to ``(data config, dataset info, hooks)``, with named methods.

The methods return ``tf.data.Dataset`` objects; this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

from skelgen_runtime.records.info import DatasetInfo
from skelgen_runtime.schemas.base import RecordSchema

__all__ = ["DataPipeline"]


class DataPipeline:
    """A dataset's pipelines (see :mod:`skelgen_runtime.data` for the methods and what they give).

    Attributes:
        data: the config's ``data`` section.
        info: the dataset's ``dataset_info.json``.
        hooks: the project's preprocessing functions (``datasets/preprocesses.py``); each task's
            pipeline documents which it calls and with which arguments.
    """

    #: the name of the record schema this class reads (:func:`skelgen_runtime.schemas.get_schema`)
    schema_name: str = ""

    def __init__(self, data: Any, info: DatasetInfo, hooks: Any) -> None:
        self.data, self.info, self.hooks = data, info, hooks

    @classmethod
    def schema(cls) -> RecordSchema:
        """The :class:`~skelgen_runtime.schemas.base.RecordSchema` of the records this class reads."""
        from skelgen_runtime.schemas import get_schema

        return get_schema(cls.schema_name)

    @property
    def examples_per_epoch(self) -> int:
        """Training samples per pass over the train split (an epoch's steps are this // batch size)."""
        return self.info.count("train")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The model's input shape without the batch axis."""
        raise NotImplementedError

    def train_batches(self, *, seed: int | None = None, repeat: bool = False, split: str = "train") -> Any:
        """Shuffled, augmented batches of ``(inputs, targets)``."""
        raise NotImplementedError

    def val_batches(self, split: str = "val", *, cache: bool | None = None) -> Any:
        """Deterministic batches of ``(inputs, targets)``; ``cache`` overrides ``data.cache``."""
        raise NotImplementedError

    def eval_examples(self, split: str = "val") -> Any:
        """Deterministic batches of dicts, what the task's evaluation scores (labels at their original size)."""
        raise NotImplementedError

    def raw_examples(self, split: str) -> Any:
        """Decoded records of ``split`` in file order, unbatched (what prediction reads)."""
        raise NotImplementedError

    def eval_steps(self, split: str = "val") -> int | None:
        """How many elements :meth:`eval_examples` yields (for progress), None when not known in advance."""
        return None

    def _data(self, cache: bool | None) -> Any:
        """The ``data`` section, with ``cache`` overridden when given."""
        return self.data if cache is None or cache == self.data.cache else self.data.model_copy(update={"cache": cache})
