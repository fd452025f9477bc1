"""The jobs a project's scripts run, each owning the order of its steps.

``train.py``, ``evaluate.py``, ``predict.py`` and ``export.py`` read as recipes over these entry
points; the rules of order (devices before anything touches them, the precision policy before the
model, the run record before the first epoch, the project's custom layers before a model loads)
live here, so a new library feature reaches every project without an edit of its scripts.

- :class:`Training` (``train.py``): ``start`` -> ``data`` -> ``scope`` (``model``, ``optimizer``,
  ``metrics``) -> ``loss`` -> ``record`` -> ``fit``. Each step is public, so a hand-written
  ``train.py`` with another loop (two models, an EMA teacher) keeps the run record, resume and
  summaries by calling them and ``fit(..., steps=its own steps)`` (:mod:`skelgen_runtime.training.steps`).
- :class:`TrainedRun` (``evaluate.py``, ``predict.py``, ``export.py``): ``open`` a run's config,
  dataset and weights, then ``evaluate``, ``predict`` or ``export``.
- :func:`build_records` (``datasets/build_DATASET_to_tfrecord.py``) and :func:`view_records`
  (``datasets/tfrecord2image_DATASET_format.py``): the command lines of the dataset scripts; neither
  imports TensorFlow to build (build workers never do).

Every method raises :class:`~skelgen_runtime.errors.SkelgenError` subclasses for what a user can
fix; the scripts turn them into one line with :func:`~skelgen_runtime.errors.exit_on_error`.
"""

from typing import Any

from skelgen_runtime.jobs.arguments import evaluate_arguments, export_arguments, predict_arguments, train_arguments
from skelgen_runtime.jobs.trained import TrainedRun
from skelgen_runtime.jobs.training import Training, TrainingData

__all__ = [
    "build_records",
    "view_records",
    "Training",
    "TrainingData",
    "TrainedRun",
    "train_arguments",
    "evaluate_arguments",
    "predict_arguments",
    "export_arguments",
]


def build_records(**kwargs: Any) -> Any:
    """The command line of a dataset's build script: :func:`skelgen_runtime.records.build.main` (same keywords)."""
    from skelgen_runtime.records.build import main

    return main(**kwargs)


def view_records(**kwargs: Any) -> Any:
    """The command line of a dataset's viewer script: :func:`skelgen_runtime.viewer.main` (same keywords)."""
    from skelgen_runtime.viewer import main

    return main(**kwargs)
