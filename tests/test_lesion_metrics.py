"""Lesion-wise Dice and HD95 (BraTS 2023+) on crafted cases whose answers are worked out by hand below.

Conventions used in the hand computations: the scoring rules and parameters of the organisers' scripts
(rachitsaluja/BraTS-2023-Metrics@43c9052 metrics.py, rachitsaluja/BraTS-2024-Metrics@9a0ab9c
metrics_GLI.py); spacing 1 mm, so a lesion's volume in mm^3 is its voxel count; a 4x4x4 cube has 64
voxels, 56 of them on its surface (all but the inner 2x2x2); HD95 worked out as skelgen's voxel
definition, the max of the two directed 95th percentiles of surface-voxel distances with NumPy's linear
interpolation (for n sorted distances the percentile sits at index 0.95 * (n - 1)). The challenges score
with DeepMind's surface-distance instead (tests/test_surfels.py checks it against DeepMind's code); on
these axis-aligned cubes both definitions give the same numbers.
Case scores: sum of kept lesions' Dice / (kept + FP); (sum of their HD95 + FP * penalty) / (kept + FP).
2023 GLI: dilation 3, threshold 50 mm^3, penalty 374. 2024 GLI: dilation 5 for NETC and RC else 3,
threshold 10 for ET else 20, penalty 337.
"""

from __future__ import annotations

import numpy as np
import pytest

from skelgen_runtime.metrics.brats_challenges import get_challenge
from skelgen_runtime.metrics.volume import score_case

GLI, MET, GLI2024 = get_challenge("GLI"), get_challenge("MET"), get_challenge("GLI2024")
ONE = {"L": (1,)}  # one region made of label 1 (default parameters of the challenge)
SPACING = (1.0, 1.0, 1.0)
POST = {"WT": (1, 2, 3), "TC": (1, 3), "NETC": (1,), "SNFH": (2,), "ET": (3,), "RC": (4,)}


def volume(shape=(24, 10, 10)) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def cube(v: np.ndarray, x0: int, y0: int = 3, z0: int = 3, label: int = 1, side: int = 4) -> np.ndarray:
    v[x0 : x0 + side, y0 : y0 + side, z0 : z0 + side] = label
    return v


def lesion_scores(pred, truth, challenge=GLI, regions=ONE, spacing=SPACING):
    return score_case(pred, truth, spacing, regions, challenge)


def check(got: dict, **want) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_two_separate_lesions_both_found() -> None:
    # GT: cubes at x 2..5 and 16..19. Dilated 3 times they reach x 8 and x 13: two lesions.
    truth = cube(cube(volume(), 2), 16)
    # prediction: the first cube exactly, the second shifted by one voxel along z
    pred = cube(cube(volume(), 2), 16, z0=4)
    # lesion 1: Dice 1, HD95 0.
    # lesion 2: overlap 4x4x3 = 48, Dice 2*48/(64+64) = 0.75. HD95: a predicted surface voxel on the
    #   face z=7 (16) or the inner part of z=4 (4) is 1 from the truth's surface, the other 36 are on it:
    #   56 sorted distances, index 52.25 falls among the ones -> 1; the same the other way -> HD95 1.
    # case: Dice (1 + 0.75) / 2 = 0.875, HD95 (0 + 1) / 2 = 0.5, 2 TP.
    # sensitivity 112/128; specificity: N = 2400, TN = N - (128 + 128 - 112) = 2256, FP 16 -> 2256/2272.
    check(
        lesion_scores(pred, truth)["L"],
        lesion_dice=0.875,
        lesion_hd95=0.5,
        tp=2,
        fp=0,
        fn=0,
        dice=2 * 112 / 256,
        sensitivity=112 / 128,
        specificity=2256 / 2272,
    )


def test_components_within_the_dilation_are_one_lesion() -> None:
    # GT cubes at x 2..5 and 9..12 (3 empty slices between): dilated 3 times they meet, one lesion of 128.
    truth = cube(cube(volume(), 2), 9)
    pred = cube(volume(), 2)
    # Dice 2*64/(64+128) = 2/3. HD95: prediction -> truth all 0; truth -> prediction: the first cube's
    # 56 surface voxels 0, the second's 4 (face x=9, 16), 5 (ring x=10, 12), 6 (ring x=11, 12),
    # 7 (face x=12, 16): 112 sorted values, index 105.45 lies among the 7s -> HD95 7.
    check(lesion_scores(pred, truth)["L"], lesion_dice=2 / 3, lesion_hd95=7.0, tp=1, fp=0, fn=0)


