"""skelgen_runtime: the library that skelgen-generated TensorFlow projects import.

Record schemas, sharded atomic TFRecord writers, tf.data readers, preprocessing ops, metrics,
visualisation, run records and readers of dataset layouts. Importing this package is cheap:
TensorFlow is only imported by the submodules that need it.

**The compatibility contract.** Generated projects may import the modules of
:data:`PUBLIC_MODULES`, and from each only the names in its ``__all__``. Within one minor version
series (``0.2.x``) those names keep their meaning and accept what they accepted before: a project
rendered from the template of one version keeps working with the library of every later version of
that series (a project declares ``skelgen-tf>=X.Y.Z,<X.Y+1``), and ``skelgen update`` moves it to the
next series. Everything else (modules starting with ``_``, names outside ``__all__``) may change in
any release. The test suite checks that the template imports nothing else, and runs a project
rendered from the previous release's template against this library.
"""

from skelgen_runtime._version import __version__

__all__ = ["__version__", "PUBLIC_MODULES"]

#: the modules whose ``__all__`` generated projects may use (see the module docstring)
PUBLIC_MODULES = (
    "skelgen_runtime",
    "skelgen_runtime.config",
    "skelgen_runtime.data",
    "skelgen_runtime.errors",
    "skelgen_runtime.formats.centernet",
    "skelgen_runtime.jobs",
    "skelgen_runtime.layout",
    "skelgen_runtime.losses",
    "skelgen_runtime.models",
    "skelgen_runtime.models.hub",
    "skelgen_runtime.models.preprocessing",
    "skelgen_runtime.pipeline",
    "skelgen_runtime.preprocessing.classification",
    "skelgen_runtime.preprocessing.detection",
    "skelgen_runtime.preprocessing.image",
    "skelgen_runtime.preprocessing.segmentation",
    "skelgen_runtime.preprocessing.volume",
    "skelgen_runtime.project",
    "skelgen_runtime.records.build",
    "skelgen_runtime.records.info",
    "skelgen_runtime.records.reader",
    "skelgen_runtime.records.writer",
    "skelgen_runtime.registry",
    "skelgen_runtime.runs",
    "skelgen_runtime.schemas",
    "skelgen_runtime.serving",
    "skelgen_runtime.sources",
    "skelgen_runtime.startup",
    "skelgen_runtime.tasks",
    "skelgen_runtime.tasks.binding",
    "skelgen_runtime.tasks.classification",
    "skelgen_runtime.training.custom_loop",
    "skelgen_runtime.training.distribute",
    "skelgen_runtime.training.keras_fit",
    "skelgen_runtime.training.metrics",
    "skelgen_runtime.training.optim",
    "skelgen_runtime.training.precision",
    "skelgen_runtime.training.steps",
    "skelgen_runtime.training.summaries",
    "skelgen_runtime.viewer",
)
