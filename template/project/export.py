"""Export a trained run for serving: a SavedModel, a TensorFlow Lite or an ONNX model that takes raw images.

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).

    python export.py --run latest --format saved_model         # models/RUN/export/saved_model-best/
    python export.py --run latest --format tflite --out DIR    # DIR/model.tflite
    python export.py --run latest --format tflite --weights final
    python export.py --run latest --format onnx                # model.onnx (pip install 'skelgen-tf[onnx]')

The exported model takes uint8 RGB images of any size and resizes and normalises them itself (a
pretrained backbone's own preprocessing included); its outputs are those of predict.py (the same
function), computed in float32 also for runs trained with train.mixed_precision. README.md ("Serving")
documents the signature; export.json beside the model lists it with the label map.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TensorFlow's INFO start-up lines
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import exit_on_error  # noqa: E402
from skelgen_runtime.jobs import TrainedRun, export_arguments  # noqa: E402


def main(argv=None) -> None:
    args = export_arguments(__doc__).parse_args(argv)
    with exit_on_error():
        job = TrainedRun.open(ROOT, run=args.run, weights=args.weights)  # the run, its config and dataset
        out = job.export(args.format, args.out)  # checked against TensorFlow where the format allows
        print(f"run {job.run.run_id}: exported {args.format} to {out}")


if __name__ == "__main__":
    main()