def test_one_lesion_missed() -> None:
    truth = cube(cube(volume(), 2), 16)
    pred = cube(volume(), 2)
    # lesion 1: 1 and 0; lesion 2 (false negative): Dice 0, HD95 374 -> Dice 1/2, HD95 374/2 = 187
    got = lesion_scores(pred, truth)["L"]
    check(got, lesion_dice=0.5, lesion_hd95=187.0, tp=1, fp=0, fn=1)
    check(got, dice=2 * 64 / 192, sensitivity=0.5)  # full Dice still sees half the tumour


def test_one_extra_predicted_lesion() -> None:
    truth = cube(volume(), 2)
    pred = cube(cube(volume(), 2), 16)  # x 16..19 is beyond the truth's dilation (x <= 8): a false positive
    # one kept lesion (Dice 1, HD95 0) and one FP: Dice 1/(1+1) = 0.5, HD95 (0 + 374)/2 = 187
    check(lesion_scores(pred, truth)["L"], lesion_dice=0.5, lesion_hd95=187.0, tp=1, fp=1, fn=0)


def test_matching_reaches_as_far_as_the_18_neighbour_dilation() -> None:
    truth = cube(volume((12, 12, 12)), 2, 2, 2)  # voxels 2..5 on every axis
    # three dilations with the 18-neighbour structure reach offsets with every |step| <= 3 and a sum
    # of |steps| <= 6 from the cube: from its corner (5, 5, 5), (8, 7, 6) = (3, 2, 1) is reached,
    # (8, 8, 8) = (3, 3, 3) is not (a 26-neighbour dilation would reach it).
    near, far = truth.copy(), truth.copy()
    near[8, 7, 6] = far[8, 8, 8] = 1
    # near: the speck joins the lesion's prediction: Dice 2*64/(65+64) = 128/129; HD95: prediction ->
    # truth has 56 zeros and the speck's 3.74, index 0.95*56 = 53.2 -> 0; truth -> prediction all 0.
    check(lesion_scores(near, truth)["L"], lesion_dice=128 / 129, lesion_hd95=0.0, tp=1, fp=0)
    # far: a false positive: Dice 1/2, HD95 374/2
    check(lesion_scores(far, truth)["L"], lesion_dice=0.5, lesion_hd95=187.0, tp=1, fp=1)


def test_lesions_at_or_below_the_volume_threshold_are_left_out() -> None:
    truth = cube(volume(), 2)
    truth[16:21, 3:8, 3:5] = 1  # 5x5x2 = 50 voxels = 50 mm^3: at the GLI threshold, left out
    hit, miss = truth.copy(), cube(volume(), 2)
    # the small lesion found: no extra TP and no FP; missed: no FN. Both score as the big lesion alone.
    check(lesion_scores(hit, truth)["L"], lesion_dice=1.0, lesion_hd95=0.0, tp=1, fp=0, fn=0)
    check(lesion_scores(miss, truth)["L"], lesion_dice=1.0, lesion_hd95=0.0, tp=1, fp=0, fn=0)
    # at 1.1 mm along W the same 50 voxels are 55 mm^3, above the threshold: now it is missed
    # (Dice (1+0)/2, HD95 (0+374)/2)
    check(lesion_scores(miss, truth, spacing=(1.0, 1.0, 1.1))["L"], lesion_dice=0.5, lesion_hd95=187.0, fn=1)
    # MET leaves out lesions of at most 2 mm^3: with 50 it counts the small lesion too
    check(lesion_scores(miss, truth, MET)["L"], lesion_dice=0.5, lesion_hd95=187.0, tp=1, fn=1)


def test_empty_truth() -> None:
    empty = volume()
    # nothing to score: Dice 1, HD95 0, lesion-wise and full; sensitivity 1 by convention
    check(
        lesion_scores(empty, empty)["L"],
        lesion_dice=1.0,
        lesion_hd95=0.0,
        tp=0,
        fp=0,
        fn=0,
        dice=1.0,
        hd95=0.0,
        sensitivity=1.0,
        specificity=1.0,
    )
    pred = cube(cube(volume(), 2), 16)
    # two predicted lesions, both false positives: Dice 0/2 = 0, HD95 (2*374)/2 = 374; full HD95 of
    # exactly one empty mask is the penalty too; sensitivity 0, specificity (2400-128)/2400
    check(
        lesion_scores(pred, empty)["L"],
        lesion_dice=0.0,
        lesion_hd95=374.0,
        tp=0,
        fp=2,
        fn=0,
        dice=0.0,
        hd95=374.0,
        sensitivity=0.0,
        specificity=2272 / 2400,
    )


