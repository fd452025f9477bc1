"""skelgen: generate TensorFlow projects from copier templates.

This package is the command-line generator. It never imports TensorFlow; the runtime library that
generated projects import lives in :mod:`skelgen_runtime`.
"""

from skelgen_runtime._version import __version__

__all__ = ["__version__"]
