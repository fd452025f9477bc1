"""Seconds to predict one 240x240x155 BraTS case with a 3D U-Net, with and without mirroring (``--tta``).

    python benchmarks/brats_inference.py [--patch 128] [--repeats 1] [--no-tta]

Renders a segmentation project (nothing is downloaded), builds its ``core/unet3d.py`` model as the BraTS 3D
config does (4 modalities, 4 classes, base_filters 16, depth 4, untrained weights: the time does not depend
on them) and times :func:`skelgen_runtime.tasks.windows.sliding_window` on a random case of 155x240x240
voxels: nnU-Net's windows at half-patch steps with Gaussian weights (2x3x3 = 18 windows of 128^3), then
the same with all 8 mirrorings. Prints the seconds of every repeat and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHAPE = (155, 240, 240, 4)  # (D, H, W, C): a case as the records hold it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch", type=int, default=128, help="window side in voxels (default: 128)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2, help="windows per forward pass (data.eval_batch_size)")
    parser.add_argument("--no-tta", action="store_true", help="only the plain windows")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np

    from common import make_project
    from skelgen_runtime.tasks.windows import sliding_window, window_starts

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as work:
        project = make_project(Path(work))
        sys.path.insert(0, str(project))
        from core.unet3d import build_unet3d

        patch = (args.patch,) * 3
        model = build_unet3d((*patch, SHAPE[3]), 4, base_filters=16, depth=4)
        case = np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
        windows = np.prod([len(window_starts(n, p)) for n, p in zip(SHAPE[:3], patch)])
        print(f"model {model.count_params():,} parameters; {windows} windows of {args.patch}^3 per case")
        for tta in [False] if args.no_tta else [False, True]:
            sliding_window(model, case[: args.patch, : args.patch, : args.patch], patch, batch=args.batch, tta=tta)
            seconds = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                sliding_window(model, case, patch, batch=args.batch, tta=tta)
                seconds.append(time.perf_counter() - start)
            shown = ", ".join(f"{s:.1f}" for s in seconds)
            print(f"{'with' if tta else 'without'} TTA: {statistics.median(seconds):.1f} s per case ({shown})")


if __name__ == "__main__":
    main()
