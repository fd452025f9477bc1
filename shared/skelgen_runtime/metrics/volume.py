"""Dice, HD95, sensitivity and specificity of 3D region masks, and BraTS case scores. NumPy + SciPy.

Definitions (arrays are ``(D, H, W)``; ``spacing`` is mm per voxel along D, H, W):

- **Dice**, **surfaces**, **HD95** and the **empty-mask** conventions: :mod:`skelgen_runtime.metrics.overlap`
  (HD95 of one empty mask is the volume diagonal, or a BraTS challenge's penalty when one scores the case).
  A BraTS challenge brings its own HD95 definition (``Challenge.hd95``): for 2023 and 2024 that of
  the organisers' scorers, :mod:`skelgen_runtime.metrics.surfels`; without a challenge, overlap's.
- **Sensitivity** = ``|P & G| / |G|`` (1 when both are empty, 0 when only G is), **specificity** =
  ``|~P & ~G| / |~G|`` over every voxel of the volume: GaNDLF's definitions, which the BraTS
  organisers' scripts use.
- **Lesion-wise Dice and HD95**, the BraTS 2023+ ranking metrics: :mod:`skelgen_runtime.metrics.lesions`
  defines them; :func:`score_case` computes them per region with a challenge's parameters
  (:mod:`skelgen_runtime.metrics.brats_challenges`).

Regions are sets of label ids (``{"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}`` in training ids for
BraTS): a voxel belongs to the region when its label is one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from skelgen_runtime.metrics.brats_challenges import SURFACE_DISTANCE, VOXEL_SURFACE
from skelgen_runtime.metrics.lesions import lesion_groups, lesion_wise, merge_touching, predicted_lesions
from skelgen_runtime.metrics.overlap import bounding_box, dice, hd95, surface, volume_diagonal

if TYPE_CHECKING:
    from skelgen_runtime.metrics.brats_challenges import Challenge

__all__ = [
    "dice",
    "hd95",
    "surface",
    "volume_diagonal",
    "bounding_box",
    "sensitivity_specificity",
    "hd95_function",
    "score_case",
    "mean_scores",
    "LESION_METRICS",
    "VOXEL_METRICS",
]

#: what :func:`score_case` gives for every region
VOXEL_METRICS = ("dice", "hd95", "sensitivity", "specificity")
#: what it adds when a BraTS challenge scores the case (the first two rank the leaderboards)
LESION_METRICS = ("lesion_dice", "lesion_hd95", "tp", "fp", "fn")


def hd95_function(definition: str = VOXEL_SURFACE) -> Callable[..., float]:
    """The HD95 of a definition (``brats_challenges.HD95_DEFINITIONS``): ``f(pred, truth, spacing, *, one_empty)``."""
    if definition == SURFACE_DISTANCE:
        from skelgen_runtime.metrics import surfels

        return surfels.hd95
    if definition == VOXEL_SURFACE:
        return hd95
    raise ValueError(f"unknown HD95 definition {definition!r}")


def sensitivity_specificity(pred: np.ndarray, truth: np.ndarray, *, outside: int = 0) -> tuple[float, float]:
    """Sensitivity and specificity of two boolean masks (module docstring).

    Args:
        outside: voxels of the volume left out of the arrays (a crop), all background in both.
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    n_pred, n_truth = int(pred.sum()), int(truth.sum())
    tp = int(np.logical_and(pred, truth).sum())
    tn = pred.size + outside - n_pred - n_truth + tp
    fp = n_pred - tp
    if n_truth:
        sensitivity = tp / n_truth
    else:
        sensitivity = 1.0 if n_pred == 0 else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    return float(sensitivity), float(specificity)


