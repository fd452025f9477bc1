"""Train a model; every run gets logs/RUN/ (config, metrics.csv, TensorBoard) and models/RUN/.

    python train.py --config configs/demo.yaml --set train.epochs=5
    python train.py --resume auto          # continue the newest unfinished run
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # hide TensorFlow's INFO start-up lines
sys.path.insert(0, str(ROOT))

from skelgen_runtime.errors import ConfigError, DatasetError, exit_on_error  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml",
                        help="experiment config (default: configs/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--resume", metavar="auto|RUN",
                        help="continue an interrupted run: 'auto' picks the newest unfinished one")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    with exit_on_error():
        from skelgen_runtime.config import dump_config, load_config
        from skelgen_runtime.runs import find_resumable, new_run
        from datasets.build_data import TASK

        run = find_resumable(ROOT, args.resume) if args.resume else None
        if run is not None:
            if args.overrides:
                raise ConfigError("--set cannot change the config of a run being resumed; start a new run instead")
            config = load_config(run.config_file, task=TASK)
            print(f"resuming run {run.run_id}", flush=True)
        else:
            if args.resume == "auto":
                print("no unfinished run to resume; starting a new run", flush=True)
            config = load_config(args.config, args.overrides, task=TASK)

        import keras

        import core
        from datasets import data_generator
        from skelgen_runtime.tasks import get_task
        from skelgen_runtime.training import keras_fit as trainer

        task = get_task(TASK)
        keras.utils.set_random_seed(config.train.seed)
        info = data_generator.dataset_info(config.data)
        num_classes = info.num_classes
        if config.model.num_classes is not None and config.model.num_classes != num_classes:
            raise DatasetError(
                f"model.num_classes is {config.model.num_classes} but {info.folder / 'dataset_info.json'} "
                f"has {num_classes} classes; remove model.num_classes or rebuild the dataset"
            )
        batches = info.count("train") // config.data.batch_size
        if batches == 0:
            raise DatasetError(f"the train split has {info.count('train')} examples, fewer than one batch "
                               f"of {config.data.batch_size}; lower data.batch_size")
        steps = config.train.steps_per_epoch or batches
        train_ds = data_generator.train_dataset(config.data, info, seed=config.train.seed, repeat=True)
        val_ds = data_generator.eval_dataset(config.data, info, split="val")

        height, width = config.data.image_size
        model = core.build_model(config.model, num_classes=num_classes, input_shape=(height, width, 3))
        if run is None:
            run = new_run(ROOT, config.experiment, dump_config(config))
        print(f"run {run.run_id}", flush=True)
        print(f"  logs:   {run.log_dir}\n  models: {run.model_dir}", flush=True)
        trainer.fit(
            model, train_ds, val_ds, run,
            optimizer=trainer.make_optimizer(config.train, steps),
            loss=task.loss(config, info),
            metrics=task.train_metrics(config, info),
            epochs=config.train.epochs,
            steps_per_epoch=steps,
            monitor=task.MONITOR,
            monitor_mode=task.MONITOR_MODE,
        )
        print(f"finished run {run.run_id}: model at {run.final_model}", flush=True)


if __name__ == "__main__":
    main()
