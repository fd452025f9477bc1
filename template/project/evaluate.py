"""Evaluate a trained run on a split; writes logs/RUN/eval_SPLIT.json and prints a table.

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).

    python evaluate.py --run latest --split val
    python evaluate.py --run latest --weights final   # the model as it was at the end of training
    python evaluate.py --run latest --tta            # volumes: the mean over every mirroring of each case
    python evaluate.py --run latest --predictions out/   # volumes: score NIfTI files under the run's rules
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TensorFlow's INFO start-up lines
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import exit_on_error  # noqa: E402
from skelgen_runtime.jobs import TrainedRun, evaluate_arguments  # noqa: E402


def main(argv=None) -> None:
    args = evaluate_arguments(__doc__).parse_args(argv)
    with exit_on_error():
        job = TrainedRun.open(ROOT, run=args.run, weights=args.weights, tta=args.tta)  # the run, its config, dataset
        result, written = job.evaluate(args.split, predictions=args.predictions)  # eval_SPLIT.json, TensorBoard
        print(f"run {job.run.run_id}, split {args.split} ({result['examples']} images)")
        print(job.report(result))
        print(f"wrote {', '.join(str(p) for p in written)}")


if __name__ == "__main__":
    main()
