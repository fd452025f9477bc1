"""Scoring of volume segmentations (BraTS): the rules per release, per-case scores, the report and the CSV.

NumPy and SciPy only (no TensorFlow): :mod:`skelgen_runtime.tasks.volume_segmentation` predicts, this
module scores. The rules: the release's regions (WT, TC, ET; 2024 post-treatment glioma adds NETC,
SNFH and RC) in training ids, and the BraTS challenge that scores them lesion-wise (the release's own,
or ``eval.brats_challenge``; :mod:`skelgen_runtime.metrics.brats_challenges`), with its HD95 definition.
Every result records which rules scored it (``scored_as``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable

import numpy as np

from skelgen_runtime.errors import ConfigError, UserInputError
from skelgen_runtime.files import atomic_write_text
from skelgen_runtime.metrics.brats_challenges import (
    HD95_DEFINITIONS,
    PANOPTICA,
    VOXEL_SURFACE,
    Challenge,
    get_challenge,
)
from skelgen_runtime.metrics.panoptica_scoring import CITATION
from skelgen_runtime.metrics.panoptica_scoring import METRICS as PANOPTICA_METRICS
from skelgen_runtime.metrics.segmentation import ConfusionMatrix, scores_from_confusion
from skelgen_runtime.metrics.volume import LESION_METRICS, VOXEL_METRICS, mean_scores, score_case

__all__ = [
    "RANKED_BY",
    "regions",
    "challenge",
    "scoring_rules",
    "challenge_key",
    "score_predictions",
    "report",
    "write_artifacts",
]

#: the metrics the BraTS 2023+ leaderboards rank by, per region
RANKED_BY = ("lesion_dice", "lesion_hd95")


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


def scoring_rules(
    info, release: str, key: str | None = None
) -> tuple[dict[str, tuple[int, ...]], Challenge | None, dict]:
    """The regions, the challenge and the edition record (``scored_as``) that score a dataset of ``release``.

    ``scored_as`` is ``{"challenge": KEY | None, "title", "hd95": DEFINITION, "chosen_by", "release"}``:
    which rules score the cases and why (the release's own, or ``eval.brats_challenge``), recorded in
    ``eval_SPLIT.json`` so that runs scored under different rules are not compared silently.

    Raises:
        ConfigError: ``key`` names no challenge, or a challenge whose regions are not the release's
            (e.g. GLI2024's six post-treatment regions for a 2023 release); the message names both.
    """
    from skelgen_runtime.sources.brats_releases import label_set_for

    used, scoring = regions(info, release), challenge(release, key)
    if scoring is not None and scoring.groups:
        return _panoptica_rules(info, release, key, scoring)
    if scoring is not None and set(used) != set(scoring.regions):
        labels = label_set_for(release)
        held = (
            f"the release {release!r} (labels {', '.join(map(str, labels.source_ids[1:]))}) has regions {', '.join(used)}"
            if labels
            else f"this dataset ({release or 'no BraTS release'}) has classes {', '.join(used)}"
        )
        raise ConfigError(
            f"eval.brats_challenge: {scoring.key} ({scoring.title}) scores regions {', '.join(scoring.regions)}, but "
            f"{held}; choose a challenge of this release (null: the release's own)"
        )
    scored_as = {
        "challenge": scoring.key if scoring else None,
        "title": scoring.title if scoring else "no BraTS challenge: voxel-wise metrics only",
        "hd95": scoring.hd95 if scoring else VOXEL_SURFACE,
        "chosen_by": "eval.brats_challenge" if key else ("the release" if scoring else None),
        "release": release or None,
    }
    return used, scoring, scored_as


def _panoptica_rules(info, release: str, key: str | None, scoring: Challenge) -> tuple[dict, Challenge, dict]:
    """:func:`scoring_rules` of a 2025 edition: its groups in training ids, once its label set is the release's."""
    from skelgen_runtime.metrics.panoptica_scoring import require
    from skelgen_runtime.sources.brats_releases import LABEL_SETS, release_of

    found = release_of(release) if release else None
    if found is None or found.labels not in scoring.label_sets:
        held = f"the release {release!r} uses label set {found.labels}" if found else "this dataset is no BraTS release"
        accepted = ", ".join(
            f"{k} ({', '.join(f'{i} {n}' for i, n in zip(LABEL_SETS[k].source_ids[1:], LABEL_SETS[k].classes[1:]))})"
            for k in scoring.label_sets
        )
        raise ConfigError(
            f"eval.brats_challenge: {scoring.key} ({scoring.title}) scores the label ids of {accepted}, but {held}; "
            "choose a challenge of this release (null: the release's own)"
        )
    version = require(scoring)  # before any case is predicted
    source_ids = info.label_map.source_ids or tuple(range(info.label_map.num_classes))
    used = {name: tuple(source_ids.index(i) for i in ids if i in source_ids) for name, ids in scoring.groups.items()}
    scored_as = {
        "challenge": scoring.key,
        "title": scoring.title,
        "hd95": scoring.hd95,
        "chosen_by": "eval.brats_challenge" if key else "the release",
        "release": release or None,
        "scorer": f"panoptica {version}",
    }
    return used, scoring, scored_as


def challenge_key(config) -> str | None:
    """``eval.brats_challenge`` of a config (None where its schema has no such key)."""
    return getattr(getattr(config, "eval", None), "brats_challenge", None)


def score_predictions(pairs: Iterable[tuple[dict, np.ndarray]], info, *, challenge_key: str | None = None) -> dict:
    """Score ``(case, prediction)`` pairs: a prepared case as :func:`evaluate` gets it and training ids ``(D, H, W)``.

    Args:
        challenge_key: the BraTS challenge whose lesion-wise parameters to use; None: the release's.

    Returns:
        ``per_case`` (``[{case_id, REGION: {metric: value}}]``, metrics as
        :func:`skelgen_runtime.metrics.volume.score_case` gives them), ``mean`` (``{REGION: {metric: mean}}``),
        ``mean_dice`` (full Dice over regions), ``mean_lesion_dice`` and ``mean_lesion_hd95`` (over
        regions; None without a challenge), ``miou`` (over all voxels), ``regions`` (training ids),
        ``challenge`` (its parameters and source, or None), ``ranked_by``, ``hd95_definition`` and
        ``scored_as`` (:func:`scoring_rules`).

    Raises:
        ConfigError: the challenge does not score the release's regions (:func:`scoring_rules`).
        UserInputError: a prediction's shape differs from its case's, naming the case.
    """
    confusion = ConfusionMatrix(info.num_classes)
    per_case: list[dict] = []
    used: dict[str, tuple[int, ...]] | None = None
    scoring: Challenge | None = None
    scored_as: dict | None = None
    for case, pred in pairs:
        truth = case["label"].numpy()[..., 0]
        case_id = case["case_id"].numpy().decode()
        if used is None:
            release = case["release"].numpy().decode()
            used, scoring, scored_as = scoring_rules(info, release, challenge_key)
        if np.shape(pred) != truth.shape:
            raise UserInputError(
                f"case {case_id}: the prediction's shape {tuple(np.shape(pred))} differs from its ground truth's "
                f"{truth.shape}; predict the case at its own size"
            )
        scores = score_case(pred, truth, case["spacing"].numpy().tolist(), used, scoring)
        per_case.append({"case_id": case_id, **scores})
        confusion.update(truth, pred)
    means = mean_scores([{r: c[r] for r in used or {}} for c in per_case]) if per_case else {}

    def over_regions(metric: str) -> float | None:  # NaN: a region no case has a lesion of, left out
        if not means or metric not in next(iter(means.values())):
            return None
        values = [m[metric] for m in means.values() if not np.isnan(m[metric])]
        return float(np.mean(values)) if values else float("nan")

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
        "scored_as": scored_as,
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
    "lesion_nsd": "lesion NSD",
    "nsd": "NSD",
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
    if (result.get("challenge") or {}).get("scorer") == PANOPTICA:
        return list(PANOPTICA_METRICS)
    return (
        list(LESION_METRICS[:2] + VOXEL_METRICS + LESION_METRICS[2:])
        if result.get("challenge")
        else list(VOXEL_METRICS)
    )


def _scored_as_line(scored_as: dict) -> str:
    """``scored as BraTS 2023 adult glioma (GLI), the release brats2023-gli's; HD95: surface-distance``."""
    if scored_as.get("challenge") is None:
        return f"scored as: {scored_as['title']}; HD95: {scored_as['hd95']}"
    why = (
        "chosen by eval.brats_challenge"
        if scored_as.get("chosen_by") == "eval.brats_challenge"
        else f"detected from the release {scored_as.get('release')} (eval.brats_challenge overrides)"
    )
    return f"scored as {scored_as['title']}, {why}; HD95: {scored_as['hd95']}"


def report(result: dict, info) -> str:
    """The ranking metrics of every region per case (the first 20), a table of every metric's mean per
    region, and the headline line."""
    names, ranked = list(result["regions"]), result.get("ranked_by", ["dice", "hd95"])
    width = max([4, *(len(c["case_id"]) for c in result["per_case"][:_SHOWN_CASES])])
    first, second = (_SHORT[m] for m in ranked)
    widths = {r: len(f"{r} {first}") for r in names}
    heads = "  ".join(f"{r + ' ' + first:>{widths[r]}} {second:>7}" for r in names)
    cells = lambda s: "  ".join(f"{s[r][ranked[0]]:>{widths[r]}.3f} {s[r][ranked[1]]:>7.2f}" for r in names)  # noqa: E731
    scored_as = result.get("scored_as")
    lines = [_scored_as_line(scored_as)] if scored_as else []
    lines.append(f"{'case':<{width}}  {heads}")
    lines += [f"{c['case_id']:<{width}}  {cells(c)}" for c in result["per_case"][:_SHOWN_CASES]]
    if len(result["per_case"]) > _SHOWN_CASES:
        lines.append(f"... {len(result['per_case']) - _SHOWN_CASES} more cases in the per-case CSV")
    if result["mean"]:
        metrics = _metrics(result)
        lines.append(f"mean over {len(result['per_case'])} cases:")
        lines.append(f"{'region':<6}  " + "  ".join(f"{_HEADINGS[m]:>11}" for m in metrics))
        lines += [f"{r:<6}  " + "  ".join(f"{result['mean'][r][m]:>11.4f}" for m in metrics) for r in names]
    scoring = result.get("challenge")
    if scoring and scoring.get("scorer") == PANOPTICA:
        lines.append(
            f"L- = lesion-wise (the mean over matched lesions), as {scoring['title']} by "
            f"{(scored_as or {}).get('scorer', 'panoptica')}: connected components, {scoring['matching']}; no match: "
            f"Dice and NSD 0, HD95 inf; no lesion on either side: nan, left out of the means; a whole-region "
            f"HD95 of one empty side is {scoring['global_hd95_inf']:g} mm ({scoring['source']}; please cite "
            f"panoptica: {CITATION})"
        )
    elif scoring:
        lines.append(
            f"L- = lesion-wise, as {scoring['title']}: dilation {_per_region(scoring['dilation'])}, lesions "
            f"of at most {_per_region(scoring['threshold'])} mm^3 left out, penalty {scoring['penalty']:g} mm "
            f"({scoring['source']})"
        )
    shown = "per case" if scoring and scoring.get("scorer") == PANOPTICA else "ranked by"  # 2025: panoptica's output
    lines.append(f"{shown} {' and '.join(_HEADINGS[m] for m in ranked)}; HD95 in mm = {result['hd95_definition']}")
    chosen = result.get("postprocessing")
    if chosen and not chosen["steps"]:
        lines.append("post-processing chosen: none (these rules leave no lesion out by its size)")
    elif chosen:
        tried = "; ".join(
            f"{s['region']} <= {s['threshold']:g} mm^3 {s['before']:.4f} -> {s['after']:.4f} "
            + ("kept" if s["kept"] else "not kept")
            for s in chosen["steps"]
        )
        lines.append(f"post-processing tried on these cases (mean lesion Dice): {tried}")
        lines.append(f"post-processing chosen: {chosen['described']} (scores above are before it)")
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
