"""Evaluate a trained run on a split; writes logs/RUN/eval_SPLIT.json and prints a table.

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).

    python evaluate.py --run latest --split val
    python evaluate.py --run latest --weights final   # the model as it was at the end of training
"""

from __future__ import annotations

import argparse
import os
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TensorFlow's INFO start-up lines
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import DatasetError, exit_on_error  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="latest", help="run id (or unique prefix), or 'latest' (default)")
    parser.add_argument("--split", default="val", help="labelled split to score (default: val)")
    parser.add_argument("--weights", default="best",
                        help="best (default: the checkpoint with the best validation score) or final (final.keras)")
    args = parser.parse_args(argv)
    with exit_on_error():
        from skelgen_runtime.startup import import_tensorflow

        import_tensorflow()  # without its start-up noise
        import core  # registers the project's own layers, so that saved models load
        from core.config import Config
        from datasets.build_data import TASK
        from datasets.pipelines import open_pipeline
        from skelgen_runtime.config import load_config
        from skelgen_runtime.records.writer import atomic_write_text
        from skelgen_runtime.runs import find_run
        from skelgen_runtime.serving import check_weights, load_trained
        from skelgen_runtime.tasks import get_binding
        from skelgen_runtime.training.summaries import record_evaluation

        check_weights(args.weights)
        run = find_run(ROOT, args.run)
        config = load_config(run.config_file, schema=Config)
        pipeline, info = open_pipeline(config.data)
        task = get_binding(TASK, info.schema)
        if not info.is_labelled(args.split):
            raise DatasetError(f"split {args.split!r} has no labels to evaluate against")
        trained = load_trained(run, args.weights, monitor=task.MONITOR)
        trained.announce()
        batches = pipeline.eval_dataset(config.data, info, split=args.split, for_keras=False)
        scores = task.evaluate(trained.model, batches, config, info)
        result = {"run": run.run_id, "split": args.split, "weights": trained.weights,
                  "examples": info.count(args.split), **scores}
        out = run.log_dir / f"eval_{args.split}.json"
        atomic_write_text(out, json.dumps(result, indent=2))
        extra = task.write_artifacts(result, info, run.log_dir, args.split)  # pictures of the scores
        record_evaluation(run, args.split, result, extra)  # TensorBoard: eval/SPLIT/* beside the curves
        print(f"run {run.run_id}, split {args.split} ({result['examples']} images)")
        print(task.report(result, info))
        print(f"wrote {', '.join(str(p) for p in [out, *extra])}")


if __name__ == "__main__":
    main()
