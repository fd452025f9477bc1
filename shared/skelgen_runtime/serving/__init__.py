"""Serving: which weights of a run to use, one serving function per task, and its export.

``predict.py`` and ``export.py`` run the same function: the task binding's ``serving_function``
(raw uint8 images ``(B, H, W, 3)`` -> named outputs, resizing and normalisation inside), wrapped by
:func:`as_signature`. ``predict.py`` calls it in-process; ``export.py`` saves it as a SavedModel
signature (and converts that to TensorFlow Lite), so an exported model predicts what ``predict.py``
predicts.

- :mod:`skelgen_runtime.serving.weights`: ``--weights best|final`` (:func:`load_trained`).
- :mod:`skelgen_runtime.serving.signature`: the input, and the builtin-only image ops.
- :mod:`skelgen_runtime.serving.export`: ``--format saved_model|tflite|onnx`` (:func:`export_model`).

Importing this package imports TensorFlow and Keras.
"""

from skelgen_runtime.serving.export import (
    FORMATS,
    METADATA_FILE,
    ONNX_FILE,
    TFLITE_FILE,
    check_export_dir,
    check_format,
    default_export_dir,
    export_model,
)
from skelgen_runtime.serving.signature import (
    IMAGES,
    INPUT_NAME,
    SIGNATURE_KEY,
    ServingFunction,
    as_signature,
    model_input,
    resize_images,
)
from skelgen_runtime.serving.weights import BEST_CHECKPOINT, WEIGHTS, Trained, check_weights, float32_copy, load_trained

__all__ = [
    "WEIGHTS",
    "BEST_CHECKPOINT",
    "Trained",
    "check_weights",
    "load_trained",
    "float32_copy",
    "SIGNATURE_KEY",
    "INPUT_NAME",
    "IMAGES",
    "ServingFunction",
    "as_signature",
    "resize_images",
    "model_input",
    "FORMATS",
    "TFLITE_FILE",
    "ONNX_FILE",
    "METADATA_FILE",
    "check_format",
    "default_export_dir",
    "check_export_dir",
    "export_model",
]
