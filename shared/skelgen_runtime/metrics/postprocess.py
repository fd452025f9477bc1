"""Post-processing of volume predictions chosen on validation: small predicted components removed per region.

A BraTS challenge leaves out ground-truth lesions of at most its volume threshold (``threshold``, mm^3,
per region; :mod:`skelgen_runtime.metrics.brats_challenges`), but counts every predicted lesion matching
none as a false positive. Removing predicted components of at most that volume can therefore raise
the lesion-wise score, or lower it where real small lesions are found. nnU-Net's answer is to decide on
validation (Isensee et al., "nnU-Net", Nature Methods 18, 2021: post-processing by connected
components, kept only where it improves the validation score); this module does that:

- :func:`remove_small` sets to background (training id 0) every 26-connected component of a
  region's predicted mask whose volume is at most the threshold (voxel count times the voxel volume
  of ``spacing``).
- A **plan** is ``{REGION: threshold_mm3}``, applied in the order of the regions.
- :func:`choose` starts from no removal and tries each region in turn, with the challenge's
  threshold for it: the region is kept in the plan when the mean lesion-wise Dice over all cases
  and regions (the leaderboards' first metric) is strictly higher with it than without. Each step
  is recorded (before, after, kept).

NumPy and SciPy only; arrays are ``(D, H, W)`` training ids, ``spacing`` mm per voxel along D, H, W.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from skelgen_runtime.metrics.lesions import components
from skelgen_runtime.metrics.volume import score_case

if TYPE_CHECKING:
    from skelgen_runtime.metrics.brats_challenges import Challenge

__all__ = ["Case", "remove_small", "apply_plan", "choose", "describe_plan"]


@dataclass(frozen=True)
class Case:
    """One validation case kept for choosing: prediction and truth (training ids, cropped around both)."""

    case_id: str
    pred: np.ndarray
    truth: np.ndarray
    spacing: tuple[float, ...]


def remove_small(labels: np.ndarray, ids: Sequence[int], threshold: float, spacing: Sequence[float]) -> np.ndarray:
    """``labels`` with the region's (``ids``) components of at most ``threshold`` mm^3 set to 0.

    Returns the same array when nothing is removed, else a copy.
    """
    labels = np.asarray(labels)
    found = components(np.isin(labels, list(ids)))
    if not found.any():
        return labels
    voxels = np.bincount(found.ravel())
    small = voxels * float(np.prod(spacing)) <= threshold
    small[0] = False
    if not small.any():
        return labels
    return np.where(small[found], 0, labels).astype(labels.dtype, copy=False)


def apply_plan(
    labels: np.ndarray,
    plan: Mapping[str, float],
    regions: Mapping[str, Sequence[int]],
    spacing: Sequence[float],
) -> np.ndarray:
    """``labels`` post-processed by ``plan`` (``{REGION: threshold_mm3}``, applied in ``regions``' order).

    Raises:
        ValueError: the plan names a region ``regions`` lacks.
    """
    unknown = sorted(set(plan) - set(regions))
    if unknown:
        raise ValueError(f"post-processing names regions {', '.join(unknown)}; the dataset has {', '.join(regions)}")
    for name, ids in regions.items():
        if name in plan:
            labels = remove_small(labels, ids, float(plan[name]), spacing)
    return labels


def _mean_lesion_dice(
    scores: Sequence[Mapping[str, Mapping[str, float]]], regions: Mapping[str, Sequence[int]]
) -> float:
    return float(np.mean([case[r]["lesion_dice"] for case in scores for r in regions])) if scores else 0.0


def choose(
    cases: Sequence[Case],
    regions: Mapping[str, Sequence[int]],
    challenge: Challenge,
    scores: Sequence[Mapping[str, Mapping[str, float]]] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """The plan chosen on ``cases`` and its steps (module docstring).

    Regions are tried in order, each on the predictions as the plan so far leaves them; a case the
    step does not change keeps its scores (only changed cases are scored again).

    Args:
        scores: the cases' scores as they are (``score_case``'s, in order), if already computed.

    Returns:
        ``(plan, steps)``: ``plan`` ``{REGION: threshold_mm3}``; ``steps`` one
        ``{"region", "threshold", "before", "after", "kept"}`` per region (mean lesion-wise Dice). A 2025
        edition (``challenge.groups``, no size threshold) gives ``({}, [])``.
    """
    if challenge.groups:  # a 2025 edition leaves no lesion out by its size: no threshold to try
        return {}, []
    preds = [case.pred for case in cases]
    if scores is None:
        scores = [score_case(case.pred, case.truth, case.spacing, regions, challenge) for case in cases]
    scores = list(scores)
    current = _mean_lesion_dice(scores, regions)
    plan: dict[str, float] = {}
    steps = []
    for name, ids in regions.items():
        threshold = float(challenge.threshold_of(name))
        tried_preds, tried_scores = [], []
        for case, pred, score in zip(cases, preds, scores):
            removed = remove_small(pred, ids, threshold, case.spacing)
            tried_preds.append(removed)
            tried_scores.append(
                score if removed is pred else score_case(removed, case.truth, case.spacing, regions, challenge)
            )
        after = _mean_lesion_dice(tried_scores, regions)
        kept = after > current
        steps.append({"region": name, "threshold": threshold, "before": current, "after": after, "kept": kept})
        if kept:
            plan[name], current, preds, scores = threshold, after, tried_preds, tried_scores
    return plan, steps


def describe_plan(plan: Mapping[str, float]) -> str:
    """``"remove ET components of at most 10 mm^3, WT ... 50 mm^3"``, or ``"none"``."""
    if not plan:
        return "none"
    return "remove predicted components of at most " + ", ".join(f"{r} {t:g} mm^3" for r, t in plan.items())
