"""HD95 of the BraTS 2023/2024 scorers (skelgen_runtime.metrics.surfels) against DeepMind's own code.

The reference is ``surface_distance.compute_surface_distances`` + ``compute_robust_hausdorff`` of the
``surface-distance`` package the organisers' scripts call, run on the arrays in NIfTI order (x, y, z)
with the header's spacing, ground truth first, as they do; skelgen computes on its ``(D, H, W)``
arrays. Every crafted case must agree within 1e-6 mm.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from skelgen_runtime.metrics import surfels
from skelgen_runtime.metrics.brats_challenges import SURFACE_DISTANCE, VOXEL_SURFACE, get_challenge
from skelgen_runtime.metrics.volume import score_case


def deepmind_hd95(pred: np.ndarray, truth: np.ndarray, spacing, *, one_empty: float | None = None) -> float:
    """DeepMind's surface-distance HD95 of two ``(D, H, W)`` masks, computed in NIfTI order as the organisers do."""
    import surface_distance

    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if not pred.any() and not truth.any():
        return 0.0
    if not pred.any() or not truth.any():
        assert one_empty is not None
        return float(one_empty)
    with warnings.catch_warnings():  # the package calls SciPy's deprecated ndimage.filters namespace
        warnings.simplefilter("ignore", DeprecationWarning)
        found = surface_distance.compute_surface_distances(
            np.ascontiguousarray(truth.T), np.ascontiguousarray(pred.T), tuple(spacing)[::-1]
        )
    return float(surface_distance.compute_robust_hausdorff(found, 95))


def box(shape, *slices) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[tuple(slices)] = True
    return out


def crafted() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]]:
    shape = (20, 18, 16)
    cube = box(shape, slice(4, 10), slice(4, 10), slice(4, 10))
    single = box(shape, slice(8, 9), slice(8, 9), slice(8, 9))
    other_single = box(shape, slice(11, 12), slice(3, 4), slice(9, 10))
    rng = np.random.default_rng(7)
    fragments = rng.random(shape) < 0.08  # many one- and two-voxel lesions
    touching = box(shape, slice(4, 10), slice(4, 10), slice(10, 14))  # shares a face with the cube
    edge = box(shape, slice(0, 6), slice(0, 5), slice(12, 16))  # lies on the volume's border
    ring = box(shape, slice(3, 15), slice(3, 15), slice(6, 9)) & ~box(shape, slice(6, 12), slice(6, 12), slice(6, 9))
    return [
        ("shifted cube, isotropic", np.roll(cube, 2, axis=0), cube, (1.0, 1.0, 1.0)),
        ("shifted cube, anisotropic", np.roll(cube, 1, axis=1), cube, (3.0, 0.7, 1.2)),
        ("single voxels", single, other_single, (1.0, 1.0, 1.0)),
        ("single voxels, anisotropic", single, other_single, (2.5, 1.0, 0.4)),
        ("single voxel inside a cube", single, cube, (1.0, 1.0, 1.2)),
        ("touching lesions", cube | touching, cube, (1.0, 1.0, 1.0)),
        ("fragmented prediction", fragments, cube, (1.0, 1.0, 1.0)),
        ("fragmented both, anisotropic", fragments, fragments ^ (rng.random(shape) < 0.05), (0.9, 1.1, 2.0)),
        ("on the border", edge, np.roll(edge, 1, axis=2), (1.0, 1.0, 1.0)),
        ("ring and its hole", ring, box(shape, slice(6, 12), slice(6, 12), slice(6, 9)), (1.0, 0.5, 0.5)),
    ]


@pytest.mark.parametrize("name,pred,truth,spacing", crafted(), ids=[c[0] for c in crafted()])
def test_hd95_equals_deepmind_surface_distance(name, pred, truth, spacing) -> None:
    assert surfels.hd95(pred, truth, spacing) == pytest.approx(deepmind_hd95(pred, truth, spacing), abs=1e-6)