def score_case(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    regions: Mapping[str, Sequence[int]],
    challenge: Challenge | None = None,
) -> dict[str, dict[str, float]]:
    """Every metric of each region of one case.

    Args:
        pred, truth: ``(D, H, W)`` integer label volumes (same ids).
        spacing: mm per voxel along D, H, W.
        regions: region name -> label ids.
        challenge: a BraTS challenge's lesion-wise parameters; None for voxel-wise metrics only.

    Returns:
        ``{region: {metric: value}}`` with :data:`VOXEL_METRICS` (HD95 in mm), and with a challenge
        also :data:`LESION_METRICS`. With a challenge, HD95 (full and lesion-wise) is the challenge's
        definition and the full HD95 of exactly one empty mask is the challenge's penalty, and a 2024 challenge scores the prediction without the small groups it
        removes (:mod:`skelgen_runtime.metrics.lesions`), as the organisers do. A 2025 edition
        (``challenge.groups``) gives panoptica's metrics instead
        (:data:`skelgen_runtime.metrics.panoptica_scoring.METRICS`).
    """
    if challenge is not None and challenge.groups:  # a 2025 edition: panoptica's metrics instead
        from skelgen_runtime.metrics import panoptica_scoring

        return panoptica_scoring.score_case(pred, truth, spacing, regions, challenge)
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    ids = sorted({int(i) for r in regions.values() for i in r})
    margin = 1 + max((challenge.dilation_of(r) for r in regions), default=0) if challenge else 1
    box = bounding_box(np.isin(pred, ids) | np.isin(truth, ids), margin) or tuple(slice(0, 1) for _ in pred.shape)
    pred, shape, size = pred[box], truth.shape, truth.size
    truth = truth[box]
    outside = size - truth.size
    masks = {name: (np.isin(pred, r), np.isin(truth, r)) for name, r in regions.items()}
    one_empty = challenge.penalty if challenge else volume_diagonal(shape, spacing)
    distance = hd95_function(challenge.hd95 if challenge else VOXEL_SURFACE)
    lesions, used = _lesion_scores(masks, spacing, challenge) if challenge else ({}, {})
    out = {}
    for name, (p, t) in masks.items():
        p = used.get(name, p)
        sensitivity, specificity = sensitivity_specificity(p, t, outside=outside)
        out[name] = {
            "dice": dice(p, t),
            "hd95": distance(p, t, spacing, one_empty=one_empty),
            "sensitivity": sensitivity,
            "specificity": specificity,
            **lesions.get(name, {}),
        }
    return out


def _lesion_scores(
    masks: Mapping[str, tuple[np.ndarray, np.ndarray]], spacing: Sequence[float], challenge: Challenge
) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Lesion-wise scores of every region, and the prediction masks the full metrics score (2024: without
    the removed groups)."""

    truth_lesions, pred_lesions = {}, {}
    for name, (p, t) in masks.items():
        dilation, threshold = challenge.dilation_of(name), challenge.threshold_of(name)
        truth_lesions[name] = lesion_groups(t, dilation)
        pred_lesions[name] = predicted_lesions(
            p, grouped=challenge.predicted_groups, dilation=dilation, threshold=threshold
        )
    merged_truth, merged_pred = dict(truth_lesions), dict(pred_lesions)
    for name, partners in challenge.merge_partners.items():
        present = [r for r in partners if r in masks]
        if name in masks and present:  # partners as grouped before any merging, as the organisers do
            merged_truth[name] = merge_touching(truth_lesions[name], [truth_lesions[r] for r in present])
            merged_pred[name] = merge_touching(pred_lesions[name], [pred_lesions[r] for r in present])
    out = {}
    for name in masks:
        scores = lesion_wise(
            merged_pred[name],
            merged_truth[name],
            spacing,
            dilation=challenge.dilation_of(name),
            threshold=challenge.threshold_of(name),
            penalty=challenge.penalty,
            distance=hd95_function(challenge.hd95),
        )
        out[name] = {
            "lesion_dice": scores.dice,
            "lesion_hd95": scores.hd95,
            "tp": scores.tp,
            "fp": scores.fp,
            "fn": scores.fn,
        }
    return out, {name: labels > 0 for name, labels in pred_lesions.items()}


def mean_scores(per_case: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean of every metric of each region over cases (every case counts, empty ones by the conventions;
    NaN, a 2025 edition's region with no lesion on either side, is skipped as the organisers' pandas
    ``mean`` does; NaN if every case is)."""
    if not per_case:
        return {}

    def mean(values: list[float]) -> float:
        finite_or_inf = [v for v in values if not np.isnan(v)]
        return float(np.mean(finite_or_inf)) if finite_or_inf else float("nan")

    return {
        region: {m: mean([case[region][m] for case in per_case]) for m in metrics}
        for region, metrics in per_case[0].items()
    }