def test_two_predicted_fragments_of_one_lesion() -> None:
    truth = cube(volume(), 2)
    pred = truth.copy()
    pred[3:5] = 0  # slabs x=2 and x=5 remain: two 26-connected components of 16 voxels each
    # both lie in the lesion's dilated region, so both match it and are scored together (no FP):
    # Dice 2*32/(32+64) = 2/3. HD95: every predicted voxel is on both surfaces (0); of the truth's 56
    # surface voxels, the 32 of x=2 and x=5 are at 0 and the 24 of the rings x=3, 4 at 1: index 52.25
    # lies among the ones -> HD95 1.
    check(lesion_scores(pred, truth)["L"], lesion_dice=2 / 3, lesion_hd95=1.0, tp=1, fp=0, fn=0, dice=2 / 3, hd95=1.0)


def test_2024_removes_small_predicted_groups_per_region_threshold() -> None:
    truth = cube(volume(), 2, label=3)  # one enhancing-tissue cube: in WT, TC and ET
    pred = truth.copy()
    pred[18:20, 3:5, 3:6] = 3  # a 2x2x3 speck ...
    pred[19, 4, 5] = 0  # ... of 11 voxels, far away
    got = lesion_scores(pred, truth, GLI2024, POST)
    # ET (threshold 10 voxels): 11 > 10, the speck stays, a false positive: Dice 1/2, HD95 (0+337)/2;
    # full Dice 2*64/(75+64)
    check(got["ET"], lesion_dice=0.5, lesion_hd95=168.5, tp=1, fp=1, dice=128 / 139)
    # WT and TC (threshold 20): 11 <= 20, removed before matching and before the full scores
    for region in ("WT", "TC"):
        check(got[region], lesion_dice=1.0, lesion_hd95=0.0, tp=1, fp=0, dice=1.0, hd95=0.0)
    for region in ("NETC", "SNFH", "RC"):  # empty in both: nothing to score
        check(got[region], lesion_dice=1.0, lesion_hd95=0.0, dice=1.0, hd95=0.0, sensitivity=1.0)
    # 2023 GLI removes nothing: the speck is a false positive of WT too, Dice 1/2, HD95 (0+374)/2
    check(lesion_scores(pred, truth, GLI, {"WT": (1, 2, 3)})["WT"], lesion_dice=0.5, lesion_hd95=187.0, fp=1)


def test_2024_merges_lesions_touching_one_lesion_of_a_partner_tissue() -> None:
    # along x: NETC cube A at 2..5, enhancing tissue 6..16, NETC cube B at 17..20. Dilated 5 times A
    # reaches x 10 and B x 12, so NETC alone has two lesions; both touch the one ET lesion, which
    # makes them one NETC lesion (metrics_GLI.py's combine_lesions_NETC).
    truth = cube(cube(volume(), 2), 17)
    truth[6:17, 3:7, 3:7] = 3
    pred = truth.copy()
    pred[17:21] = 0  # B missed
    # merged lesion A+B against A: Dice 2*64/(64+128) = 2/3. HD95: prediction -> truth 0; truth ->
    # prediction: A's 56 surface voxels 0, B's at 12 (face x=17, 16), 13 and 14 (rings, 12 each),
    # 15 (face x=20, 16): index 105.45 of 112 lies among the 15s -> 15.
    got = lesion_scores(pred, truth, GLI2024, POST)
    check(got["NETC"], lesion_dice=2 / 3, lesion_hd95=15.0, tp=1, fp=0, fn=0)
    check(got["ET"], lesion_dice=1.0, lesion_hd95=0.0, tp=1, fp=0, fn=0)
    # without the merge (2023), B is a missed lesion of its own: Dice (1+0)/2, HD95 (0+374)/2
    check(lesion_scores(pred, truth, GLI, {"NETC": (1,)})["NETC"], lesion_dice=0.5, lesion_hd95=187.0, tp=1, fn=1)