def test_hd95_equals_deepmind_on_random_masks() -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        shape = tuple(int(n) for n in rng.integers(3, 14, 3))
        truth = rng.random(shape) < rng.uniform(0.02, 0.5)
        pred = truth ^ (rng.random(shape) < rng.uniform(0.01, 0.2))
        if not truth.any() or not pred.any():
            continue
        spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, 3))
        assert surfels.hd95(pred, truth, spacing) == pytest.approx(deepmind_hd95(pred, truth, spacing), abs=1e-6)


def test_the_area_weighting_is_what_differs_from_the_voxel_definition() -> None:
    # A cube against the same cube with a one-voxel spike: surface-distance weights the spike's few
    # surfels by area; the unweighted voxel definition counts surface voxels. The two must not agree
    # here, or this test would not tell them apart.
    from skelgen_runtime.metrics.overlap import hd95 as voxel_hd95

    shape = (16, 16, 16)
    cube = box(shape, slice(4, 10), slice(4, 10), slice(4, 10))
    spiky = cube | box(shape, slice(10, 14), slice(6, 8), slice(6, 8))
    weighted, unweighted = surfels.hd95(spiky, cube, (1, 1, 1)), voxel_hd95(spiky, cube, (1, 1, 1))
    assert weighted == pytest.approx(deepmind_hd95(spiky, cube, (1, 1, 1)), abs=1e-6)
    assert weighted != pytest.approx(unweighted, abs=1e-3)


def test_empty_masks_follow_the_conventions() -> None:
    empty, one = np.zeros((5, 5, 5), bool), box((5, 5, 5), slice(2, 3), slice(2, 3), slice(2, 3))
    assert surfels.hd95(empty, empty, (1, 1, 1)) == 0.0
    assert surfels.hd95(one, empty, (1, 1, 1), one_empty=374.0) == 374.0
    assert surfels.hd95(empty, one, (1, 1, 2)) == pytest.approx(np.sqrt(25 + 25 + 100))
    with pytest.raises(ValueError, match="non-empty"):
        surfels.surfel_distances(empty, one, (1, 1, 1))


@pytest.mark.parametrize("key", ["GLI", "MET", "GLI2024"])
def test_the_2023_and_2024_challenges_score_every_hd95_with_surface_distance(key, monkeypatch) -> None:
    # lesions of every kind on one volume: several ground-truth lesions, fragments, a false positive
    challenge = get_challenge(key)
    assert challenge.hd95 == SURFACE_DISTANCE
    rng = np.random.default_rng(5)
    shape = (30, 24, 20)
    truth = np.zeros(shape, np.uint8)
    truth[3:11, 4:12, 4:10] = 1
    truth[5:9, 6:10, 5:8] = 3
    truth[18:25, 12:20, 10:16] = 2
    truth[20:23, 14:17, 12:14] = 3
    pred = np.roll(truth, 1, axis=int(rng.integers(0, 3)))
    pred[26:28, 2:4, 2:4] = 3  # a false positive
    pred[12:13, 8:9, 8:9] = 1  # a fragment near the first lesion
    regions = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
    spacing = (1.0, 1.0, 1.2)
    got = score_case(pred, truth, spacing, regions, challenge)
    # the same scoring with every HD95 computed by DeepMind's package instead
    monkeypatch.setattr(surfels, "hd95", deepmind_hd95)
    want = score_case(pred, truth, spacing, regions, challenge)
    for region in regions:
        for metric in ("hd95", "lesion_hd95", "lesion_dice", "tp", "fp", "fn"):
            assert got[region][metric] == pytest.approx(want[region][metric], abs=1e-6), (region, metric)
    # the voxel definition gives other numbers on this case: the challenge's definition is in use
    voxel = score_case(pred, truth, spacing, regions, replace(challenge, hd95=VOXEL_SURFACE))
    assert any(abs(voxel[r]["hd95"] - got[r]["hd95"]) > 1e-3 for r in regions)
