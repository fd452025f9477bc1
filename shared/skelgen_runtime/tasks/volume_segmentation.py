"""Segmentation of multi-modal volumes (BraTS): loss, metrics, per-case evaluation, NIfTI predictions.

The task module that segmentation projects use when their dataset holds ``volume_segmentation``
records (:func:`skelgen_runtime.tasks.get_binding`). Models are either 2D, mapping axial slices
``(B, H, W, C)`` to logits ``(B, H, W, K)``, or 3D, mapping patches ``(B, D, H, W, C)`` to logits
``(B, D, H, W, K)``; inference follows the model's input rank:

- 2D: every axial slice, resized to the model's size (bilinear), probabilities resized back, argmax.
- 3D: nnU-Net's sliding window: windows of the model's patch at half-patch steps (the volume padded with 0
  to at least one patch), softmax probabilities weighted by a Gaussian importance map (sigma 1/8 of the
  patch), argmax.
- ``eval.tta`` (``--tta``): the mean over all mirrorings of the input (8 in 3D, 4 in 2D)
  (:mod:`skelgen_runtime.tasks.windows`).

Evaluation scores every case of the split at its own resolution, per region of the release (WT,
TC, ET; 2024 post-treatment glioma adds NETC, SNFH and RC): lesion-wise Dice and HD95, which the
BraTS 2023+ leaderboards rank by, with the parameters of a BraTS challenge (the release's, or
``eval.brats_challenge``), and the full (voxel-wise) Dice, HD95 (mm), sensitivity and specificity
(:mod:`skelgen_runtime.metrics.volume` states the definitions); their means over cases; and mean IoU
over all voxels (:mod:`skelgen_runtime.tasks.volume_scoring`, which also records the rules as
``scored_as``). The regions are the release's (``skelgen_runtime.sources.brats_releases.LABEL_SETS``)
mapped to training ids through the label map's source ids; for a dataset of another release each
foreground class is its own region, scored voxel-wise only.

Predictions are NIfTI label volumes ``CASE_ID.nii.gz`` (BraTS's submission naming) holding the
release's own label ids (the label map's source ids), written with the case's own header and affine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.tasks.previews import volume_preview as preview
from skelgen_runtime.tasks.volume_regions import output_mode, region_table
from skelgen_runtime.tasks.volume_scoring import (
    RANKED_BY,
    challenge,
    challenge_key,
    regions,
    report,
    score_predictions,
    scoring_rules,
    write_artifacts,
)
from skelgen_runtime.tasks.windows import slice_wise, sliding_window

__all__ = [
    "preview",
    "MONITOR",
    "MONITOR_MODE",
    "RANKED_BY",
    "train_metrics",
    "regions",
    "challenge",
    "scoring_rules",
    "predict_volume",
    "predict_probabilities",
    "evaluate",
    "score_predictions",
    "report",
    "write_artifacts",
    "predict_item",
    "read_inputs",
    "predict",
    "write_prediction",
    "serving_function",
]

MONITOR = "val_miou"
MONITOR_MODE = "max"


def train_metrics(config, info) -> list[keras.metrics.Metric]:
    """Mean IoU over the voxels of the batch (ignore-label voxels dropped): the library's ``miou`` metric, of
    argmax predictions, or of the labels region outputs give (``model.output: regions``)."""
    from skelgen_runtime.training.metrics import default_metrics

    return [default_metrics("segmentation").get("miou")(config, info)]


# -------------------------------------------------------------------------------------- inference


def predict_probabilities(model: keras.Model, image, config) -> np.ndarray:
    """Probabilities ``(D, H, W, K)`` for one prepared case ``image`` ``(D, H, W, C)``: Gaussian-weighted
    sliding windows (3D models) or slice by slice (2D), mirrored when ``eval.tta`` (:mod:`.windows`);
    softmax over the classes, or per region with ``model.output: regions`` (``K`` regions then)."""
    shape = tuple(model.input_shape)
    batch = config.data.eval_batch_size
    tta = bool(getattr(getattr(config, "eval", None), "tta", False))
    activation = "sigmoid" if output_mode(config) == "regions" else "softmax"
    if len(shape) == 5:
        return sliding_window(model, image, shape[1:4], batch=batch, tta=tta, activation=activation)
    return slice_wise(model, image, shape[1:3], batch=batch, tta=tta, activation=activation)


def predict_volume(model: keras.Model, image, config, info) -> np.ndarray:
    """Training ids ``(D, H, W)`` uint8 for one prepared case ``image`` ``(D, H, W, C)`` (module docstring):
    the argmax class, or with ``model.output: regions`` the nesting rule over the regions of ``info``'s release
    (:mod:`skelgen_runtime.tasks.volume_regions`)."""
    probabilities = predict_probabilities(model, image, config)
    if output_mode(config) == "regions":
        return region_table(info).to_labels(probabilities)
    return np.argmax(probabilities, axis=-1).astype(np.uint8)


# ------------------------------------------------------------------------------------- evaluation


def evaluate(model: keras.Model, batches: Iterable[dict], config, info) -> dict:
    """Score ``model`` case by case.

    Args:
        batches: prepared whole cases (``preprocessing.volume.case_dataset``): ``image`` ``(D, H, W, C)``,
            ``label`` ``(D, H, W, 1)``, ``spacing``, ``case_id``, ``release``.
        config: its ``eval.brats_challenge`` (if any) picks the lesion-wise parameters.

    Returns:
        what :func:`score_predictions` returns; with a challenge also ``postprocessing``: the removal
        of small predicted components chosen on these cases (:mod:`skelgen_runtime.metrics.postprocess`),
        ``{"plan": {REGION: mm3}, "steps": [...], "described"}``. The scores are of the raw predictions.
    """
    from skelgen_runtime.metrics.postprocess import Case, choose, describe_plan
    from skelgen_runtime.metrics.volume import bounding_box

    release = (info.data.get("source_info") or {}).get("release")
    used: dict[str, tuple[int, ...]] = {}
    scoring = None
    if release or challenge_key(config):  # a challenge that does not fit is refused before any case is predicted
        used, scoring, _ = scoring_rules(info, release or "", challenge_key(config))
    kept: list[Case] = []  # what choosing the post-processing needs: each case cropped around its tumour

    def pairs() -> Iterator[tuple[dict, np.ndarray]]:
        for case in batches:
            pred = predict_volume(model, case["image"], config, info)
            if scoring is not None:
                truth = case["label"].numpy()[..., 0]
                margin = 2 + max(scoring.dilation_of(r) for r in used)
                box = bounding_box((pred > 0) | (truth > 0), margin) or tuple(slice(0, 1) for _ in pred.shape)
                spacing = tuple(float(s) for s in case["spacing"].numpy())
                kept.append(Case(case["case_id"].numpy().decode(), pred[box], truth[box], spacing))
            yield case, pred

    result = score_predictions(pairs(), info, challenge_key=challenge_key(config))
    if scoring is not None and kept:
        plan, steps = choose(kept, used, scoring, scores=result["per_case"])  # the lesion scores as computed
        result["postprocessing"] = {"plan": plan, "steps": steps, "described": describe_plan(plan)}
    return result


# ------------------------------------------------------------------------------------- prediction


def predict_item(example: dict, info) -> dict[str, Any]:
    """A decoded record (``preprocessing.volume.raw_dataset``) -> what :func:`predict` takes, as NumPy."""
    return {
        "case_id": example["case_id"].numpy().decode(),
        "image": example["image"].numpy(),
        "modalities": example["modalities"].numpy().decode().split(","),
        "nifti_header": example["nifti_header"].numpy(),
        "affine": example["affine"].numpy(),
        "spacing": tuple(float(s) for s in example["spacing"].numpy()),
        "source_ids": info.label_map.source_ids,
    }


def read_inputs(path: Path, info, on_bad=None) -> Iterator[dict[str, Any]]:
    """Cases of a raw BraTS/MSD folder (``predict.py --input``), one at a time, as :func:`predict_item` gives them.

    Labels are not read; predictions are written in the ids of the folder's own release. An unreadable
    case raises :class:`~skelgen_runtime.errors.BadExampleError`, or goes to ``on_bad`` and is left out.
    """
    from skelgen_runtime.errors import DatasetError, read_or_skip
    from skelgen_runtime.labels import LabelMap
    from skelgen_runtime.schemas.volume import SCHEMA
    from skelgen_runtime.sources.brats import BratsSource

    if not path.is_dir():
        raise DatasetError(f"--input {path} is not a folder of BraTS cases (or one case folder)")
    source = BratsSource(path, LabelMap(info.label_map.names), val_fraction=0)
    for split in source.splits():
        for item in source.items(split):
            record = read_or_skip(lambda: source.encode(item, "pred"), on_bad)  # images only: no seg needed
            if record is None:
                continue
            example = SCHEMA.decode(tf.io.parse_single_example(record, SCHEMA.unlabelled_spec))
            yield {**predict_item(example, info), "source_ids": source.label_map.source_ids}


def write_prediction(
    path: Path, label: np.ndarray, *, nifti_header: bytes, affine: np.ndarray, source_ids: Sequence[int]
) -> Path:
    """Write training ids ``(D, H, W)`` as a NIfTI volume of source ids with the case's header and affine."""
    from skelgen_runtime.schemas.volume import to_nifti_axes
    from skelgen_runtime.sources._nifti import write_label_nifti

    lut = np.zeros(256, np.uint8)
    ids = list(source_ids) or list(range(256))
    lut[: len(ids)] = ids
    return write_label_nifti(path, to_nifti_axes(lut[np.asarray(label, np.uint8)]), nifti_header, affine)


