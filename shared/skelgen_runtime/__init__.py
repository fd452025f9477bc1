"""skelgen_runtime: the library that skelgen-generated TensorFlow projects import.

Record schemas, sharded atomic TFRecord writers, tf.data pipelines, preprocessing ops, metrics,
visualisation, run records and readers of dataset layouts. Importing this package is cheap:
TensorFlow is only imported by the submodules that need it.

**The compatibility contract.** Generated projects may import the modules of
:data:`PUBLIC_MODULES`, and from each only the names in its ``__all__`` (all of them on one page,
``shared/REFERENCE.md``, generated from the docstrings). Within one minor version series
(``0.3.x``) those names keep their meaning and accept what they accepted before: a project rendered
from the template of one version keeps working with the library of every later version of that
series (a project declares ``skelgen-tf>=X.Y.Z,<X.Y+1``), and ``skelgen update`` moves it to the
next series. The previous minor's entry points (:data:`PREVIOUS_MODULES`) stay importable for one
more minor, so that a project of it keeps running until it is updated; they are not for new code.
Everything else (modules starting with ``_``, names outside ``__all__``) may change in any release.
The test suite checks that the template imports nothing else, and runs a project rendered from the
previous release's template against this library.
"""

from skelgen_runtime._version import __version__

__all__ = ["__version__", "PUBLIC_MODULES", "PREVIOUS_MODULES"]

#: the modules whose ``__all__`` generated projects may use (see the module docstring)
PUBLIC_MODULES = (
    "skelgen_runtime",
    "skelgen_runtime.config",  # config sections and validation (core/config.py)
    "skelgen_runtime.data",  # tf.data pipelines per record schema
    "skelgen_runtime.errors",
    "skelgen_runtime.formats.centernet",  # CenterNet's targets and loss (detection)
    "skelgen_runtime.jobs",  # what every script runs: train, evaluate, predict, export, build, view
    "skelgen_runtime.losses",
    "skelgen_runtime.models",  # backbones, keras-hub models, pretrained weights
    "skelgen_runtime.preprocessing.classification",  # augmentation ops (datasets/preprocesses.py)
    "skelgen_runtime.preprocessing.detection",
    "skelgen_runtime.preprocessing.segmentation",
    "skelgen_runtime.preprocessing.volume",
    "skelgen_runtime.project",  # Project (core/project.py)
    "skelgen_runtime.registry",
    "skelgen_runtime.sources",  # dataset readers (build scripts)
    "skelgen_runtime.tasks",  # the task table
    "skelgen_runtime.training",  # optimizer, schedule and metric registries
)

#: the 0.2 series' entry points, kept importable through 0.3 for projects of 0.2 (see the module docstring)
PREVIOUS_MODULES = (
    "skelgen_runtime.pipeline",
    "skelgen_runtime.preprocessing.image",
    "skelgen_runtime.records.build",
    "skelgen_runtime.records.info",
    "skelgen_runtime.records.reader",
    "skelgen_runtime.records.writer",
    "skelgen_runtime.runs",
    "skelgen_runtime.schemas",
    "skelgen_runtime.serving",
    "skelgen_runtime.startup",
    "skelgen_runtime.tasks.binding",
    "skelgen_runtime.tasks.classification",
    "skelgen_runtime.training.custom_loop",
    "skelgen_runtime.training.distribute",
    "skelgen_runtime.training.keras_fit",
    "skelgen_runtime.training.optim",
    "skelgen_runtime.training.precision",
    "skelgen_runtime.training.summaries",
    "skelgen_runtime.viewer",
)
