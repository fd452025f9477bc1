"""Post-processing chosen on validation (skelgen_runtime.metrics.postprocess) on crafted volumes, and
which runs an ensemble may average (skelgen_runtime.jobs.ensembles).

Lesion-wise Dice as the 2023 GLI challenge scores it: ground-truth lesions of at most 50 mm^3 are left
out, and every predicted lesion matching none counts as a false positive with Dice 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from skelgen_runtime.metrics.brats_challenges import get_challenge
from skelgen_runtime.metrics.postprocess import Case, apply_plan, choose, describe_plan, remove_small

GLI = get_challenge("GLI")
REGIONS = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


def test_remove_small_counts_mm3_and_keeps_what_is_larger() -> None:
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[2:6, 2:6, 2:6] = 3  # 64 voxels
    labels[12:14, 12:14, 12:14] = 3  # 8 voxels
    labels[15:17, 2:4, 2:4] = 2  # another region's: never touched by an ET removal
    out = remove_small(labels, (3,), 8.0, (1.0, 1.0, 1.0))
    assert (out == 3).sum() == 64 and (out == 2).sum() == 8 and out[13, 13, 13] == 0
    # at 2 mm^3 per voxel the small one has 16 mm^3: kept at 8 mm^3, removed at 16
    assert remove_small(labels, (3,), 8.0, (2.0, 1.0, 1.0)) is labels
    assert (remove_small(labels, (3,), 16.0, (2.0, 1.0, 1.0)) == 3).sum() == 64
    # a region made of several labels removes the component whole
    assert (apply_plan(labels, {"WT": 8.0}, REGIONS, (1, 1, 1)) > 0).sum() == 64


def test_apply_plan_refuses_a_region_the_dataset_lacks() -> None:
    with pytest.raises(ValueError, match="RC"):
        apply_plan(np.zeros((4, 4, 4), np.uint8), {"RC": 10.0}, REGIONS, (1, 1, 1))


def _case(name: str, small_true_positive: bool) -> Case:
    truth = np.zeros((24, 24, 24), np.uint8)
    truth[2:8, 2:8, 2:8] = 3  # one ET lesion of 216 mm^3, scored
    pred = truth.copy()
    if small_true_positive:
        truth[14:20, 14:20, 14:20] = 3  # a second scored lesion (216 mm^3) ...
        pred[15:18, 15:18, 15:18] = 3  # ... that the prediction finds only as a 27 mm^3 component
    else:
        pred[16:18, 16:18, 16:18] = 3  # a false positive of 8 mm^3
    return Case(name, pred, truth, (1.0, 1.0, 1.0))


def test_removal_is_kept_where_it_removes_false_positives() -> None:
    plan, steps = choose([_case("a", False), _case("b", False)], REGIONS, GLI)
    # every region has the 8 mm^3 false positive: lesion Dice (1 + 0) / 2 = 0.5 -> 1.0 after removing it
    assert plan == {"WT": 50.0}, steps
    assert steps[0] == {"region": "WT", "threshold": 50.0, "before": 0.5, "after": 1.0, "kept": True}
    assert [s["kept"] for s in steps[1:]] == [False, False]  # nothing left to gain after WT
    assert describe_plan(plan) == "remove predicted components of at most WT 50 mm^3"


def test_scores_computed_before_on_the_whole_volumes_give_the_same_choice() -> None:
    from skelgen_runtime.metrics.volume import score_case

    cases = [_case("a", False), _case("b", True)]
    whole = [score_case(c.pred, c.truth, c.spacing, REGIONS, GLI) for c in cases]
    assert choose(cases, REGIONS, GLI, scores=whole) == choose(cases, REGIONS, GLI)


def test_removal_is_not_kept_where_it_removes_small_true_positives() -> None:
    plan, steps = choose([_case("a", True), _case("b", True)], REGIONS, GLI)
    assert plan == {} and describe_plan(plan) == "none"
    assert all(s["after"] < s["before"] for s in steps), steps  # a found lesion would become a missed one


def test_ensembles_of_other_datasets_or_builds_or_kinds_of_data_are_refused(tmp_path) -> None:
    import json

    from skelgen_runtime.errors import UserInputError
    from skelgen_runtime.jobs.ensembles import check_ensemble
    from skelgen_runtime.records.info import DatasetInfo
    from skelgen_runtime.runs import Run

    def run(name: str, fingerprint: str) -> Run:
        folder = tmp_path / "logs" / name
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"run_id": name, "dataset": {"fingerprint": fingerprint}}))
        return Run(tmp_path, name)

    def info(name: str, schema: str = "volume_segmentation") -> DatasetInfo:
        return DatasetInfo(tmp_path / "datasets" / name / "tfrecords", {"schema": schema})

    a, b, c = run("a", "sha256:1111"), run("b", "sha256:1111"), run("c", "sha256:2222")
    brats = info("brats")
    check_ensemble([a, b], brats, [brats])  # one build of one dataset: fine
    with pytest.raises(UserInputError, match=r"runs a and b trained on different datasets \(brats, other\)"):
        check_ensemble([a, b], brats, [info("other")])
    with pytest.raises(UserInputError, match=r"runs a and c trained on different builds of brats"):
        check_ensemble([a, c], brats, [brats])
    with pytest.raises(UserInputError, match=r"names run a twice"):
        check_ensemble([a, a], brats, [brats])
    with pytest.raises(UserInputError, match=r"is for volume datasets"):
        check_ensemble([a, b], info("shapes", "segmentation"), [info("shapes", "segmentation")])


def test_an_ensemble_of_runs_of_different_folds_is_not_scored_on_their_training_cases(tmp_path) -> None:
    from skelgen_runtime.errors import UserInputError
    from skelgen_runtime.jobs.ensembles import check_ensemble_split
    from skelgen_runtime.runs import Run

    def run(name: str, fold: int | None) -> Run:
        folder = tmp_path / "logs" / name
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(f"data:\n  dataset: brats\n  fold: {'null' if fold is None else fold}\n")
        return Run(tmp_path, name)

    f0, f1, f0b, whole = run("f0", 0), run("f1", 1), run("f0b", 0), run("whole", None)
    check_ensemble_split([f0, f0b], "val")  # one fold: the same validation cases, none trained on
    check_ensemble_split([f0, f1], "test")  # a split no fold holds
    for runs, named in (([f0, f1], "f1 fold 1"), ([whole, f0], "whole train/val")):
        with pytest.raises(UserInputError, match=named):
            check_ensemble_split(runs, "val")
