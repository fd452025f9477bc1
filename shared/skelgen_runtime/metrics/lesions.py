"""Lesion-wise Dice and HD95 of one region, as the BraTS 2023+ challenges define them. NumPy + SciPy.

Arrays are ``(D, H, W)``; ``spacing`` is mm per voxel along D, H, W. The definition, read from the
organisers' code (:mod:`skelgen_runtime.metrics.brats_challenges` names the commits and files):

1. **Ground-truth lesions** (:func:`lesion_groups`): the 26-connected components of the region's
   mask, grouped into one lesion when they fall into one 26-connected component of the mask dilated
   ``dilation`` times with the 18-neighbour structure (``ndimage.generate_binary_structure(3, 2)``).
2. **Predicted lesions**: the 26-connected components of the prediction (2023); or (2024) groups
   formed like the ground truth's, those of at most ``threshold`` voxels removed
   (:func:`predicted_lesions`). 2024 also merges lesions of one tissue that touch the same lesion of
   a partner tissue (:func:`merge_touching`), in the prediction and in the ground truth.
3. **Matching**: a predicted lesion matches a ground-truth lesion when any of its voxels lies in
   that lesion dilated ``dilation`` times (18-neighbour structure). A predicted lesion may match
   several ground-truth lesions; every one it matches counts it.
4. **Per ground-truth lesion**: Dice and HD95 between the lesion and the union of all predicted
   lesions matching it (whole components, also their parts outside the lesion). Unmatched (a false
   negative): Dice 0, HD95 ``penalty``.
5. **Volume threshold**: ground-truth lesions of at most ``threshold`` mm^3 are left out; predicted
   lesions matching them are not false positives either.
6. **Case score**: with ``L`` kept lesions and ``FP`` predicted lesions matching none,
   Dice = ``sum(Dice_i) / (L + FP)`` and HD95 = ``(sum(HD95_i) + FP * penalty) / (L + FP)``; when
   ``L + FP == 0`` (nothing to score) Dice 1 and HD95 0.

HD95 is the challenge's: the 2023 and 2024 scripts use DeepMind's ``surface-distance`` algorithm
(:func:`skelgen_runtime.metrics.surfels.hd95`, surfels weighted by area), which :func:`lesion_wise`
takes as its ``distance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from skelgen_runtime.metrics.overlap import bounding_box, dice, hd95

__all__ = [
    "Lesion",
    "LesionScores",
    "STRUCTURE_18",
    "STRUCTURE_26",
    "components",
    "lesion_groups",
    "predicted_lesions",
    "touching_pairs",
    "merge_touching",
    "lesion_wise",
]

#: the dilation structure of the organisers' code: the 18 face and edge neighbours (and the centre)
STRUCTURE_18 = np.array([[[abs(i) + abs(j) + abs(k) <= 2 for k in (-1, 0, 1)] for j in (-1, 0, 1)] for i in (-1, 0, 1)])
#: full 3x3x3 connectivity: 26-connected components
STRUCTURE_26 = np.ones((3, 3, 3), bool)


@dataclass(frozen=True)
class Lesion:
    """One ground-truth lesion.

    Attributes:
        volume: mm^3.
        kept: whether its volume is above the threshold (only kept lesions are scored).
        matched: how many predicted lesions match it (0: a false negative).
        dice, hd95: against the union of the matching predicted lesions (0 and the penalty when none).
    """

    volume: float
    kept: bool
    matched: int
    dice: float
    hd95: float


@dataclass(frozen=True)
class LesionScores:
    """Lesion-wise scores of one region of one case.

    Attributes:
        dice, hd95: the case scores (module docstring, step 6).
        tp: kept ground-truth lesions with a match; fn: kept ones without; fp: unmatched predicted lesions.
        lesions: every ground-truth lesion, kept or not, in label order.
    """

    dice: float
    hd95: float
    tp: int
    fp: int
    fn: int
    lesions: tuple[Lesion, ...]


def components(mask: np.ndarray) -> np.ndarray:
    """26-connected components of a boolean ``(D, H, W)`` mask: int32 ids 1..n, 0 outside."""
    from scipy import ndimage

    return ndimage.label(np.asarray(mask, bool), structure=STRUCTURE_26)[0].astype(np.int32, copy=False)


def lesion_groups(mask: np.ndarray, dilation: int) -> np.ndarray:
    """Components of ``mask`` grouped by dilation (module docstring, step 1): int32 ids 1..n, 0 outside.

    Every voxel of the mask gets the id of the 26-connected component of the dilated mask it lies
    in, so components closer than the dilation share an id.
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    dilated = ndimage.binary_dilation(mask, structure=STRUCTURE_18, iterations=dilation)
    labels = ndimage.label(dilated, structure=STRUCTURE_26)[0]
    return np.where(mask, labels, 0).astype(np.int32, copy=False)


def predicted_lesions(mask: np.ndarray, *, grouped: bool, dilation: int, threshold: float) -> np.ndarray:
    """Predicted lesions of one region: int32 ids (not necessarily consecutive), 0 outside.

    Args:
        mask: ``(D, H, W)`` boolean prediction of the region.
        grouped: False: 26-connected components (2023). True: :func:`lesion_groups`, then groups of
            at most ``threshold`` voxels removed (2024).
        dilation: iterations of the grouping dilation (used when ``grouped``).
        threshold: the largest group removed, in voxels (used when ``grouped``).
    """
    if not grouped:
        return components(mask)
    groups = lesion_groups(mask, dilation)
    small = np.bincount(groups.ravel()) <= threshold
    small[0] = False
    return np.where(small[groups], 0, groups).astype(np.int32, copy=False)


