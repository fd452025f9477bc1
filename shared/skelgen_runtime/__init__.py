"""skelgen_runtime: the library that skelgen-generated TensorFlow projects import.

Record schemas, sharded atomic TFRecord writers, tf.data readers, preprocessing ops, metrics,
visualisation, run records and readers of dataset layouts. Importing this package is cheap:
TensorFlow is only imported by the submodules that need it.
"""

from skelgen_runtime._version import __version__

__all__ = ["__version__"]
