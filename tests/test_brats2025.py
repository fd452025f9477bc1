"""The BraTS 2025 editions (skelgen_runtime.metrics.panoptica_scoring) against panoptica configured by hand.

The reference is panoptica's ``Panoptica_Evaluator`` built here, directly, from the values the challenge
table restates (each challenge's ``groups`` in file label ids, ``PANOPTICA_2025``'s matching threshold,
metrics and zero-TP rules), fed NIfTI files written with the case's spacing in the header, as the
organisers' ``brats_evaluation/evaluation.py`` feeds it (whole volumes, x-y-z order, the header's spacing).
skelgen scores its ``(D, H, W)`` training-id arrays, cropped, through the same entry point as evaluate.py
(``volume_scoring.scoring_rules`` then ``volume.score_case``). Every number must agree.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from skelgen_runtime.errors import ConfigError
from skelgen_runtime.metrics.brats_challenges import CHALLENGES, PANOPTICA_2025, get_challenge
from skelgen_runtime.metrics.postprocess import choose
from skelgen_runtime.metrics.volume import mean_scores, score_case
from skelgen_runtime.sources.brats_releases import LABEL_SETS
from skelgen_runtime.tasks.volume_scoring import scoring_rules

# panoptica's global NSD runs at its default tolerance and says so, for the organisers as for this test
pytestmark = pytest.mark.filterwarnings("ignore:The threshold is set to 0.5:UserWarning")

EDITIONS = [key for key, c in CHALLENGES.items() if c.groups]
#: the release each edition is checked on (a label set it accepts)
RELEASE = {"GLI2025": "brats2024-gli", "MET2025": "brats2023-met", "MEN2025": "brats2023-men",
           "GOAT2025": "brats2023-goat", "PED2025": "brats2024-ped"}  # fmt: skip


def info_of(label_set: str) -> SimpleNamespace:
    """The parts of a dataset's info the scoring rules read: its label map (training ids -> file ids)."""
    labels = LABEL_SETS[label_set]
    label_map = SimpleNamespace(source_ids=labels.source_ids, num_classes=len(labels.classes), names=labels.classes)
    return SimpleNamespace(label_map=label_map)


def organisers_evaluator(challenge):
    """panoptica configured from the table's values, the way the organisers' YAML configurations do."""
    from panoptica import (
        ConnectedComponentsInstanceApproximator,
        InputType,
        MaxBipartiteMatching,
        Metric,
        Panoptica_Evaluator,
    )
    from panoptica.utils import EdgeCaseHandler, EdgeCaseResult, LabelGroup, LabelMergeGroup, SegmentationClassGroups
    from panoptica.utils.edge_case_handling import MetricZeroTPEdgeCaseHandling

    def handling(value: str):
        result = EdgeCaseResult[value]
        return MetricZeroTPEdgeCaseHandling(
            empty_prediction_result=result,
            empty_reference_result=result,
            no_instances_result=EdgeCaseResult.NAN,
            normal=result,
        )

    groups = {
        name.lower(): LabelGroup(list(ids)) if len(ids) == 1 else LabelMergeGroup(list(ids))
        for name, ids in challenge.groups.items()
    }
    metrics = [Metric[m] for m in PANOPTICA_2025.metrics]
    return Panoptica_Evaluator(
        expected_input=InputType.SEMANTIC,
        instance_approximator=ConnectedComponentsInstanceApproximator(cca_backend=None),
        instance_matcher=MaxBipartiteMatching(
            matching_metric=Metric.DSC, matching_threshold=PANOPTICA_2025.matching_threshold
        ),
        edge_case_handler=EdgeCaseHandler(
            listmetric_zeroTP_handling={Metric[m]: handling(v) for m, v in PANOPTICA_2025.zero_tp.items()},
            empty_list_std=EdgeCaseResult.NAN,
        ),
        segmentation_class_groups=SegmentationClassGroups(groups),
        instance_metrics=metrics,
        global_metrics=metrics,
    )