def _offsets() -> np.ndarray:
    return np.argwhere(STRUCTURE_18) - 1


def touching_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(k, 2)`` unique pairs ``(id in a, id in b)`` of lesions with a voxel of one equal to or an
    18-neighbour of a voxel of the other (``a``, ``b``: ``(D, H, W)`` label volumes, 0 = none)."""

    box = bounding_box(a > 0, margin=1)  # a voxel of b touching a lies within one voxel of a's box
    if box is None:
        return np.zeros((0, 2), np.int64)
    a, b = a[box], b[box]
    shape, base = a.shape, int(b.max()) + 1
    found = []
    for offset in _offsets():
        at = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, shape))
        moved = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, shape))
        x, y = a[at], b[moved]
        both = (x > 0) & (y > 0)
        if both.any():
            found.append(np.unique(x[both].astype(np.int64) * base + y[both]))  # one number per pair: a fast unique
    if not found:
        return np.zeros((0, 2), np.int64)
    keys = np.unique(np.concatenate(found))
    return np.stack([keys // base, keys % base], axis=1)


def merge_touching(labels: np.ndarray, partners: Sequence[np.ndarray]) -> np.ndarray:
    """Merge lesions of ``labels`` that touch the same lesion of a partner, one partner after the other.

    For each partner in turn, every lesion of ``labels`` touching partner lesions
    (:func:`touching_pairs`) takes the id of the *smallest* partner id it touches, so lesions whose
    smallest touched partner lesion is the same become one; lesions touching none keep their id.
    This is the rule of ``relabel_nifti_image`` applied by ``combine_lesions_*`` in BraTS 2024's
    ``metrics_GLI.py`` (source in :mod:`skelgen_runtime.metrics.brats_challenges`).

    Args:
        labels: ``(D, H, W)`` lesion ids of one tissue.
        partners: lesion ids of the partner tissues, same shape, each as grouped before merging.

    Returns:
        ``(D, H, W)`` int64 lesion ids (not consecutive).
    """
    out = np.asarray(labels, np.int64)
    for partner in partners:
        pairs = touching_pairs(out, partner)
        if not len(pairs):
            continue
        top = int(out.max())
        smallest = np.full(top + 1, np.iinfo(np.int64).max)
        np.minimum.at(smallest, pairs[:, 0], pairs[:, 1])
        lut = np.arange(top + 1)
        touched = smallest < np.iinfo(np.int64).max
        lut[touched] = top + smallest[touched]  # new ids above every old one: no collisions
        out = lut[out]
    return out


def _grow(box: tuple[slice, ...], margin: int, shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, shape))


def _union(a: tuple[slice, ...], b: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def lesion_wise(
    pred_lesions: np.ndarray,
    truth_lesions: np.ndarray,
    spacing: Sequence[float],
    *,
    dilation: int,
    threshold: float,
    penalty: float,
    distance: Callable[..., float] = hd95,
) -> LesionScores:
    """Lesion-wise Dice and HD95 of one region (module docstring, steps 3-6).

    Args:
        pred_lesions: ``(D, H, W)`` predicted lesion ids (:func:`predicted_lesions`), 0 = none.
        truth_lesions: ``(D, H, W)`` ground-truth lesion ids (:func:`lesion_groups`), 0 = none.
        spacing: mm per voxel along D, H, W.
        dilation: iterations of the 18-neighbour dilation of a ground-truth lesion for matching.
        threshold: ground-truth lesions of at most this many mm^3 are not scored.
        penalty: HD95 (mm) of a missed or a false-positive lesion.
        distance: the HD95 of two non-empty masks, ``distance(pred, truth, spacing)``
            (:func:`skelgen_runtime.metrics.surfels.hd95` for the BraTS 2023/2024 challenges).
    """
    from scipy import ndimage

    voxel = float(np.prod(spacing))
    shape = truth_lesions.shape
    pred_boxes = ndimage.find_objects(pred_lesions)
    matched_ids: set[int] = set()
    lesions = []
    for gid, box in enumerate(ndimage.find_objects(truth_lesions), start=1):
        if box is None:
            continue
        zone_box = _grow(box, dilation, shape)
        lesion = truth_lesions[zone_box] == gid
        zone = ndimage.binary_dilation(lesion, structure=STRUCTURE_18, iterations=dilation)
        hits = np.unique(pred_lesions[zone_box][zone])
        hits = hits[hits > 0]
        matched_ids.update(int(h) for h in hits)
        volume = int(lesion.sum()) * voxel
        if hits.size:
            both = box
            for h in hits:
                both = _union(both, pred_boxes[h - 1])
            p, t = np.isin(pred_lesions[both], hits), truth_lesions[both] == gid
            score, far = dice(p, t), distance(p, t, spacing)
        else:
            score, far = 0.0, float(penalty)
        lesions.append(Lesion(volume, volume > threshold, int(hits.size), score, far))
    predicted = {i for i, box in enumerate(pred_boxes, start=1) if box is not None}
    fp = len(predicted - matched_ids)
    kept = [x for x in lesions if x.kept]
    tp = sum(1 for x in kept if x.matched)
    n = len(kept) + fp
    if n == 0:
        case_dice, case_hd95 = 1.0, 0.0
    else:
        case_dice = sum(x.dice for x in kept) / n
        case_hd95 = (sum(x.hd95 for x in kept) + fp * penalty) / n
    return LesionScores(case_dice, case_hd95, tp, fp, len(kept) - tp, tuple(lesions))
