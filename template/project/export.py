"""Export a trained run for serving: a SavedModel, a TensorFlow Lite or an ONNX model that takes raw images.

Owner: template. skelgen update brings new versions of this file and keeps your edits (three-way merge).

    python export.py --run latest --format saved_model         # models/RUN/export/saved_model-best/
    python export.py --run latest --format tflite --out DIR    # DIR/model.tflite
    python export.py --run latest --format tflite --weights final
    python export.py --run latest --format onnx                # model.onnx (pip install 'skelgen-tf[onnx]')

The exported model takes uint8 RGB images of any size and resizes and normalises them itself (a
pretrained backbone's own preprocessing included); its outputs are those of predict.py (the same
function), computed in float32 also for runs trained with train.mixed_precision. README.md ("Serving") documents the signature;
export.json beside the model lists it with the label map.
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
    parser.add_argument("--format", required=True, help="saved_model, tflite or onnx")
    parser.add_argument("--weights", default="best",
                        help="best (default: the checkpoint with the best validation score) or final (final.keras)")
    parser.add_argument("--out", type=Path, help="folder to write; must not exist or be empty "
                                                 "(default: models/RUN/export/FORMAT-WEIGHTS)")
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
        from skelgen_runtime.serving import (check_export_dir, check_format, check_weights, default_export_dir,
                                             export_model, load_trained)
        from skelgen_runtime.tasks import get_binding

        check_format(args.format)
        check_weights(args.weights)
        run = find_run(ROOT, args.run)
        out = check_export_dir(args.out or default_export_dir(run, args.format, args.weights))
        config = load_config(run.config_file, schema=Config)
        _, info = open_pipeline(config.data)
        task = get_binding(TASK, info.schema)
        trained = load_trained(run, args.weights, monitor=task.MONITOR)
        trained.announce()
        trained = trained.in_float32()  # a mixed-precision run serves a float32 copy
        serve = task.serving_function(trained.model, config, info)
        about = {"run": run.run_id, "task": TASK, "schema": info.schema, "image_size": list(config.data.image_size)}
        export_model(serve, trained, args.format, out, labels=info.label_map.to_json(), about=about)
        print(f"run {run.run_id}: exported {args.format} to {out}")


if __name__ == "__main__":
    main()