def organisers_scores(challenge, pred_file: Path, truth_file: Path) -> dict[str, dict[str, float]]:
    """The organisers' per-region numbers: panoptica on the files; an infinite global HD95 read as 373
    (their metrics_parser.py)."""
    results = organisers_evaluator(challenge).evaluate(str(pred_file), str(truth_file))
    out = {}
    for name in challenge.groups:
        found = results[name.lower()].to_dict(True)
        hd95 = found["global_bin_hd95"]
        out[name] = {
            "lesion_dice": found["sq_dsc"],
            "lesion_nsd": found["sq_nsd"],
            "lesion_hd95": found["sq_hd95"],
            "tp": found["tp"],
            "fp": found["fp"],
            "fn": found["fn"],
            "dice": found["global_bin_dsc"],
            "nsd": found["global_bin_nsd"],
            "hd95": 373.0 if math.isinf(hd95) else hd95,
        }
    return out


def write_nifti(labels: np.ndarray, spacing, path: Path) -> Path:
    """A ``(D, H, W)`` file-id volume as the release ships it: x-y-z order, the spacing in the header."""
    image = nib.Nifti1Image(np.ascontiguousarray(labels.T).astype(np.uint8), np.diag([*spacing[::-1], 1.0]))
    nib.save(image, str(path))
    return path


def sphere(shape, centre, radius) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def cases(file_ids: tuple[int, ...], rng) -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    """Crafted (name, prediction, truth, spacing) pairs in file ids: several lesions, some missed, some false,
    labels nested like a tumour's, one region empty on either side, lesions on the volume's border."""
    shape = (28, 30, 26)
    one, two, three, four = (file_ids + (0, 0, 0, 0))[1:5]
    truth = np.zeros(shape, np.uint8)
    truth[sphere(shape, (9, 10, 9), 6)] = two  # the outer label of the first lesion
    truth[sphere(shape, (9, 10, 9), 4)] = one
    truth[sphere(shape, (9, 10, 9), 2)] = three
    truth[sphere(shape, (20, 21, 17), 4)] = three  # a second lesion
    truth[0:3, 25:30, 0:4] = four or two  # on the border
    shifted = np.roll(truth, 1, axis=0)
    noisy = shifted.copy()
    noisy[rng.random(shape) < 0.004] = three  # single-voxel false positives
    missed = truth.copy()
    missed[sphere(shape, (20, 21, 17), 5)] = 0  # the second lesion missed
    extra = truth.copy()
    extra[22:25, 3:6, 20:23] = one  # a false lesion
    empty = np.zeros(shape, np.uint8)
    no_inner = np.where(truth == three, one, truth).astype(np.uint8)
    return [
        ("shifted, isotropic", shifted, truth, (1.0, 1.0, 1.0)),
        ("shifted with noise, anisotropic", noisy, truth, (2.0, 0.8, 1.3)),
        ("a lesion missed", missed, truth, (1.0, 1.0, 1.5)),
        ("a false lesion", extra, truth, (1.2, 1.0, 1.0)),
        ("empty prediction", empty, truth, (1.0, 1.0, 1.0)),
        ("empty ground truth", shifted, empty, (1.0, 1.0, 1.0)),
        ("both empty", empty, empty, (1.0, 1.0, 1.0)),
        ("inner label never predicted", no_inner, truth, (1.0, 0.9, 1.1)),
    ]


def same(ours: float, theirs: float) -> bool:
    if math.isnan(theirs) or math.isinf(theirs):
        return math.isnan(ours) if math.isnan(theirs) else ours == theirs
    return abs(ours - theirs) <= 1e-9


