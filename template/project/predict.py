"""Predict with a trained run (segmentation: a label PNG and an overlay PNG per image;
classification: predictions.csv and a labelled picture per image; detection: COCO-format
predictions.json and a picture with boxes per image).

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).

    python predict.py --run latest --split pred --output predictions/
    python predict.py --run latest --input photo.jpg --output predictions/
    python predict.py --run latest --input photos/ --skip-bad --output predictions/   # unreadable files left out
    python predict.py --run latest --weights final --output predictions/   # final.keras, not the best checkpoint
    python predict.py --run latest --tta --output predictions/   # volumes: the mean over every mirroring

Images go through the same function as the model that export.py writes, so both predict the same.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TensorFlow's INFO start-up lines
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import exit_on_error  # noqa: E402
from skelgen_runtime.jobs import TrainedRun, predict_arguments  # noqa: E402


def main(argv=None) -> None:
    args = predict_arguments(__doc__).parse_args(argv)
    with exit_on_error():
        job = TrainedRun.open(ROOT, run=args.run, weights=args.weights, tta=args.tta)  # the run, its config, dataset
        items = job.inputs(split=args.split, path=args.input, skip_bad=args.skip_bad)  # --input, else the split
        summary = job.predict(items, args.output)
        print(f"run {job.run.run_id}: {summary} to {args.output}")


if __name__ == "__main__":
    main()
