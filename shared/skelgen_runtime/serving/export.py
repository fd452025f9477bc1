"""Write a trained model with its serving function as a SavedModel, a TensorFlow Lite or an ONNX model.

What ``python export.py --run RUN --format saved_model|tflite|onnx`` writes into its output folder:

- ``saved_model``: a SavedModel (``saved_model.pb``, ``variables/``) with one signature,
  ``serving_default`` (:data:`~skelgen_runtime.serving.signature.SIGNATURE_KEY`), written by Keras's
  ``ExportArchive``; load it with ``tf.saved_model.load(DIR).signatures["serving_default"]``.
- ``tflite``: ``model.tflite``, converted from that SavedModel with TensorFlow Lite builtin ops only
  (no Flex delegate needed: ``tf.lite.Interpreter`` of TensorFlow 2.21 has none). Its input has dynamic
  batch, height and width: call ``resize_tensor_input`` with the image's shape, then
  ``allocate_tensors``, or use ``get_signature_runner("serving_default")``.
- ``onnx``: ``model.onnx`` (opset :data:`ONNX_OPSET`), the same function converted by tf2onnx
  (the optional extra ``skelgen-tf[onnx]``): input ``images`` uint8 with dynamic batch, height and
  width, the same output names. Before it is written, onnxruntime runs it on :data:`PARITY_IMAGES`
  fixed images beside TensorFlow; ``export.json``'s ``parity`` holds the largest difference of each
  float output and the share of equal values of each integer output (class ids), and an export
  whose float outputs differ by more than :data:`PARITY_TOLERANCE` is refused.
- all: ``export.json``: the signature (input and output names, dtypes, shapes; -1 where dynamic),
  the label map, and which run and weights were exported.

A run trained under ``train.mixed_precision`` is exported as a float32 copy of its model
(``Trained.in_float32``), so every format computes in float32.

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

from skelgen_runtime.errors import ExportError
from skelgen_runtime.files import publish_dir
from skelgen_runtime.options import FORMATS, check_export_dir, check_format, default_export_dir
from skelgen_runtime.serving.signature import IMAGES, SIGNATURE_KEY, ServingFunction, as_signature
from skelgen_runtime.serving.weights import Trained

__all__ = [
    "FORMATS",
    "TFLITE_FILE",
    "ONNX_FILE",
    "ONNX_OPSET",
    "METADATA_FILE",
    "PARITY_IMAGES",
    "PARITY_TOLERANCE",
    "check_format",
    "default_export_dir",
    "check_export_dir",
    "export_model",
    "paired_rows",
    "parity_images",
]

TFLITE_FILE = "model.tflite"
ONNX_FILE = "model.onnx"
#: ONNX opset of the conversion (onnxruntime 1.17 and later run it)
ONNX_OPSET = 17
#: fixed images of the ONNX parity check, and the largest difference a float output may have
PARITY_IMAGES = 8
PARITY_TOLERANCE = 1e-4
METADATA_FILE = "export.json"


def _spec(tensor: tf.TensorSpec | tf.Tensor) -> dict[str, Any]:
    return {"dtype": tensor.dtype.name, "shape": [-1 if d is None else int(d) for d in tensor.shape]}


def _write_saved_model(signature: tf.types.experimental.PolymorphicFunction, model: keras.Model, path: Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_KEY, signature)
    archive.write_out(str(path), verbose=False)


def _to_tflite(saved_model: Path) -> bytes:
    from tensorflow.lite.python.convert import ConverterError

    from skelgen_runtime.startup import native_log_filter

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[SIGNATURE_KEY])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with native_log_filter():  # the converter's C++ side warns about a flag its Python side always sets
            return converter.convert()
    except ConverterError as err:
        ops = [line.strip() for line in str(err).splitlines() if line.strip().startswith(("Custom ops:", "Flex ops:"))]
        raise ExportError(
            f"TensorFlow Lite has no builtin for an op of this model ({'; '.join(ops) or err}); "
            "export --format saved_model, or replace that op in core/"
        ) from None


def parity_images(count: int = PARITY_IMAGES, seed: int = 0) -> list:
    """``count`` fixed uint8 images ``(1, H, W, 3)`` of assorted sizes (smooth gradients with noise, so
    that a model sees structure, not only noise)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    images = []
    for k in range(count):
        height, width = int(rng.integers(48, 160)), int(rng.integers(48, 160))
        yy, xx = np.mgrid[0:height, 0:width]
        base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (height + width)], -1)
        noise = rng.normal(0, 40, (height, width, 3))
        images.append(np.clip(base + noise, 0, 255).astype(np.uint8)[None])
    return images


