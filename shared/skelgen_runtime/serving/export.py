"""Write a trained model with its serving function as a SavedModel or a TensorFlow Lite model.

What ``python export.py --run RUN --format saved_model|tflite`` writes into its output folder:

- ``saved_model``: a SavedModel (``saved_model.pb``, ``variables/``) with one signature,
  ``serving_default`` (:data:`~skelgen_runtime.serving.signature.SIGNATURE_KEY`), written by Keras's
  ``ExportArchive``; load it with ``tf.saved_model.load(DIR).signatures["serving_default"]``.
- ``tflite``: ``model.tflite``, converted from that SavedModel with TensorFlow Lite builtin ops only
  (no Flex delegate needed: ``tf.lite.Interpreter`` of TensorFlow 2.21 has none). Its input has dynamic
  batch, height and width: call ``resize_tensor_input`` with the image's shape, then
  ``allocate_tensors``, or use ``get_signature_runner("serving_default")``.
- both: ``export.json``: the signature (input and output names, dtypes, shapes; -1 where dynamic),
  the label map, and which run and weights were exported.

The output folder must not exist or be empty; it is written under a temporary name and renamed, so
an interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import keras
import tensorflow as tf

from skelgen_runtime.errors import ExportError, UserInputError, did_you_mean
from skelgen_runtime.runs import Run
from skelgen_runtime.serving.signature import IMAGES, SIGNATURE_KEY, ServingFunction, as_signature
from skelgen_runtime.serving.weights import Trained

__all__ = ["FORMATS", "TFLITE_FILE", "METADATA_FILE", "check_format", "default_export_dir", "check_export_dir",
           "export_model"]

FORMATS = ("saved_model", "tflite")
TFLITE_FILE = "model.tflite"
METADATA_FILE = "export.json"


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS`; else :class:`UserInputError` naming the choices."""
    if fmt not in FORMATS:
        raise UserInputError(f"unknown --format {fmt!r}; choose {' or '.join(FORMATS)}{did_you_mean(fmt, FORMATS)}")
    return fmt


def default_export_dir(run: Run, fmt: str, weights: str) -> Path:
    """``models/RUN/export/FORMAT-WEIGHTS``, e.g. ``models/RUN/export/tflite-best``."""
    return run.model_dir / "export" / f"{fmt}-{weights}"


def check_export_dir(path: Path) -> Path:
    """``path`` if nothing would be overwritten there; else :class:`UserInputError` saying what to do."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserInputError(f"{path} already exists and is not empty; remove it (rm -r {path}) "
                             "or choose another folder with --out")
    return path


def _spec(tensor: tf.TensorSpec | tf.Tensor) -> dict[str, Any]:
    return {"dtype": tensor.dtype.name, "shape": [-1 if d is None else int(d) for d in tensor.shape]}


def _write_saved_model(signature: tf.types.experimental.PolymorphicFunction, model: keras.Model,
                       path: Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_KEY, signature)
    archive.write_out(str(path), verbose=False)


def _to_tflite(saved_model: Path) -> bytes:
    from tensorflow.lite.python.convert import ConverterError

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[SIGNATURE_KEY])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except ConverterError as err:
        ops = [line.strip() for line in str(err).splitlines() if line.strip().startswith(("Custom ops:", "Flex ops:"))]
        raise ExportError(f"TensorFlow Lite has no builtin for an op of this model ({'; '.join(ops) or err}); "
                          "export --format saved_model, or replace that op in core/") from None


def export_model(serve: ServingFunction, trained: Trained, fmt: str, out_dir: Path, *,
                 labels: list[dict], about: Mapping[str, Any] | None = None) -> Path:
    """Export ``serve`` (a task binding's ``serving_function``) with ``trained``'s model to ``out_dir``.

    Args:
        serve: raw uint8 images ``(B, H, W, 3)`` -> named outputs; wrapped by
            :func:`~skelgen_runtime.serving.signature.as_signature`, as ``predict.py`` wraps it.
        trained: the model whose variables ``serve`` reads, and which weights they are.
        fmt: ``"saved_model"`` or ``"tflite"``.
        out_dir: the folder to write (must not exist, or be empty).
        labels: the label map (``LabelMap.to_json()``), written to ``export.json``.
        about: more for ``export.json`` (the run id, the task, the model's image size).

    Returns:
        ``out_dir``.

    Raises:
        UserInputError: unknown format, or ``out_dir`` not empty.
        ExportError: TensorFlow Lite cannot convert an op of the model.
    """
    from skelgen_runtime import __version__

    check_format(fmt)
    check_export_dir(out_dir)
    signature = as_signature(serve)
    outputs = signature.get_concrete_function().structured_outputs
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".tmp-{os.getpid()}-{out_dir.name}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if fmt == "saved_model":
            _write_saved_model(signature, trained.model, staging)
        else:
            with tempfile.TemporaryDirectory(prefix="skelgen-export-") as scratch:
                _write_saved_model(signature, trained.model, Path(scratch) / "saved_model")
                tflite = _to_tflite(Path(scratch) / "saved_model")
            staging.mkdir()
            (staging / TFLITE_FILE).write_bytes(tflite)
        metadata = {
            "format": fmt,
            "signature": SIGNATURE_KEY,
            "input": {"name": IMAGES.name, **_spec(IMAGES)},
            "outputs": {name: _spec(t) for name, t in sorted(outputs.items())},
            "labels": labels,
            **(about or {}),
            "weights": trained.weights,
            "weights_file": str(trained.path),
            "skelgen_version": __version__,
            "tensorflow_version": tf.__version__,
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
