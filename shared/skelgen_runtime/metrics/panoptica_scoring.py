"""BraTS 2025 case scores, computed by panoptica as the organisers do. NumPy; panoptica imported on use.

The organisers score the 2025 editions with panoptica (``BrainLesion/panoptica``, Apache-2.0), configured
by their ``brats-evaluation`` package; :mod:`skelgen_runtime.metrics.brats_challenges` restates those
configurations (:data:`~skelgen_runtime.metrics.brats_challenges.PANOPTICA_2025` and each challenge's
``groups``) and this module builds panoptica's ``Panoptica_Evaluator`` from them, once per challenge.
panoptica is the optional extra ``skelgen-tf[brats]``: :func:`require` says how to install it.

Per region, :func:`score_case` gives (panoptica's result key in brackets):

- ``lesion_dice``, ``lesion_nsd``, ``lesion_hd95``: the mean over matched lesion pairs (``sq_dsc``,
  ``sq_nsd``, ``sq_hd95``); no match: 0, 0 and infinity; no lesion on either side: NaN;
- ``tp``, ``fp``, ``fn``: matched, unmatched predicted and unmatched reference lesions;
- ``dice``, ``nsd``, ``hd95``: of the whole region (``global_bin_*``); an infinite HD95 (one side empty) is
  reported as 373 mm, as the organisers' ``metrics_parser.py`` does.

The volume is cropped to the bounding box of every region's voxels on either side, one voxel wider
(clipped at the volume's border), which changes none of these numbers: components, overlaps and
surface distances depend on the foreground and its border only.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.metrics.brats_challenges import PANOPTICA_2025, Challenge
from skelgen_runtime.metrics.overlap import bounding_box

__all__ = ["METRICS", "CITATION", "INSTALL", "require", "score_case"]

#: what :func:`score_case` gives for every region, in report order
METRICS = ("lesion_dice", "lesion_nsd", "lesion_hd95", "tp", "fp", "fn", "dice", "nsd", "hd95")
_KEYS = {
    "lesion_dice": "sq_dsc",
    "lesion_nsd": "sq_nsd",
    "lesion_hd95": "sq_hd95",
    "tp": "tp",
    "fp": "fp",
    "fn": "fn",
    "dice": "global_bin_dsc",
    "nsd": "global_bin_nsd",
    "hd95": "global_bin_hd95",
}
#: how panoptica's authors ask to be cited (printed by the report instead of panoptica's own banner)
CITATION = "https://github.com/BrainLesion/panoptica#citation"
INSTALL = "pip install 'skelgen-tf[brats]'"


def require(challenge: Challenge) -> str:
    """panoptica's version, for the record.

    Raises:
        ConfigError: panoptica is not installed; one line naming the challenge and the pip command.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        import panoptica  # noqa: F401

        return version("panoptica")
    except (ImportError, PackageNotFoundError):
        raise ConfigError(
            f"eval.brats_challenge: {challenge.key} ({challenge.title}) is scored by panoptica, which is not "
            f"installed: {INSTALL}"
        ) from None


@functools.lru_cache(maxsize=8)
def _evaluator(groups: tuple[tuple[str, tuple[int, ...]], ...]) -> Any:
    """panoptica's evaluator for ``groups`` (region, label ids), configured as :data:`PANOPTICA_2025`."""
    from panoptica import (
        ConnectedComponentsInstanceApproximator,
        InputType,
        MaxBipartiteMatching,
        Metric,
        Panoptica_Evaluator,
    )
    from panoptica.utils import EdgeCaseHandler, EdgeCaseResult, LabelGroup, LabelMergeGroup, SegmentationClassGroups
    from panoptica.utils.citation_reminder import disable_citation_reminder
    from panoptica.utils.edge_case_handling import MetricZeroTPEdgeCaseHandling

    disable_citation_reminder()  # the report cites panoptica once, outside the progress bar
    rules = PANOPTICA_2025

    def zero_tp(value: str) -> Any:
        result = EdgeCaseResult[value]
        return MetricZeroTPEdgeCaseHandling(
            empty_prediction_result=result,
            empty_reference_result=result,
            no_instances_result=EdgeCaseResult.NAN,
            normal=result,
        )

    # the organisers' configs: LabelGroup for one label, LabelMergeGroup for a merged region
    made = {
        name.lower(): (LabelGroup(list(ids)) if len(ids) == 1 else LabelMergeGroup(list(ids))) for name, ids in groups
    }
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a notice: TC and WT share labels, by design
        classes = SegmentationClassGroups(made)
    metrics = [Metric[m] for m in rules.metrics]
    return Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(),
        instance_matcher=MaxBipartiteMatching(matching_metric=Metric.DSC, matching_threshold=rules.matching_threshold),
        edge_case_handler=EdgeCaseHandler(
            listmetric_zeroTP_handling={Metric[m]: zero_tp(v) for m, v in rules.zero_tp.items()},
            empty_list_std=EdgeCaseResult.NAN,
        ),
        segmentation_class_groups=classes,
        instance_metrics=metrics,
        global_metrics=metrics,
        decision_metric=None,
        decision_threshold=None,
    )


def score_case(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    regions: Mapping[str, Sequence[int]],
    challenge: Challenge,
) -> dict[str, dict[str, float]]:
    """Every 2025 metric (:data:`METRICS`) of each region of one case, by panoptica.

    Args:
        pred, truth: ``(D, H, W)`` integer label volumes (same ids).
        spacing: mm per voxel along D, H, W.
        regions: region name -> label ids; a region with no ids (a label the release does not have,
            e.g. RC in a 2023 release) is empty on both sides: NaN, as the organisers' scorer gives a
            case without that label.
        challenge: a 2025 edition (``challenge.groups``).
    """
    require(challenge)
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    ids = sorted({int(i) for r in regions.values() for i in r})
    box = bounding_box(np.isin(pred, ids) | np.isin(truth, ids), 1) or tuple(slice(0, 1) for _ in pred.shape)
    absent = int(max(pred.max(initial=0), truth.max(initial=0))) + 1  # a label neither side holds
    groups = tuple((name, tuple(int(i) for i in r) or (absent,)) for name, r in regions.items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # panoptica's note on NSD's default tolerance
        results = _evaluator(groups).evaluate(
            pred[box].astype(np.int32),
            truth[box].astype(np.int32),
            voxelspacing=tuple(float(s) for s in spacing),
            verbose=False,
            log_times=False,
        )
    out = {}
    for name in regions:
        found = results[name.lower()].to_dict(True)
        scores = {m: float(found[key]) for m, key in _KEYS.items()}
        for count in ("tp", "fp", "fn"):
            scores[count] = int(scores[count])
        if math.isinf(scores["hd95"]):
            scores["hd95"] = PANOPTICA_2025.global_hd95_inf
        out[name] = scores
    return out
