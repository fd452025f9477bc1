"""keras-hub, the optional extra: importing it when needed, with the pip command when it is missing.

Neither function imports Keras; :mod:`skelgen_runtime.models.hub` (keras-hub's models) and
:mod:`skelgen_runtime.models.pretrained` (loading another run's model) both use them.
"""

from __future__ import annotations

from skelgen_runtime.errors import MissingDependencyError

__all__ = ["INSTALL_HUB", "import_for", "require_keras_hub"]

#: how to install keras-hub beside this library
INSTALL_HUB = (
    "pip install 'skelgen-tf[hub]' (or, beside tensorflow-cpu: pip install 'skelgen-tf[hub-cpu]' && "
    "pip install --no-deps 'keras-hub>=0.32,<0.33')"
)


def require_keras_hub(what: str):
    """``keras_hub``, or :class:`MissingDependencyError` naming the pip command that installs it."""
    try:
        import keras_hub
    except ImportError as err:
        raise MissingDependencyError(f"{what} needs keras-hub ({err.name} is not installed): {INSTALL_HUB}") from None
    return keras_hub


def import_for(saved_model) -> None:
    """Import keras-hub when the saved ``.keras`` model ``saved_model`` holds keras-hub layers (so that
    Keras can rebuild them); the pip command when it is not installed."""
    import zipfile

    try:
        with zipfile.ZipFile(saved_model) as archive:
            config = archive.read("config.json").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return  # not a .keras archive: Keras's own loading error says what is wrong
    if '"module": "keras_hub' in config:
        require_keras_hub(f"{saved_model} (a model with keras-hub layers)")