def _onnx_runtime():
    from skelgen_runtime.errors import MissingDependencyError

    try:
        import onnxruntime
        import tf2onnx
    except ImportError as err:
        raise MissingDependencyError(
            f"--format onnx needs tf2onnx and onnxruntime ({err.name} is not installed): pip install 'skelgen-tf[onnx]'"
        ) from None
    return tf2onnx, onnxruntime


def _rename(graph, names: Mapping[str, str]) -> None:
    """Give an ONNX graph's tensors the signature's names (``images``, ``labels``, ...)."""
    for value in [*graph.input, *graph.output]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]


def paired_rows(
    ours: dict[str, Any], theirs: dict[str, Any], tolerance: float = PARITY_TOLERANCE
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The detections of two runs of one model, row by row: each of ``theirs`` with its match in ``ours``.

    Outputs with a ``scores`` of shape ``(B, M)`` hold ``M`` rows per image (detections) in decreasing
    score. Two backends (TensorFlow, onnxruntime) compute scores that differ by float rounding, so rows
    whose scores nearly tie may come in either order, and at the top-``M`` cut a near-tie may keep one
    detection in one backend and its twin in the other. So each row of ``theirs`` (best score first)
    takes the row of ``ours`` of the same class whose score is within ``tolerance`` and whose values
    are closest; a row with none is paired with the closest score (its difference then shows), unless
    its score is within ``tolerance`` of the weakest kept one (the cut), where it is left out of the
    comparison. Other outputs are returned as they are.
    """
    import numpy as np

    scores = theirs.get("scores")
    if scores is None or scores.ndim != 2:
        return ours, theirs
    batch, rows = scores.shape
    names = [k for k, v in theirs.items() if v.ndim >= 2 and v.shape[:2] == (batch, rows)]
    floats = [k for k in names if np.issubdtype(theirs[k].dtype, np.floating)]
    pairs_o: dict[str, list] = {k: [] for k in names}
    pairs_t: dict[str, list] = {k: [] for k in names}
    for b in range(batch):
        s_o, s_t = ours["scores"][b].astype(np.float64), scores[b].astype(np.float64)
        cut = min(float(s_o.min(initial=np.inf)), float(s_t.min(initial=np.inf)))
        free = list(range(rows))
        for i in np.argsort(-s_t, kind="stable"):
            near = [
                j
                for j in free
                if abs(s_o[j] - s_t[i]) <= tolerance
                and ("classes" not in theirs or ours["classes"][b][j] == theirs["classes"][b][i])
            ]
            if not near and s_t[i] - cut <= tolerance:
                continue  # at the top-M cut: the other backend kept a near-tie instead
            if near:
                j = min(
                    near,
                    key=lambda j: max(
                        float(np.max(np.abs(ours[k][b][j] - theirs[k][b][i]), initial=0)) for k in floats
                    ),
                )
            else:
                j = min(free, key=lambda j: abs(s_o[j] - s_t[i]))
            free.remove(j)
            for k in names:
                pairs_o[k].append(ours[k][b][j])
                pairs_t[k].append(theirs[k][b][i])
    paired_o = {**ours, **{k: np.asarray(v, dtype=ours[k].dtype) for k, v in pairs_o.items()}}
    paired_t = {**theirs, **{k: np.asarray(v, dtype=theirs[k].dtype) for k, v in pairs_t.items()}}
    return paired_o, paired_t


def _to_onnx(
    signature: tf.types.experimental.PolymorphicFunction, check: bool = True
) -> tuple[bytes, dict[str, Any] | None]:
    """The ONNX model of ``signature`` and its parity with TensorFlow on :func:`parity_images` (``check``)."""
    import numpy as np

    tf2onnx, onnxruntime = _onnx_runtime()
    # the graph with every capture made a constant: variables, and also the tensors a layer keeps
    # (EfficientNet's Normalization mean and variance), which tf2onnx's from_function leaves as inputs
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # tf2onnx calls TensorFlow's v1 graph utilities, which warn about themselves
    try:
        concrete = signature.get_concrete_function()
        frozen = convert_variables_to_constants_v2(concrete)
        # the frozen graph's outputs in tf.nest's order of the signature's dict: its sorted keys
        outputs = {name: t.name for name, t in zip(sorted(concrete.structured_outputs), frozen.outputs)}
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            input_names=[frozen.inputs[0].name],
            output_names=list(outputs.values()),
            opset=ONNX_OPSET,
        )
    except Exception as err:  # noqa: BLE001 - tf2onnx raises many kinds for an op it cannot convert
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(
            f"tf2onnx could not convert this model ({first}); export --format saved_model, or replace that op in core/"
        ) from None
    finally:
        logger.setLevel(level)
    _rename(proto.graph, {frozen.inputs[0].name: IMAGES.name, **{t: name for name, t in outputs.items()}})
    data = proto.SerializeToString()
    if not check:
        return data, None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    differences: dict[str, float] = {}
    equal: dict[str, float] = {}
    for image in parity_images():
        ours, theirs = paired_rows(
            dict(zip(names, session.run(None, {IMAGES.name: image}))),
            {k: v.numpy() for k, v in signature(tf.constant(image)).items()},
        )
        for name, value in theirs.items():
            if np.issubdtype(value.dtype, np.floating):
                diff = float(np.max(np.abs(ours[name].astype(np.float64) - value), initial=0.0))
                differences[name] = max(differences.get(name, 0.0), diff)
            else:  # class ids: equal unless two scores tie within float rounding
                share = float(np.mean(ours[name] == value)) if value.size else 1.0
                equal[name] = min(equal.get(name, 1.0), share)
    worst = {k: v for k, v in differences.items() if v > PARITY_TOLERANCE}
    if worst:
        raise ExportError(
            f"the ONNX model differs from TensorFlow by more than {PARITY_TOLERANCE} on fixed images "
            f"(largest differences: {worst}); export --format saved_model instead"
        )
    parity = {"images": PARITY_IMAGES, "max_abs_difference": differences, "equal_share": equal}
    return data, parity


def export_model(
    serve: ServingFunction,
    trained: Trained,
    fmt: str,
    out_dir: Path,
    *,
    labels: list[dict],
    about: Mapping[str, Any] | None = None,
    check_parity: bool = True,
) -> Path:
    """Export ``serve`` (a task binding's ``serving_function``) with ``trained``'s model to ``out_dir``.

    Args:
        serve: raw uint8 images ``(B, H, W, 3)`` -> named outputs; wrapped by
            :func:`~skelgen_runtime.serving.signature.as_signature`, as ``predict.py`` wraps it.
        trained: the model whose variables ``serve`` reads, and which weights they are.
        fmt: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        out_dir: the folder to write (must not exist, or be empty).
        labels: the label map (``LabelMap.to_json()``), written to ``export.json``.
        about: more for ``export.json`` (the run id, the task, the model's image size).
        check_parity: ``onnx``: run the ONNX parity check (``False`` only for models whose outputs are
            meaningless anyway, e.g. the untrained detectors the benchmarks time: every score ties).

    Returns:
        ``out_dir``.

    Raises:
        UserInputError: unknown format, or ``out_dir`` not empty.
        ExportError: TensorFlow Lite or tf2onnx cannot convert an op of the model, or the ONNX model
            differs from TensorFlow.
        MissingDependencyError: ``onnx`` without the ``onnx`` extra.
    """
    from skelgen_runtime import __version__

    check_format(fmt)
    check_export_dir(out_dir)
    signature = as_signature(serve)
    outputs = signature.get_concrete_function().structured_outputs
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".tmp-{os.getpid()}-{out_dir.name}"
    shutil.rmtree(staging, ignore_errors=True)
    parity = None
    if fmt == "onnx":
        _onnx_runtime()  # a missing extra is said before any work
    try:
        if fmt == "saved_model":
            _write_saved_model(signature, trained.model, staging)
        elif fmt == "onnx":
            onnx, parity = _to_onnx(signature, check_parity)
            staging.mkdir()
            (staging / ONNX_FILE).write_bytes(onnx)  # write: staged
        else:
            with tempfile.TemporaryDirectory(prefix="skelgen-export-") as scratch:
                _write_saved_model(signature, trained.model, Path(scratch) / "saved_model")
                tflite = _to_tflite(Path(scratch) / "saved_model")
            staging.mkdir()
            (staging / TFLITE_FILE).write_bytes(tflite)  # write: staged
        metadata = {
            "format": fmt,
            "signature": SIGNATURE_KEY,
            "input": {"name": IMAGES.name, **_spec(IMAGES)},
            "outputs": {name: _spec(t) for name, t in sorted(outputs.items())},
            "labels": labels,
            **(about or {}),
            "weights": trained.weights,
            "weights_file": str(trained.path),
            **({"onnx_opset": ONNX_OPSET, "parity": parity} if fmt == "onnx" else {}),
            "skelgen_version": __version__,
            "tensorflow_version": tf.__version__,
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))  # write: staged
        publish_dir(staging, out_dir)  # out_dir, if present, is empty (checked above)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