@pytest.mark.parametrize("key", EDITIONS)
def test_every_number_equals_panoptica_configured_from_the_table(key: str, tmp_path: Path) -> None:
    challenge = get_challenge(key)
    release = RELEASE[key]
    from skelgen_runtime.sources.brats_releases import release_of

    labels = release_of(release).label_set
    used, scoring, scored_as = scoring_rules(info_of(labels.key), release, key)
    assert scoring is challenge and scored_as["scorer"].startswith("panoptica ")
    to_training = np.zeros(256, np.int64)
    to_training[list(labels.source_ids)] = np.arange(len(labels.source_ids))
    rng = np.random.default_rng(11)
    compared = 0
    for name, pred, truth, spacing in cases(labels.source_ids, rng):
        theirs = organisers_scores(
            challenge,
            write_nifti(pred, spacing, tmp_path / "pred.nii.gz"),
            write_nifti(truth, spacing, tmp_path / "seg.nii.gz"),
        )
        header = tuple(float(np.float32(s)) for s in spacing)  # the header's float32 zooms, as a build records them
        ours = score_case(to_training[pred], to_training[truth], header, used, challenge)
        assert list(ours) == list(challenge.groups), name
        for region, metrics in theirs.items():
            for metric, value in metrics.items():
                assert same(ours[region][metric], float(value)), (name, region, metric, ours[region][metric], value)
                compared += 1
    assert compared == 8 * len(challenge.groups) * 9


def test_the_means_skip_regions_without_lesions_like_the_organisers_pandas_mean() -> None:
    per_case = [{"ET": {"lesion_dice": 0.5}}, {"ET": {"lesion_dice": float("nan")}}, {"ET": {"lesion_dice": 1.0}}]
    assert mean_scores(per_case)["ET"]["lesion_dice"] == 0.75
    assert math.isnan(mean_scores([{"ET": {"lesion_dice": float("nan")}}])["ET"]["lesion_dice"])
    inf = [{"ET": {"lesion_hd95": float("inf")}}, {"ET": {"lesion_hd95": 2.0}}]
    assert mean_scores(inf)["ET"]["lesion_hd95"] == float("inf")


def test_an_edition_of_other_labels_is_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as err:
        scoring_rules(info_of("brats2023"), "brats2023-ped", "PED2025")
    message = str(err.value)
    assert "PED2025" in message and "1 enhancing tumor" in message and "brats2023" in message
    with pytest.raises(ConfigError, match="GLI2025.*msd"):  # MSD's ids mean other things
        scoring_rules(info_of("msd"), "msd-task01", "GLI2025")
    with pytest.raises(ConfigError, match="no BraTS release"):
        scoring_rules(info_of("brats2023"), "", "MEN2025")
    # 2025 rules choose no size threshold: post-processing has nothing to try
    assert choose([], {"ET": (3,)}, get_challenge("MEN2025")) == ({}, [])


def test_without_panoptica_a_2025_edition_is_one_line_with_the_pip_command() -> None:
    code = (
        "import sys; sys.modules['panoptica'] = None\n"
        "from types import SimpleNamespace as N\n"
        "from skelgen_runtime.tasks.volume_scoring import scoring_rules\n"
        "from skelgen_runtime.errors import ConfigError\n"
        "info = N(label_map=N(source_ids=(0, 1, 2, 3), num_classes=4, names=('b', 'n', 'e', 't')))\n"
        "try:\n"
        "    scoring_rules(info, 'brats2023-men', 'men2025')\n"
        "except ConfigError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines() == [
        "eval.brats_challenge: MEN2025 (BraTS 2025 pre-operative meningioma (MEN2025)) is scored by panoptica, "
        "which is not installed: pip install 'skelgen-tf[brats]'"
    ]


def test_runs_scored_by_two_panoptica_versions_are_not_compared_silently() -> None:
    from skelgen_runtime.run_summary import evaluation_rules

    _, _, scored_as = scoring_rules(info_of("brats2023"), "brats2023-men", "MEN2025")
    rules = evaluation_rules({"scored_as": scored_as})
    assert rules == f"MEN2025, HD95 panoptica, {scored_as['scorer']}" and scored_as["scorer"].startswith("panoptica 2.")
    other = evaluation_rules({"scored_as": {**scored_as, "scorer": "panoptica 9.0.0"}})
    assert other != rules
    assert (
        evaluation_rules({"scored_as": {"challenge": "GLI", "hd95": "surface-distance"}})
        == "GLI, HD95 surface-distance"
    )
