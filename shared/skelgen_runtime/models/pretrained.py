"""Pretrained weights that work offline: where Keras keeps them, importing a file fetched elsewhere,
checking it, and loading it into a backbone so that nothing trains on weights that did not load.

``model.weights`` is one of

- ``null``: random initialisation;
- ``imagenet``: Keras's own file for the backbone in ``KERAS_HOME/models`` (``~/.keras/models``
  unless ``KERAS_HOME`` is set, as ``keras.utils.get_file`` decides). When it is not there, Keras
  downloads it once; on a machine without internet that fails before training starts with the
  command that imports the file instead: ``skelgen weights import FILE --backbone NAME``;
- a path to a weights file (``.weights.h5`` saved by Keras 3, or a legacy ``.h5``) for the backbone;
- a keras-hub preset name or preset folder, for the keras-hub backbones
  (:mod:`skelgen_runtime.models.hub`);
- a path to a saved model (``.keras``, e.g. another run's ``models/RUN/final.keras``): its layers
  named ``encoder`` / ``encoder.*`` (the backbone, whatever the task of that run) give theirs to the
  layers of the same names (:func:`load_encoder_from_model`): how one project's pretraining starts
  another's training.

``skelgen weights import`` checks a file against the MD5 that Keras's own source checks for it
(where Keras has none, against a SHA-256 the user gives, kept in ``KERAS_HOME/models/
skelgen-weights.json`` and recorded in every run that loads the file), then copies it where Keras
looks. This module does not import Keras at import time (the CLI uses it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Annotated, Any, Sequence

from pydantic import AfterValidator

from skelgen_runtime.errors import UserInputError, WeightsError, did_you_mean
from skelgen_runtime.files import atomic_path, atomic_write_text, file_digest
from skelgen_runtime.models.applications import APPLICATIONS, ENCODER, Application
from skelgen_runtime.models.extras import import_for

__all__ = [
    "IMAGENET",
    "Weights",
    "MANIFEST",
    "keras_models_dir",
    "check_weights_spec",
    "file_digest",
    "import_weights",
    "load_backbone_weights",
    "load_encoder_from_model",
    "is_saved_model",
]

IMAGENET = "imagenet"
#: imported files' SHA-256, in the folder Keras keeps weights in
MANIFEST = "skelgen-weights.json"


def keras_models_dir() -> Path:
    """``$KERAS_HOME/models``, else ``~/.keras/models`` (``/tmp/.keras/models`` when the home folder is not
    writable): where ``keras.utils.get_file(..., cache_subdir="models")`` looks (Keras 3's
    ``keras/src/backend/config.py`` and ``utils/file_utils.py``)."""
    if "KERAS_HOME" in os.environ:
        base = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        home = Path("~").expanduser()
        base = (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"
    return base / "models"


def check_weights_spec(value: str | None) -> str | None:
    """Validate a ``model.weights`` value: ``None``, ``"imagenet"``, an existing file or folder (``~``
    expanded; a folder is a keras-hub preset), or a name of lower-case letters, digits and ``_`` (a
    keras-hub preset, checked against the backbone's presets when the model is built).

    Raises:
        ValueError: anything else (for the config's validation message).
    """
    if value is None or value == IMAGENET:
        return value
    path = Path(value).expanduser()
    if path.exists():
        return str(path)
    if re.fullmatch(r"[a-z0-9_]+", value):
        return value
    raise ValueError(
        f"{value!r} is neither null, imagenet, an existing weights file or preset folder, nor a keras-hub preset name"
    )


#: the type of a builder's ``weights`` keyword: null, ``imagenet`` or an existing weights file (validated
#: with the config, so a typo fails before anything is built)
Weights = Annotated[str | None, AfterValidator(check_weights_spec)]


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _which(file_name: str, backbone: str | None) -> tuple[Application, str]:
    """The application whose ImageNet file is named ``file_name``."""
    if backbone is not None:
        if backbone not in APPLICATIONS:
            raise UserInputError(
                f"--backbone {backbone!r} has no Keras ImageNet file; known: "
                f"{', '.join(APPLICATIONS)}{did_you_mean(backbone, APPLICATIONS)}"
            )
        candidates = [APPLICATIONS[backbone]]
    else:
        candidates = list(APPLICATIONS.values())
    for app in candidates:
        if file_name in app.imagenet_files():
            return app, file_name
    expected = [f for app in candidates for f in app.imagenet_files()]
    raise UserInputError(
        f"{file_name} is not a Keras ImageNet file of {backbone or 'any known backbone'}; "
        f"Keras looks for {', '.join(expected)}{did_you_mean(file_name, expected)} "
        "(download the file of that name, or keep its name when you copy it)"
    )


def import_weights(file: Path, *, backbone: str | None = None, sha256: str | None = None) -> Path:
    """Check ``file`` (downloaded elsewhere) and put it where Keras looks for ``weights: imagenet``.

    The file must have the name Keras downloads it under. It is checked against the MD5 in Keras's own
    source; where Keras has none (MobileNetV2), ``sha256`` is required and checked, then kept in the
    manifest so that runs record it. The copy is atomic.

    Returns:
        The path the file now has (``keras_models_dir() / name``).

    Raises:
        UserInputError: no such file, a name Keras does not use, no ``sha256`` where one is needed.
        WeightsError: the file's hash differs from the expected one (both are named).
    """
    file = Path(file).expanduser()
    if not file.is_file():
        raise UserInputError(f"{file}: no such file")
    app, name = _which(file.name, backbone)
    expected_md5 = app.md5.get(name)
    if expected_md5 is not None:
        actual = file_digest(file, "md5")
        if actual != expected_md5:
            raise WeightsError(
                f"{file}: MD5 {actual} differs from {expected_md5}, the hash Keras checks for {name}; "
                "the file is damaged or another file: download it again"
            )
    elif sha256 is None:
        raise UserInputError(
            f"Keras checks no hash for {name}: give the SHA-256 you trust for it with --sha256 "
            f"(e.g. from the machine that downloaded it: sha256sum {name})"
        )
    actual_sha = file_digest(file)
    if sha256 is not None and actual_sha != sha256.lower():
        raise WeightsError(
            f"{file}: SHA-256 {actual_sha} differs from the given {sha256.lower()}; the file is damaged or another file"
        )
    folder = keras_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    with atomic_path(target) as staging:  # Keras never sees a half-copied file under its name
        shutil.copyfile(file, staging)  # write: staged
    manifest = _manifest(folder)
    manifest[name] = {
        "backbone": app.name,
        "sha256": actual_sha,
        "md5": expected_md5,
        "checked_against": "keras md5" if expected_md5 else "given sha256",
        "source": str(file),
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    return target


def _imagenet_file(app: Application, input_shape: Sequence[int]) -> Path:
    """Keras's ImageNet file for ``app``: the cached one (checked) or a download; else a WeightsError
    that says how to import it."""
    import keras

    name = app.imagenet_file(input_shape)
    folder = keras_models_dir()
    cached = folder / name
    md5 = app.md5.get(name)
    if cached.is_file():
        if md5 is not None and file_digest(cached, "md5") != md5:
            raise WeightsError(
                f"{cached} does not have the MD5 Keras checks ({md5}); remove it and import the file "
                f"again: skelgen weights import {name} --backbone {app.name}"
            )
        return cached
    try:
        return Path(
            keras.utils.get_file(
                name, app.weights_url + name, cache_subdir="models", file_hash=md5, cache_dir=str(folder.parent)
            )
        )
    except Exception as err:  # noqa: BLE001 - any failed download (no network, refused, truncated)
        raise WeightsError(
            f"model.weights: imagenet needs {cached}, which is not there, and Keras could not download it "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no detail'}). On a machine with "
            f"internet, download {app.weights_url}{name}, copy it here and run: skelgen weights import {name} "
            f"--backbone {app.name}" + ("" if md5 else " --sha256 HEX")
        ) from None


def _mismatch(err: Exception) -> str:
    """The first line of Keras's loading error that names a layer."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Layer '") or "layer" in line.lower():
            return line
    return lines[0] if lines else type(err).__name__


def is_saved_model(weights: str | None) -> bool:
    """Whether a ``model.weights`` value names a whole saved model (``.keras``) rather than a weights file."""
    return weights is not None and str(weights).endswith(".keras")


def _record(path: Path, **fields: Any) -> dict[str, Any]:
    record = {**fields, "file": str(path), "sha256": file_digest(path)}
    known = _manifest(path.parent).get(path.name)
    if known:
        record["checked_against"] = known.get("checked_against")
    return record


def load_encoder_from_model(layers: Sequence[Any], weights: str) -> dict[str, Any]:
    """Give ``layers`` (those named ``encoder``/``encoder.*`` with weights) the weights of the layers of the
    same names in the saved model ``weights`` (a ``.keras`` file).

    Returns:
        What the run record keeps: ``{"weights", "file", "sha256", "layers"}``.

    Raises:
        WeightsError: the file does not load, has none of these layers, lacks one of them, or one's
            weights have other shapes (the message names the layer and both shapes).
    """
    import keras

    path = Path(weights).expanduser()
    targets = [
        layer for layer in layers if (layer.name == ENCODER or layer.name.startswith(ENCODER + ".")) and layer.weights
    ]
    import_for(path)
    try:
        source = keras.saving.load_model(str(path), compile=False)
    except Exception as err:  # noqa: BLE001 - a file that is not a Keras model, or of unknown classes
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"model.weights: {path} is not a Keras model this project can load ({first})") from None
    by_name = {layer.name: layer for layer in source.layers}
    missing = [layer.name for layer in targets if layer.name not in by_name]
    if missing:
        have = [n for n in by_name if n == ENCODER or n.startswith(ENCODER + ".")]
        raise WeightsError(
            f"model.weights: {path} has no layer {missing[0]!r} (of {len(missing)} backbone layers "
            f"missing; it has {len(have)} named {ENCODER}/{ENCODER}.*): was it trained with this "
            "backbone (model.backbone, model.base_filters, model.depth)?"
        )
    for layer in targets:
        theirs = by_name[layer.name].get_weights()
        ours = layer.get_weights()
        shapes = [tuple(w.shape) for w in ours], [tuple(w.shape) for w in theirs]
        if shapes[0] != shapes[1]:
            raise WeightsError(
                f"model.weights: layer {layer.name!r} of {path} has weights of shapes {shapes[1]}, "
                f"this model's {shapes[0]}: another architecture (model.base_filters, model.depth?)"
            )
        layer.set_weights(theirs)
    return _record(path, weights=str(weights), layers=len(targets))


def load_backbone_weights(network, app: Application, weights: str, input_shape: Sequence[int]) -> dict[str, Any]:
    """Load ``weights`` (``"imagenet"`` or a file) into ``network`` (the ``keras.applications`` model).

    Returns:
        What the run record keeps: ``{"backbone", "weights", "file", "sha256"}``.

    Raises:
        WeightsError: the file is missing, not a weights file, or of another architecture (naming the
            file and the first layer that does not fit); Keras's warnings of a partial load count too.
    """
    path = _imagenet_file(app, input_shape) if weights == IMAGENET else Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"model.weights: {path} not found")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            network.load_weights(str(path))
        except Exception as err:  # noqa: BLE001 - Keras raises ValueError, OSError, KeyError... for a bad file
            raise WeightsError(
                f"model.weights: {path} does not fit backbone {app.name!r} "
                f"(keras.applications.{app.constructor}): {_mismatch(err)}"
            ) from None
    skipped = [
        str(w.message)
        for w in caught
        if "skipping" in str(w.message).lower() or "could not be loaded" in str(w.message).lower()
    ]
    if skipped:
        raise WeightsError(
            f"model.weights: {path} loaded only in part into backbone {app.name!r}: {skipped[0].splitlines()[0]}"
        )
    return _record(path, backbone=app.name, weights=weights)
