"""Predict with a trained run (segmentation: a label PNG and an overlay PNG per image;
classification: predictions.csv and a labelled picture per image; detection: COCO-format
predictions.json and a picture with boxes per image).

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).

    python predict.py --run latest --split pred --output predictions/
    python predict.py --run latest --input photo.jpg --output predictions/
    python predict.py --run latest --weights final --output predictions/   # final.keras, not the best checkpoint

Images go through the same function as the model that export.py writes, so both predict the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TensorFlow's INFO start-up lines
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import exit_on_error  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="latest", help="run id (or unique prefix), or 'latest' (default)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", default="pred", help="split of the run's dataset (default: pred)")
    source.add_argument("--input", type=Path, help="an image file or a folder of images instead of a split")
    parser.add_argument("--output", type=Path, required=True, help="folder for the PNGs (created)")
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
        from skelgen_runtime.runs import find_run
        from skelgen_runtime.serving import check_weights, load_trained
        from skelgen_runtime.tasks import get_binding

        check_weights(args.weights)
        run = find_run(ROOT, args.run)
        config = load_config(run.config_file, schema=Config)
        pipeline, info = open_pipeline(config.data)
        task = get_binding(TASK, info.schema)
        trained = load_trained(run, args.weights, monitor=task.MONITOR)
        trained.announce()
        if args.input is not None:
            items = task.read_inputs(args.input, info)
        else:
            items = (task.predict_item(e, info) for e in pipeline.raw_dataset(info, args.split))
        args.output.mkdir(parents=True, exist_ok=True)
        summary = task.predict(trained.model, items, config, info, args.output)
        print(f"run {run.run_id}: {summary} to {args.output}")


if __name__ == "__main__":
    main()
