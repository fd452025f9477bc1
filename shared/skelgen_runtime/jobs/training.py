"""``train.py``'s job: the config (or the resumed run's), devices, data, model, run record, fit."""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelgen_runtime.errors import ConfigError, DatasetError
from skelgen_runtime.project import Project, check_project, load_project
from skelgen_runtime.runs import Run

__all__ = ["Training", "TrainingData"]


def _say(text: str) -> None:
    print(text, flush=True)


@dataclass
class TrainingData:
    """The batches of one training run.

    ``train``: endless, shuffled, augmented ``(inputs, targets)`` global batches; ``val``: one pass
    over the validation split; ``preview``: uncached validation batches for TensorBoard pictures;
    ``steps``: optimisation steps per epoch; ``input_shape``: the model's input without the batch.
    """

    pipeline: Any
    info: Any
    train: Any
    val: Any
    preview: Any
    steps: int
    examples: int
    batch_size: int
    input_shape: tuple[int, ...]


class Training:
    """One training run of a project; each method is one step of ``train.py``, in that order."""

    def __init__(self, root: Path, project: Project, config: Any, run: Run | None, strategy: Any, task: Any = None):
        self.root, self.project, self.config, self.resumed, self.strategy = root, project, config, run, strategy
        self.task = task
        self.data_: TrainingData | None = None
        self.trial: Any = None  # the sweep trial this run is (skelgen_runtime.sweeps.trial), if a sweep started it

    # ------------------------------------------------------------------ 1. config and devices
    @classmethod
    def start(cls, root: Path, args: argparse.Namespace) -> "Training":
        """TensorFlow, the project's hooks, the config (``--config`` + ``--set``, or the resumed run's),
        the distribution strategy (first: before devices are in use), the precision policy (before
        the model is built) and the seed."""
        from skelgen_runtime.startup import import_tensorflow
        from skelgen_runtime.sweeps.trial import TrialLink

        check_project(root)  # before TensorFlow: a script run outside its project is told so at once
        trial = TrialLink.from_env()  # a sweep's trial: it dies with its worker
        if trial is not None:
            trial.attach()
        if not args.resume:  # config mistakes too, against the schema's snapshot (config.precheck)
            from skelgen_runtime.config.precheck import precheck

            precheck(root, args.config, args.overrides)
        _say("loading TensorFlow")
        import_tensorflow()  # without its start-up noise
        import keras

        from skelgen_runtime.config import load_config
        from skelgen_runtime.config.precheck import write_snapshot
        from skelgen_runtime.runs import find_resumable
        from skelgen_runtime.training.distribute import make_strategy
        from skelgen_runtime.training.optim import check_train_keys
        from skelgen_runtime.training.precision import set_precision

        project = load_project(root)
        write_snapshot(root, project.config)  # for the next train.py's check before TensorFlow
        run = find_resumable(root, args.resume) if args.resume else None
        if run is not None:
            config = load_config(run.config_file, schema=project.config)
            # --resume auto with --set: one command line that a scheduler can rerun after any kill, resuming the
            # run it started (the same config) or starting it when the kill came before the run was recorded
            asked = load_config(args.config, args.overrides, schema=project.config) if args.overrides else None
            if asked is not None and (args.resume != "auto" or asked != config):
                raise ConfigError(
                    "--set cannot change the config of a run being resumed; start a new run instead"
                    if args.resume != "auto"
                    else f"the newest unfinished run {run.run_id} was started with another config than --config/--set "
                    f"give; resume it with python train.py --resume {run.run_id}, or start a new run without --resume"
                )
            _say(f"resuming run {run.run_id}")
        else:
            if args.resume == "auto":
                _say("no unfinished run to resume; starting a new run")
            config = load_config(args.config, args.overrides, schema=project.config)
        try:  # core/config.py checks this too; a project's config schema made before it did, not
            check_train_keys(config.train, project.optimizers, project.schedules)
        except ValueError as err:
            raise ConfigError(f"invalid config: {err}") from None
        from skelgen_runtime.tasks.volume_regions import check_region_loss

        check_region_loss(config)  # model.output regions with a softmax loss: before any data or model
        if "mlflow" in getattr(config.train, "trackers", ()):  # before the data: MLflow installed, a usable store
            from skelgen_runtime.tracking import check_tracking

            check_tracking(root)
        strategy = make_strategy(config.train, model_fit=project.framework == "keras")
        set_precision(config.train)
        keras.utils.set_random_seed(config.train.seed)
        job = cls(root, project, config, run, strategy)
        job.trial = trial
        return job

    # ------------------------------------------------------------------ 2. data
    def data(self) -> TrainingData:
        """The dataset's pipeline (``data.dataset``): global batches that the strategy splits
        (``data.batch_size`` per replica), and the steps per epoch."""
        from skelgen_runtime.tasks import get_binding
        from skelgen_runtime.training.distribute import global_batches

        config, strategy = self.config, self.strategy
        pipeline = self.project.open_data(self.root, config.data)
        info = pipeline.info
        self.task = get_binding(self.project.task, info.schema)
        wanted = config.model.num_classes
        if wanted is not None and wanted != info.num_classes:
            raise DatasetError(
                f"model.num_classes is {wanted} but {info.folder / 'dataset_info.json'} has "
                f"{info.num_classes} classes; remove model.num_classes or rebuild the dataset"
            )
        examples = pipeline.examples_per_epoch  # slices or patches of volumes: several per record
        replicas = strategy.num_replicas_in_sync
        data_cfg = global_batches(config.data, strategy, val_examples=info.count("val"))
        batches = examples // data_cfg.batch_size
        if batches == 0:
            raise DatasetError(
                f"the train split has {examples} examples, fewer than one batch of "
                f"{data_cfg.batch_size} (data.batch_size x {replicas} replicas); lower data.batch_size"
            )
        steps = config.train.steps_per_epoch or batches
        _say(
            f"dataset {config.data.dataset}: {examples} training samples, {info.count('val')} validation "
            f"records ({info.schema}), {steps} steps per epoch"
        )
        if config.train.distribute != "default":
            _say(
                f"distribute {config.train.distribute}: {replicas} replicas, global batch {data_cfg.batch_size} "
                f"(data.batch_size {config.data.batch_size} x {replicas})"
            )
        global_pipeline = type(pipeline)(data_cfg, info, pipeline.hooks)  # batches the strategy splits
        train_pipeline = global_pipeline
        if data_cfg.cache and steps * config.train.epochs * data_cfg.batch_size < examples:
            # less than one pass in the whole training: nothing is read twice, and a cache that is never read
            # to its end is discarded by TensorFlow with a warning (cache_dataset_ops.cc) when training ends
            train_pipeline = type(pipeline)(data_cfg.model_copy(update={"cache": False}), info, pipeline.hooks)
        self.data_ = TrainingData(
            pipeline=pipeline,
            info=info,
            train=train_pipeline.train_batches(seed=config.train.seed, repeat=True),
            val=global_pipeline.val_batches("val"),
            # a few validation examples pictured with their predictions (uncached: a cache must be read whole)
            preview=pipeline.val_batches("val", cache=False),
            steps=steps,
            examples=examples,
            batch_size=data_cfg.batch_size,
            input_shape=tuple(pipeline.input_shape),
        )
        return self.data_

    def _data(self) -> TrainingData:
        if self.data_ is None:
            raise RuntimeError("call Training.data() first")
        return self.data_

    # ------------------------------------------------------------------ 3. model, optimizer, metrics
    def scope(self) -> AbstractContextManager:
        """The strategy's scope: variables made inside are replicated on every device."""
        return self.strategy.scope()

    def model(self) -> Any:
        """``model.name`` from the project's models, with float32 outputs under mixed precision."""
        from skelgen_runtime.tasks.volume_regions import model_outputs
        from skelgen_runtime.training.precision import float32_outputs

        data = self._data()
        outputs = model_outputs(self.config, data.info)  # the classes, or the regions (model.output: regions)
        model = self.project.build_model(self.config.model, num_classes=outputs, input_shape=data.input_shape)
        model = float32_outputs(model)
        _say(f"model {self.config.model.name}: {model.count_params():,} parameters, input {data.input_shape}")
        return model

    def optimizer(self) -> Any:
        """``train.optimizer`` with the learning rate of ``train.lr_schedule`` (``core/optimizers.py``)."""
        from skelgen_runtime.training.optim import build_optimizer

        return build_optimizer(self.config.train, self._data().steps, self.project.optimizers, self.project.schedules)

    def metrics(self) -> list:
        """The metrics logged per epoch: ``train.metrics`` from the project's registry (``core/metrics.py``),
        checked to include the task's monitor; the task's own for a project without them."""
        from skelgen_runtime.training.metrics import build_metrics

        info, names = self._data().info, getattr(self.config.train, "metrics", None)
        if self.project.metrics is None or names is None:
            return self.task.train_metrics(self.config, info)
        return build_metrics(names, self.project.metrics, self.config, info, self.task.MONITOR)

    def loss(self) -> Any:
        """``train.loss`` from the project's losses."""
        return self.project.build_loss(self.config, self._data().info)

    # ------------------------------------------------------------------ 4. the run record
    def record(self) -> Run:
        """``logs/RUN`` and ``models/RUN`` of a new run (or the resumed run's); on a multi-worker
        cluster only the chief writes them, the other workers a temporary copy."""
        from skelgen_runtime.config import dump_config
        from skelgen_runtime.runs import new_run
        from skelgen_runtime.training.distribute import describe, is_chief, worker_run

        config, data, run = self.config, self._data(), self.resumed
        if not is_chief(self.strategy):
            run = worker_run(self.strategy, run)
        elif run is not None:
            run.claim()  # a run that another process trains is not resumed beside it
            from skelgen_runtime.files import remove_leftovers

            for folder in (run.log_dir, run.model_dir, run.checkpoint_dir, run.backup_dir):  # a kill mid-write's
                remove_leftovers(folder)
        else:
            run = new_run(
                self.root,
                config.experiment,
                dump_config(config),
                config=config,
                seed=config.train.seed,
                dataset_info=data.info.folder / "dataset_info.json",
                monitor=self.task.MONITOR,
                monitor_mode=self.task.MONITOR_MODE,
            )
        run.update_record(distribute=describe(self.strategy), global_batch_size=data.batch_size)
        if self.trial is not None and is_chief(self.strategy):
            self.trial.tag(run)  # run.json names the sweep and trial, the trial the run
        _say(f"run {run.run_id}")
        _say(f"  logs:   {run.log_dir}\n  models: {run.model_dir}")
        return run

    # ------------------------------------------------------------------ 5. fit
    def fit(self, model: Any, run: Run, *, optimizer: Any, loss: Any, metrics: list, steps: Any = None) -> Run:
        """Train ``train.epochs`` epochs with ``model.fit`` or the custom loop (``core/steps.py``):
        checkpoints, resume state, ``metrics.csv``, TensorBoard and Ctrl-C handling included.

        ``steps``: a loop of your own (any framework): an object with ``train_step``/``val_step``
        and, optionally, ``state`` to save for resume (:mod:`skelgen_runtime.training.steps`); the
        custom loop runs it and keeps the run record as for the project's own steps.
        """
        tracker = self._tracker(run)  # MLflow (train.trackers), ended with the run however it ends
        try:
            return self._fit(model, run, tracker, optimizer=optimizer, loss=loss, metrics=metrics, steps=steps)
        finally:
            if tracker is not None:
                tracker.close()

    def _tracker(self, run: Run) -> Any:
        """The run's MLflow run if ``train.trackers`` lists mlflow (the chief's only), else None."""
        from skelgen_runtime.training.distribute import is_chief

        if "mlflow" not in getattr(self.config.train, "trackers", ()) or not is_chief(self.strategy):
            return None
        from skelgen_runtime.tracking import MlflowRun
        from skelgen_runtime.training.summaries import flatten

        return MlflowRun.open(self.root, run, flatten(self.config.model_dump(mode="json")))

    def _after_epoch(self, tracker: Any) -> Any:
        """The loops' hook once an epoch is saved: its row to MLflow, then the sweep's pruner (True: stop)."""
        hooks = [hook for hook in (getattr(tracker, "after_epoch", None), getattr(self.trial, "report", None)) if hook]
        if not hooks:
            return None

        def after_epoch(epoch: int, logs: dict) -> bool:
            stop = False
            for hook in hooks:
                stop = bool(hook(epoch, logs)) or stop
            return stop

        return after_epoch

    def _fit(self, model: Any, run: Run, tracker: Any, *, optimizer: Any, loss: Any, metrics: list, steps: Any) -> Run:
        from skelgen_runtime.training.summaries import Preview, flatten

        config, data, task = self.config, self._data(), self.task
        if self._finish_trained(model, run):
            return run
        if steps is None and self.project.framework == "keras":
            from skelgen_runtime.training import keras_fit as trainer

            extra: dict[str, Any] = {}
        else:
            from skelgen_runtime.training import custom_loop as trainer  # type: ignore[no-redef]

            if steps is None:
                assert self.project.steps is not None  # Project checks that a tf project names its steps
                steps = self.project.steps(model=model, optimizer=optimizer, loss=loss, metrics=metrics, config=config)
            extra = {"steps": steps}
        from skelgen_runtime.errors import DiskFullError
        from skelgen_runtime.records.damage import explain_damaged_shards
        from skelgen_runtime.space import check_room, space_for
        from skelgen_runtime.startup import native_log_filter

        # what the run writes: last and best weights, two resume states with the optimizer's slots, final.keras
        needed, what, rerun = 10 * 4 * model.count_params(), f"training run {run.run_id}", "resume it with "
        rerun += f"python train.py --resume {run.run_id}"
        try:
            check_room(run.model_dir, needed, what, rerun=rerun)
        except DiskFullError as err:  # before the first epoch: the run is recorded failed, and resumable
            run.set_status("failed", reason=str(err))
            run.release()
            raise
        room = space_for(run.model_dir, needed, what, rerun=rerun, check=False)
        # TensorFlow's known harmless warnings (startup.KNOWN_NOISE) stay off the terminal; a damaged shard is named
        with room, native_log_filter(), explain_damaged_shards(data.info, ["train", "val"]):
            trainer.fit(
                model,
                data.train,
                data.val,
                run,
                optimizer=optimizer,
                loss=loss,
                metrics=metrics,
                epochs=config.train.epochs,
                steps_per_epoch=data.steps,
                monitor=task.MONITOR,
                monitor_mode=task.MONITOR_MODE,
                hparams=flatten(config.model_dump(mode="json")),
                strategy=self.strategy,
                jit_compile=config.train.jit_compile,
                freeze_backbone_epochs=config.train.freeze_backbone_epochs,
                backbone_lr_multiplier=config.train.backbone_lr_multiplier,
                preview=Preview(task.preview, data.preview, config, data.info),
                after_epoch=self._after_epoch(tracker),
                **extra,
            )
            if self.strategy is not None and self.strategy.num_replicas_in_sync > 1:
                import gc  # an epoch iterator kept by a reference cycle ends here, its shard reads' notice filtered

                gc.collect()
        if run.status == "pruned":
            _say(f"run {run.run_id} pruned by sweep {self.trial.study} (trial {self.trial.number})")
            return run
        _say(f"finished run {run.run_id}: model at {run.final_model}")
        self._say_best(run)
        return run

    def _say_best(self, run: Run) -> None:
        """The best validation value and its epoch, and the command that evaluates the run."""
        from skelgen_runtime.run_summary import best_of, read_metrics

        monitor, mode = self.task.MONITOR, self.task.MONITOR_MODE
        best, epoch = best_of(read_metrics(run), monitor, mode)
        if best is not None:
            _say(f"best {monitor} {best:.4f} at epoch {epoch} (models/{run.run_id}/checkpoints/best.weights.h5)")
        _say(f"next: python evaluate.py --run {run.run_id}")

    def _finish_trained(self, model: Any, run: Run) -> bool:
        """A resumed run that had trained every epoch and was stopped before it was marked complete (its resume
        state already gone): write the final model from the last epoch's weights unless ``final.keras`` is
        there (written whole, so it is the final model), and mark it complete, instead of training again.
        True if that was the case."""
        last = run.checkpoint_dir / "last.weights.h5"
        done = int(run.record().get("epochs_done", 0))
        final = run.final_model.is_file()
        if self.resumed is None or done < self.config.train.epochs or not (final or last.is_file()):
            return False
        from skelgen_runtime.training.control import finish
        from skelgen_runtime.training.keras_fit import save_model

        if not final:
            model.load_weights(str(last))
            save_model(model, run.final_model)
        finish(run, monitor=self.task.MONITOR)
        how = "its final model was written" if final else f"wrote its final model from {last.name}"
        _say(f"run {run.run_id} had trained all {done} epochs: {how}")
        _say(f"finished run {run.run_id}: model at {run.final_model}")
        self._say_best(run)
        return True