def predict(model: keras.Model, items: Iterable[dict], config, info, out_dir: Path) -> str:
    """Write ``CASE_ID.nii.gz`` for every case of ``items`` (:func:`predict_item`, :func:`read_inputs`)."""
    from skelgen_runtime.metrics.postprocess import apply_plan
    from skelgen_runtime.preprocessing.volume import channels, zscore

    wanted = channels(config.data, info)
    plan = getattr(getattr(config, "eval", None), "postprocess", None) or {}
    release = (info.data.get("source_info") or {}).get("release") or ""
    used = regions(info, release) if plan else {}
    unknown = sorted(set(plan) - set(used))
    if unknown:
        raise ConfigError(
            f"eval.postprocess names regions {', '.join(unknown)}; the dataset's regions are {', '.join(used)}"
        )
    n = 0
    for item in items:
        index = [item["modalities"].index(m) for m in wanted]
        image = zscore(tf.constant(item["image"][..., index])).numpy()
        label = predict_volume(model, image, config, info)
        if plan:
            label = apply_plan(label, plan, used, item["spacing"])
        write_prediction(
            out_dir / f"{item['case_id']}.nii.gz",
            label,
            nifti_header=item["nifti_header"],
            affine=item["affine"],
            source_ids=item["source_ids"],
        )
        n += 1
    done = f"wrote {n} NIfTI label volumes (release label ids)"
    if plan:
        from skelgen_runtime.metrics.postprocess import describe_plan

        done += f"; post-processed: {describe_plan(plan)}"
    return done


def serving_function(model: keras.Model, config, info):
    """Not available: ``export.py`` exports models of 2-D images only.

    A volume model needs whole multi-modal cases, z-scored over the brain, and slice-wise or
    sliding-window inference; none of that fits an images-in signature.

    Raises:
        UserInputError: always, saying what to use instead.
    """
    from skelgen_runtime.errors import UserInputError

    raise UserInputError(
        "this run was trained on volumes (volume_segmentation records, e.g. BraTS) and "
        "export.py exports models of 2-D images only; predict volumes with "
        "python predict.py --run RUN --input CASE_FOLDER --output DIR"
    )
