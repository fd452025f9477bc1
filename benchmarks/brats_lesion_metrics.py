"""Time to score one 240x240x155 BraTS case with every region: lesion-wise and full metrics.

    python benchmarks/brats_lesion_metrics.py [--repeats 3] [--seed 0]

Builds, in memory, realistic label volumes at 1 mm (nothing is downloaded) and times
``skelgen_runtime.metrics.volume.score_case`` on them, as ``evaluate.py`` calls it for one case:

- ``glioma 2024``: a post-treatment glioma in the 2024 label set (1 NETC, 2 SNFH, 3 ET, 4 RC; the six
  regions WT, TC, NETC, SNFH, ET, RC) with two satellite lesions, scored as challenge GLI2024;
- ``glioma 2023``: the same tumour without the cavity in the 2023 label set (WT, TC, ET), as GLI;
- ``metastases``: 40 small lesions of labels 1-3 (WT, TC, ET), as MET, for the per-lesion loop;
- ``glioma 2025`` and ``metastases 2025``: the same volumes scored as the 2025 editions GLI2025 and
  MET2025 (panoptica, the ``brats`` extra; their regions are the editions' groups).

Each prediction is the ground truth shifted by a voxel or two, with its boundary roughened, one
lesion dropped and a few false-positive specks added. Prints the seconds of every repeat and the
median per scenario; the target is under 10 s per case on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

SHAPE = (155, 240, 240)  # (D, H, W) as records hold a 240x240x155 NIfTI volume
SPACING = (1.0, 1.0, 1.0)
REGIONS_2024 = {"WT": (1, 2, 3), "TC": (1, 3), "NETC": (1,), "SNFH": (2,), "ET": (3,), "RC": (4,)}
REGIONS_2023 = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


def _ball(grid, centre, radii) -> np.ndarray:
    d, h, w = grid
    return ((d - centre[0]) / radii[0]) ** 2 + ((h - centre[1]) / radii[1]) ** 2 + ((w - centre[2]) / radii[2]) ** 2


def glioma(rng: np.random.Generator, cavity: bool) -> np.ndarray:
    """Nested sub-regions of one tumour (about 150 000 voxels) plus two satellites, as uint8 labels."""
    grid = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    seg = np.zeros(SHAPE, np.uint8)
    r = _ball(grid, (75, 110, 130), (30, 38, 34)) * (1 + 0.08 * rng.standard_normal(SHAPE).astype(np.float32))
    seg[r <= 1] = 2  # surrounding FLAIR hyperintensity / edema
    seg[r <= 0.45] = 1  # non-enhancing / necrotic core
    seg[(r > 0.25) & (r <= 0.4)] = 3  # enhancing rim
    if cavity:
        seg[_ball(grid, (75, 104, 124), (10, 12, 11)) <= 1] = 4
    for centre, label in (((40, 160, 70), 3), ((110, 60, 180), 1)):
        seg[_ball(grid, centre, (4, 5, 4)) <= 1] = label
    return seg


def metastases(rng: np.random.Generator, count: int = 40) -> np.ndarray:
    """``count`` small lesions (radius 2-6 voxels) with an enhancing rim around a necrotic centre, in edema."""
    grid = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    seg = np.zeros(SHAPE, np.uint8)
    for _ in range(count):
        centre = rng.integers((20, 40, 40), (135, 200, 200))
        radius = rng.uniform(2, 6)
        r = _ball(grid, centre, (radius, radius, radius))
        seg[(r <= 2.2) & (seg == 0)] = 2
        seg[r <= 1] = 3
        seg[r <= 0.3] = 1
    return seg


def prediction(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: shifted, boundary roughened, one lesion dropped, specks added."""
    from scipy import ndimage

    pred = np.roll(truth, (1, -2, 1), axis=(0, 1, 2))
    boundary = ndimage.binary_dilation(pred > 0) & ~ndimage.binary_erosion(pred > 0)
    flip = boundary & (rng.random(SHAPE) < 0.3)
    pred[flip] = 0
    labels, n = ndimage.label(pred > 0)
    if n > 1:
        pred[labels == n] = 0
    for _ in range(5):
        d, h, w = rng.integers((10, 20, 20), (145, 220, 220))
        pred[d : d + 3, h : h + 3, w : w + 2] = rng.integers(1, truth.max() + 1)
    return pred


def main() -> None:
    from skelgen_runtime.metrics.brats_challenges import get_challenge
    from skelgen_runtime.metrics.volume import score_case

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    scenarios = []
    for name, truth, regions, challenge in (
        ("glioma 2024", glioma(rng, cavity=True), REGIONS_2024, "GLI2024"),
        ("glioma 2023", glioma(rng, cavity=False), REGIONS_2023, "GLI"),
        ("metastases", metastases(rng), REGIONS_2023, "MET"),
    ):
        scenarios.append((name, truth, prediction(truth, rng), regions, get_challenge(challenge)))
    glioma_2024, _, mets = scenarios  # the same volumes as the 2025 editions (file ids = training ids here)
    for (name, truth, pred, _, _), key in ((glioma_2024, "GLI2025"), (mets, "MET2025")):
        edition = get_challenge(key)
        scenarios.append((f"{name.split()[0]} 2025", truth, pred, dict(edition.groups), edition))
    worst = 0.0
    for name, truth, pred, regions, challenge in scenarios:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            scores = score_case(pred, truth, SPACING, regions, challenge)
            times.append(time.perf_counter() - start)
        worst = max(worst, statistics.median(times))
        lesions = ", ".join(
            f"{r} {s['lesion_dice']:.3f}/{s['lesion_hd95']:.1f} (TP {s['tp']} FP {s['fp']} FN {s['fn']})"
            for r, s in scores.items()
        )
        print(
            f"{name}: {int((truth > 0).sum())} tumour voxels, {len(regions)} regions as {challenge.key}; "
            f"seconds {', '.join(f'{t:.2f}' for t in times)}; median {statistics.median(times):.2f}"
        )
        print(f"  lesion Dice/HD95: {lesions}")
    print(f"slowest median: {worst:.2f} s per 240x240x155 case ({'under' if worst < 10 else 'OVER'} the 10 s target)")


if __name__ == "__main__":
    main()
