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
over all voxels. The regions are the release's (``skelgen_runtime.sources.brats_releases.LABEL_SETS``)
mapped to training ids through the label map's source ids; for a dataset of another release each
foreground class is its own region, scored voxel-wise only.

Predictions are NIfTI label volumes ``CASE_ID.nii.gz`` (BraTS's submission naming) holding the
release's own label ids (the label map's source ids), written with the case's own header and affine.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from skelgen_runtime.files import atomic_write_text
from skelgen_runtime.metrics.brats_challenges import HD95_DEFINITIONS, VOXEL_SURFACE, Challenge, get_challenge
from skelgen_runtime.metrics.segmentation import ConfusionMatrix, scores_from_confusion
from skelgen_runtime.metrics.volume import LESION_METRICS, VOXEL_METRICS, mean_scores, score_case
from skelgen_runtime.tasks.previews import volume_preview as preview
from skelgen_runtime.tasks.windows import slice_wise, sliding_window

__all__ = [
    "preview",
    "MONITOR",
    "MONITOR_MODE",
    "RANKED_BY",
    "train_metrics",
    "regions",
    "challenge",
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
#: the metrics the BraTS 2023+ leaderboards rank by, per region
RANKED_BY = ("lesion_dice", "lesion_hd95")


def train_metrics(config, info) -> list[keras.metrics.Metric]:
    """Mean IoU of argmax predictions over the voxels of the batch (ignore-label voxels dropped)."""
    return [keras.metrics.MeanIoU(num_classes=info.num_classes, sparse_y_pred=False, name="miou")]


def regions(info, release: str) -> dict[str, tuple[int, ...]]:
    """Evaluation regions in training ids: the release's (WT, TC, ET, ...), else one region per foreground class."""
    from skelgen_runtime.sources.brats_releases import regions_for

    label_map = info.label_map
    source_ids = label_map.source_ids or tuple(range(label_map.num_classes))
    by_source = regions_for(release)
    if by_source is None:
        return {name: (i,) for i, name in enumerate(label_map.names) if i > 0}
    return {name: tuple(i for i, s in enumerate(source_ids) if s in ids) for name, ids in by_source.items()}


def challenge(release: str, key: str | None = None) -> Challenge | None:
    """The BraTS challenge that scores a recorded ``release`` lesion-wise: ``key`` if given (the config's
    ``eval.brats_challenge``), else the release's own; None for a dataset of no BraTS release.

    Raises:
        ConfigError: ``key`` names no challenge.
    """
    from skelgen_runtime.sources.brats_releases import challenge_for

    key = key or challenge_for(release)
    return get_challenge(key) if key else None


def _challenge_key(config) -> str | None:
    """``eval.brats_challenge`` of a config (None where its schema has no such key)."""
    return getattr(getattr(config, "eval", None), "brats_challenge", None)


# -------------------------------------------------------------------------------------- inference


def predict_probabilities(model: keras.Model, image, config) -> np.ndarray:
    """Softmax probabilities ``(D, H, W, K)`` for one prepared case ``image`` ``(D, H, W, C)``: Gaussian-weighted
    sliding windows (3D models) or slice by slice (2D), mirrored when ``eval.tta`` (:mod:`.windows`)."""
    shape = tuple(model.input_shape)
    batch = config.data.eval_batch_size
    tta = bool(getattr(getattr(config, "eval", None), "tta", False))
    if len(shape) == 5:
        return sliding_window(model, image, shape[1:4], batch=batch, tta=tta)
    return slice_wise(model, image, shape[1:3], batch=batch, tta=tta)


def predict_volume(model: keras.Model, image, config) -> np.ndarray:
    """Training ids ``(D, H, W)`` uint8 for one prepared case ``image`` ``(D, H, W, C)`` (module docstring)."""
    return np.argmax(predict_probabilities(model, image, config), axis=-1).astype(np.uint8)


# ------------------------------------------------------------------------------------- evaluation


def evaluate(model: keras.Model, batches: Iterable[dict], config, info) -> dict:
    """Score ``model`` case by case.

    Args:
        batches: prepared whole cases (``preprocessing.volume.case_dataset``): ``image`` ``(D, H, W, C)``,
            ``label`` ``(D, H, W, 1)``, ``spacing``, ``case_id``, ``release``.
        config: its ``eval.brats_challenge`` (if any) picks the lesion-wise parameters.

    Returns:
        what :func:`score_predictions` returns.
    """
    pairs = ((case, predict_volume(model, case["image"], config)) for case in batches)
    return score_predictions(pairs, info, challenge_key=_challenge_key(config))


def score_predictions(pairs: Iterable[tuple[dict, np.ndarray]], info, *, challenge_key: str | None = None) -> dict:
    """Score ``(case, prediction)`` pairs: a prepared case as :func:`evaluate` gets it and training ids ``(D, H, W)``.

    Args:
        challenge_key: the BraTS challenge whose lesion-wise parameters to use; None: the release's.

    Returns:
        ``per_case`` (``[{case_id, REGION: {metric: value}}]``, metrics as
        :func:`skelgen_runtime.metrics.volume.score_case` gives them), ``mean`` (``{REGION: {metric: mean}}``),
        ``mean_dice`` (full Dice over regions), ``mean_lesion_dice`` and ``mean_lesion_hd95`` (over
        regions; None without a challenge), ``miou`` (over all voxels), ``regions`` (training ids),
        ``challenge`` (its parameters and source, or None), ``ranked_by`` and ``hd95_definition``.
    """
    confusion = ConfusionMatrix(info.num_classes)
    per_case, used, scoring = [], None, None
    for case, pred in pairs:
        truth = case["label"].numpy()[..., 0]
        if used is None:
            release = case["release"].numpy().decode()
            used, scoring = regions(info, release), challenge(release, challenge_key)
        scores = score_case(pred, truth, case["spacing"].numpy().tolist(), used, scoring)
        per_case.append({"case_id": case["case_id"].numpy().decode(), **scores})
        confusion.update(truth, pred)
    means = mean_scores([{r: c[r] for r in used or {}} for c in per_case]) if per_case else {}

    def over_regions(metric: str) -> float | None:
        return (
            float(np.mean([m[metric] for m in means.values()]))
            if means and metric in next(iter(means.values()))
            else None
        )

    return {
        "per_case": per_case,
        "mean": means,
        "mean_dice": over_regions("dice"),
        "mean_lesion_dice": over_regions("lesion_dice"),
        "mean_lesion_hd95": over_regions("lesion_hd95"),
        "miou": scores_from_confusion(confusion.matrix).miou,
        "regions": {k: list(v) for k, v in (used or {}).items()},
        "challenge": scoring.describe(list(used or {})) if scoring else None,
        "ranked_by": list(RANKED_BY) if scoring else ["dice", "hd95"],
        "hd95_definition": HD95_DEFINITIONS[scoring.hd95 if scoring else VOXEL_SURFACE],
    }


#: cases listed one by one in the printed report (all of them are in the CSV)
_SHOWN_CASES = 20
_HEADINGS = {
    "lesion_dice": "lesion Dice",
    "lesion_hd95": "lesion HD95",
    "dice": "Dice",
    "hd95": "HD95",
    "sensitivity": "sens",
    "specificity": "spec",
    "tp": "TP",
    "fp": "FP",
    "fn": "FN",
}
#: the per-case table's narrower headings
_SHORT = {"lesion_dice": "L-Dice", "lesion_hd95": "L-HD95", "dice": "Dice", "hd95": "HD95"}


def _per_region(values: dict) -> str:
    """``{"WT": 3, "NETC": 5, "ET": 3}`` -> ``"3 (NETC 5)"``: the most common value, then the others."""
    common = max(set(values.values()), key=list(values.values()).count)
    others = ", ".join(f"{r} {v:g}" for r, v in values.items() if v != common)
    return f"{common:g}" + (f" ({others})" if others else "")


def _metrics(result: dict) -> list[str]:
    """The metrics each region has, in report order."""
    return (
        list(LESION_METRICS[:2] + VOXEL_METRICS + LESION_METRICS[2:])
        if result.get("challenge")
        else list(VOXEL_METRICS)
    )


def report(result: dict, info) -> str:
    """The ranking metrics of every region per case (the first 20), a table of every metric's mean per
    region, and the headline line."""
    names, ranked = list(result["regions"]), result.get("ranked_by", ["dice", "hd95"])
    width = max([4, *(len(c["case_id"]) for c in result["per_case"][:_SHOWN_CASES])])
    first, second = (_SHORT[m] for m in ranked)
    widths = {r: len(f"{r} {first}") for r in names}
    heads = "  ".join(f"{r + ' ' + first:>{widths[r]}} {second:>7}" for r in names)
    cells = lambda s: "  ".join(f"{s[r][ranked[0]]:>{widths[r]}.3f} {s[r][ranked[1]]:>7.2f}" for r in names)  # noqa: E731
    lines = [f"{'case':<{width}}  {heads}"]
    lines += [f"{c['case_id']:<{width}}  {cells(c)}" for c in result["per_case"][:_SHOWN_CASES]]
    if len(result["per_case"]) > _SHOWN_CASES:
        lines.append(f"... {len(result['per_case']) - _SHOWN_CASES} more cases in the per-case CSV")
    if result["mean"]:
        metrics = _metrics(result)
        lines.append(f"mean over {len(result['per_case'])} cases:")
        lines.append(f"{'region':<6}  " + "  ".join(f"{_HEADINGS[m]:>11}" for m in metrics))
        lines += [f"{r:<6}  " + "  ".join(f"{result['mean'][r][m]:>11.4f}" for m in metrics) for r in names]
    scoring = result.get("challenge")
    if scoring:
        lines.append(
            f"L- = lesion-wise, as {scoring['title']}: dilation {_per_region(scoring['dilation'])}, lesions "
            f"of at most {_per_region(scoring['threshold'])} mm^3 left out, penalty {scoring['penalty']:g} mm "
            f"({scoring['source']})"
        )
    lines.append(f"ranked by {' and '.join(_HEADINGS[m] for m in ranked)}; HD95 in mm = {result['hd95_definition']}")
    headline = (
        f"mean_dice={result['mean_dice']:.4f} miou={result['miou']:.4f}"
        if result["mean_dice"] is not None
        else f"miou={result['miou']:.4f}"
    )
    if result.get("mean_lesion_dice") is not None:
        headline = (
            f"mean_lesion_dice={result['mean_lesion_dice']:.4f} mean_lesion_hd95={result['mean_lesion_hd95']:.2f} "
            + headline
        )
    lines.append(headline)
    return "\n".join(lines)


def write_artifacts(result: dict, info, out_dir: Path, split: str) -> list[Path]:
    """``eval_SPLIT_cases.csv``: one row per case (``case_id``, then ``REGION_METRIC`` for every region
    and metric, e.g. ``WT_lesion_dice``), then the ``mean`` row."""
    path = out_dir / f"eval_{split}_cases.csv"
    names, metrics = list(result["regions"]), _metrics(result)
    header = ["case_id", *(f"{r}_{m}" for r in names for m in metrics)]
    rows = [[c["case_id"], *(c[r][m] for r in names for m in metrics)] for c in result["per_case"]]
    if result["mean"]:
        rows.append(["mean", *(result["mean"][r][m] for r in names for m in metrics)])
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([r[0], *(v if isinstance(v, int) else f"{v:.6f}" for v in r[1:])] for r in rows)
    atomic_write_text(path, text.getvalue())
    return [path]


# ------------------------------------------------------------------------------------- prediction


def predict_item(example: dict, info) -> dict[str, Any]:
    """A decoded record (``preprocessing.volume.raw_dataset``) -> what :func:`predict` takes, as NumPy."""
    return {
        "case_id": example["case_id"].numpy().decode(),
        "image": example["image"].numpy(),
        "modalities": example["modalities"].numpy().decode().split(","),
        "nifti_header": example["nifti_header"].numpy(),
        "affine": example["affine"].numpy(),
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
    from skelgen_runtime.preprocessing.volume import channels, zscore

    wanted = channels(config.data, info)
    n = 0
    for item in items:
        index = [item["modalities"].index(m) for m in wanted]
        image = zscore(tf.constant(item["image"][..., index])).numpy()
        label = predict_volume(model, image, config)
        write_prediction(
            out_dir / f"{item['case_id']}.nii.gz",
            label,
            nifti_header=item["nifti_header"],
            affine=item["affine"],
            source_ids=item["source_ids"],
        )
        n += 1
    return f"wrote {n} NIfTI label volumes (release label ids)"


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
