"""The jobs on a finished run: ``evaluate.py``, ``predict.py`` and ``export.py``."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from skelgen_runtime._text import count, listing
from skelgen_runtime.errors import BadExampleError, DatasetError, RunError, UserInputError
from skelgen_runtime.files import publish_dir
from skelgen_runtime.options import check_writable
from skelgen_runtime.project import Project, check_project, load_project
from skelgen_runtime.runs import Run, now_iso

__all__ = ["TrainedRun", "PREDICT_MANIFEST", "POSTPROCESSING"]

#: what ``predict.py`` writes beside its predictions: the run, the weights, the inputs it skipped
PREDICT_MANIFEST = "predict.json"
#: the post-processing ``evaluate.py --split val`` chose for a run (volumes), in ``logs/RUN/``
POSTPROCESSING = "postprocessing.json"


def _check_output(output: Path) -> None:
    """``predict.py --output``: a new folder, an empty one, or one an earlier ``predict.py`` wrote."""
    if output.exists() and not output.is_dir():
        raise UserInputError(f"--output {output} is a file; name a folder for the predictions (it is created)")
    if output.is_dir():
        others = sorted(p.name for p in output.iterdir())
        if others and PREDICT_MANIFEST not in others:
            raise UserInputError(
                f"--output {output} holds files predict.py did not write ({listing(others, 3)}); "
                "name a new or empty folder"
            )
    check_writable(output, "--output")


def _run_dataset(root: Path, run: Run) -> Any:
    """The ``dataset_info.json`` of the dataset the run's config names (``data.dataset``), read without TensorFlow."""
    import yaml

    from skelgen_runtime.layout import ProjectLayout
    from skelgen_runtime.records.info import load_info

    try:
        config = yaml.safe_load(run.config_file.read_text())
        name = config["data"]["dataset"]
    except (OSError, yaml.YAMLError, TypeError, KeyError) as err:
        raise RunError(
            f"{run.config_file} does not name the run's dataset (data.dataset): {type(err).__name__}: {err}"
        ) from None
    return load_info(ProjectLayout(root).tfrecords(str(name)))


class _Sized:
    """An iterable that knows how many items it yields (``total``, for a progress bar)."""

    def __init__(self, items: Iterable[Any], total: int) -> None:
        self.items, self.total = items, total

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def _progress(items: Iterable[Any], total: int | None, what: str) -> Iterator[Any]:
    """``items`` as they come, with a bar on stderr when it is a terminal (tqdm's ``disable=None``), gone at the end."""
    from tqdm import tqdm

    with tqdm(items, total=total, desc=what, disable=None, leave=False, dynamic_ncols=True) as bar:
        yield from bar


class TrainedRun:
    """A run's config, dataset and task binding, and its weights (``--run``, ``--weights``).

    :meth:`open` reads only the run's record and its dataset's ``dataset_info.json``; TensorFlow, the
    project's hooks, the config and the model load when first needed, after each method has checked
    what its options name (weights, split, input, output, format), so a mistake costs no start-up.
    """

    def __init__(
        self, root: Path, run: Run, info: Any, weights: str, tta: bool = False, members: Sequence[Run] = ()
    ) -> None:
        self.root, self.run, self.info, self.weights, self.tta = root, run, info, weights, tta
        #: the other runs of an ensemble (``--run A,B,C``): their softmax probabilities are averaged with the run's
        self.members = list(members)
        self._loaded: tuple[Project, Any, Any, Any] | None = None
        self._trained: Any = None
        #: inputs ``--skip-bad`` left out of the last :meth:`inputs`, as ``(file, reason)``
        self.skipped: list[tuple[str, str]] = []

    @classmethod
    def open(cls, root: Path, *, run: str = "latest", weights: str = "best", tta: bool = False) -> "TrainedRun":
        """The run (an id, a unique prefix or ``latest``) and its ``best`` or ``final`` weights; the dataset
        named by the run's config (its ``dataset_info.json``). ``tta``: volumes are predicted as the mean over
        every mirroring (``eval.tta``; refused for other datasets). Nothing here imports TensorFlow."""
        from skelgen_runtime.options import check_weights
        from skelgen_runtime.runs import find_run

        check_weights(weights)
        check_project(root)
        specs = [s.strip() for s in run.split(",")]
        if not all(specs):
            raise UserInputError(f"--run {run!r} names an empty run; give run ids separated by commas: --run A,B,C")
        runs = [find_run(root, spec) for spec in specs]
        found = runs[0]
        info = _run_dataset(root, found)
        if tta and info.schema != "volume_segmentation":
            raise UserInputError(
                f"--tta is for volume datasets (BraTS): run {found.run_id} trained on {info.folder.parent.name} "
                f"({info.schema} records)"
            )
        if len(runs) > 1:
            from skelgen_runtime.jobs.ensembles import check_ensemble

            check_ensemble(runs, info, [_run_dataset(root, r) for r in runs[1:]])
        return cls(root, found, info, weights, tta, runs[1:])

    def _load(self) -> tuple[Project, Any, Any, Any]:
        """TensorFlow (without its start-up noise), the project's hooks (its custom layers registered, so the
        model loads), the run's config validated by the project's schema, the pipeline and the task binding."""
        if self._loaded is None:
            from skelgen_runtime.startup import import_tensorflow

            import_tensorflow()
            from skelgen_runtime.config import load_config
            from skelgen_runtime.tasks import get_binding

            project = load_project(self.root)
            config = load_config(self.run.config_file, schema=project.config)
            if self.tta:  # eval.tta, as if the run's config had said it
                config = config.model_copy(update={"eval": config.eval.model_copy(update={"tta": True})})
            evaluation = getattr(config, "eval", None)
            if evaluation is not None and evaluation.postprocess is None and not self.members:
                # what evaluate.py chose on val for this run alone, unless the config names its own
                chosen = self.chosen_postprocessing()
                if chosen is not None:
                    config = config.model_copy(update={"eval": evaluation.model_copy(update={"postprocess": chosen})})
            pipeline = project.open_data(self.root, config.data)
            self.info = pipeline.info
            self._loaded = (project, config, pipeline, get_binding(project.task, self.info.schema))
        return self._loaded

    def chosen_postprocessing(self) -> dict[str, float] | None:
        """The plan ``evaluate.py --split val`` recorded for this run (``logs/RUN/postprocessing.json``); None if none.

        Raises:
            RunError: the file is there but unreadable, naming it.
        """
        path = self.run.log_dir / POSTPROCESSING
        if not path.is_file():
            return None
        try:
            plan = json.loads(path.read_text())["plan"]
            return {str(k): float(v) for k, v in plan.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise RunError(
                f"{path} is damaged ({type(err).__name__}: {err}); run evaluate.py --run {self.run.run_id} "
                "--split val again to choose the post-processing anew, or delete the file"
            ) from None

    @property
    def run_ids(self) -> list[str]:
        """The run's id, then its ensemble members' (``--run A,B,C``)."""
        return [self.run.run_id, *(r.run_id for r in self.members)]

    @property
    def project(self) -> Project:
        return self._load()[0]

    @property
    def config(self) -> Any:
        return self._load()[1]

    @property
    def pipeline(self) -> Any:
        return self._load()[2]

    @property
    def task(self) -> Any:
        return self._load()[3]

    @property
    def trained(self) -> Any:
        """The loaded model and which weights it holds (:class:`skelgen_runtime.serving.Trained`)."""
        if self._trained is None:
            task = self.task  # TensorFlow first, without its start-up noise
            from skelgen_runtime.serving import load_trained

            self._trained = load_trained(self.run, self.weights, monitor=task.MONITOR)
            self._trained.announce()
            if self.members:
                from skelgen_runtime.serving.ensemble import ensemble

                members = [self._trained]
                for run in self.members:
                    members.append(load_trained(run, self.weights, monitor=task.MONITOR))
                    members[-1].announce()
                from skelgen_runtime.tasks.volume_regions import output_mode

                activation = "sigmoid" if output_mode(self.config) == "regions" else "softmax"
                self._trained = ensemble(members, self.run_ids, activation)
                print(f"ensemble of {len(members)} runs: their softmax probabilities averaged", flush=True)
        return self._trained

    def _check_split(self, split: str, *, labelled: bool = False) -> None:
        self.info.count(split)  # a split dataset_info.json does not have: named, with the ones it has
        if labelled and not self.info.is_labelled(split):
            shown = [s for s in self.info.data["splits"] if self.info.is_labelled(s)]
            raise DatasetError(f"split {split!r} has no labels to evaluate against; labelled: {', '.join(shown)}")

    # ------------------------------------------------------------------ evaluate.py
    def evaluate(self, split: str = "val", *, predictions: Path | None = None) -> tuple[dict[str, Any], list[Path]]:
        """Score ``split``; write ``logs/RUN/eval_SPLIT.json`` (``eval_SPLIT-FINGERPRINT.json`` when the dataset
        was rebuilt since the run trained on it), the task's pictures of the scores and TensorBoard's
        ``eval/SPLIT/*``. The file records the weights and the dataset scored. Returns the scores and the
        files written. ``predictions``: NIfTI files scored instead of the model (``jobs.evaluated``)."""
        from skelgen_runtime.jobs import evaluated

        self._check_split(split, labelled=True)  # before TensorFlow
        evaluated.check_sources(self, split, predictions)
        dataset, label = self._evaluated_data(split)
        label = evaluated.label(label, predictions, self.run_ids[1:])  # not the run's own scores: named beside them
        from skelgen_runtime.records.damage import explain_damaged_shards
        from skelgen_runtime.records.writer import atomic_write_text

        with explain_damaged_shards(self.info, [split]):  # TensorFlow loads here, its start-up lines filtered
            if predictions is not None:
                scores = evaluated.score_files(self, split, predictions, _progress)
            else:
                batches = _progress(
                    self.pipeline.eval_examples(split), self.pipeline.eval_steps(split), f"evaluating {split}"
                )
                scores = self.task.evaluate(self.trained.model, batches, self.config, self.info)
        result = {
            "run": self.run.run_id,
            "split": split,
            "weights": None if predictions else self.trained.weights,
            **({"predictions": str(predictions)} if predictions else {}),
            "examples": self.info.count(split),
            "dataset": dataset,
            **({"tta": True} if self.tta else {}),
            **({"ensemble": self.run_ids} if self.members else {}),
            **scores,
        }
        out = self.run.log_dir / f"eval_{label}.json"
        atomic_write_text(out, json.dumps(result, indent=2))
        extra = self.task.write_artifacts(result, self.info, self.run.log_dir, label)
        if split == "val" and label == split and "postprocessing" in result:  # chosen on validation: the run's
            chosen = {
                "chosen_on": split,
                "weights": self.trained.weights,
                "created": now_iso(),
                **result["postprocessing"],
            }
            extra.append(self.run.log_dir / POSTPROCESSING)
            atomic_write_text(extra[-1], json.dumps(chosen, indent=2))
        from skelgen_runtime.training.summaries import record_evaluation  # (imports TensorFlow: after it loaded)

        record_evaluation(self.run, label, result, extra)
        from skelgen_runtime.tracking import log_run_files

        log_run_files(self.root, self.run, [out, *extra], folder=f"eval_{label}", scores=scores)  # a tracked run's
        return result, [out, *extra]

    def _evaluated_data(self, split: str) -> tuple[dict[str, Any], str]:
        """What the evaluation scores (the dataset's fingerprint, and whether the run trained on these very
        records) and the name its files take: ``SPLIT``, or ``SPLIT-FINGERPRINT`` when the dataset was rebuilt
        since, so that the scores on the data it trained on are kept, not overwritten."""
        import sys

        from skelgen_runtime.provenance import dataset_fingerprint
        from skelgen_runtime.records.info import INFO_FILE

        now = dataset_fingerprint(self.info.folder / INFO_FILE, root=self.root) or {}
        trained = self.run.record().get("dataset") or {}
        current, then = now.get("fingerprint"), trained.get("fingerprint") if isinstance(trained, dict) else None
        as_trained = None if current is None or then is None else current == then
        described = {"name": now.get("name"), "fingerprint": current, "as_trained": as_trained}
        if as_trained is not False or current is None or then is None:
            return described, split
        label = f"{split}-{current.split(':')[-1][:8]}"
        print(
            f"note: {now.get('info')} changed since run {self.run.run_id} trained on it ({then[:15]}..., now "
            f"{current[:15]}...): the scores go to eval_{label}.json, beside any eval_{split}.json of the data it "
            "trained on",
            file=sys.stderr,
        )
        return described, label

    def report(self, result: dict[str, Any]) -> str:
        """The task's table of ``result`` for the terminal."""
        return self.task.report(result, self.info)

    # ------------------------------------------------------------------ predict.py
    def inputs(self, *, split: str = "pred", path: Path | None = None, skip_bad: bool = False) -> Iterable[Any]:
        """What to predict: the images of ``path`` (a file or a folder), else the records of ``split``.

        Checked now (the path exists, the split is in the dataset), read when iterated. An unreadable
        input stops the prediction naming the file, unless ``skip_bad``: then it is left out with a
        ``warning:`` line and listed in :attr:`skipped` and in ``predict.json``.
        """
        if path is not None:
            if not path.exists():
                raise UserInputError(f"--input {path} does not exist; name an image file or a folder of images")
            return self._read(path, skip_bad)
        self._check_split(split)
        return _Sized(self._records(split), self.info.count(split))

    def _records(self, split: str) -> Iterator[Any]:
        from skelgen_runtime.records.damage import explain_damaged_shards

        with explain_damaged_shards(self.info, [split]):
            for example in self.pipeline.raw_examples(split):
                yield self.task.predict_item(example, self.info)

    def _read(self, path: Path, skip_bad: bool) -> Iterator[Any]:
        self.skipped = []

        def skip(err: BadExampleError) -> None:
            print(f"warning: skipped {err.path}: {err.reason}", file=sys.stderr, flush=True)
            self.skipped.append((err.path, err.reason))

        try:
            yield from self.task.read_inputs(path, self.info, on_bad=skip if skip_bad else None)
        except BadExampleError as err:
            raise BadExampleError(
                err.path, f"{err.reason}; predict.py --skip-bad leaves unreadable inputs out"
            ) from None

    def predict(self, items: Iterable[Any], output: Path) -> str:
        """Write the task's predictions of ``items`` into the folder ``output``; a one-line summary.

        The predictions are written into a new folder beside ``output`` that takes its place only when all
        are written, with ``predict.json`` (the run, the weights, what was skipped): an interrupted or failed
        prediction leaves ``output`` as it was, and predictions of an earlier ``predict.py`` there are
        replaced whole, never mixed with new ones. A folder holding other files is refused.
        """
        _check_output(output)
        model = self.trained.model
        output.parent.mkdir(parents=True, exist_ok=True)  # checked writable by _check_output
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
        try:
            items = _progress(items, getattr(items, "total", None), "predicting")
            summary = self.task.predict(model, items, self.config, self.info, staging)
            if self.skipped:
                left_out = count(len(self.skipped), "unreadable input")
                print(f"left out {left_out} (--skip-bad), listed in {output / PREDICT_MANIFEST}", flush=True)
            manifest = {
                "run": self.run.run_id,
                "weights": self.trained.weights,
                **({"ensemble": self.run_ids} if self.members else {}),
                **(
                    {"postprocess": plan}
                    if (plan := getattr(getattr(self.config, "eval", None), "postprocess", None))
                    else {}
                ),
                "created": now_iso(),
                "summary": summary,
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            }
            (staging / PREDICT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # write: staged
            publish_dir(staging, output)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return summary

    # ------------------------------------------------------------------ export.py
    def export(self, fmt: str, out: Path | None = None) -> Path:
        """The serving model (raw uint8 images in, predictions out; float32 also for mixed-precision
        runs) as ``fmt`` in ``out`` (default ``models/RUN/export/FORMAT-WEIGHTS``), checked against
        TensorFlow where the format allows."""
        from skelgen_runtime.options import check_export_dir, check_format, default_export_dir

        check_format(fmt)
        out = check_export_dir(out or default_export_dir(self.run, fmt, self.weights))
        self._load()  # TensorFlow without its start-up noise, before serving imports it
        from skelgen_runtime.serving import export_model

        trained = self.trained.in_float32()
        serve = self.task.serving_function(trained.model, self.config, self.info)
        about = {
            "run": self.run.run_id,
            "task": self.project.task,
            "schema": self.info.schema,
            "image_size": list(self.config.data.image_size),
        }
        from skelgen_runtime.space import space_for

        # the serving model holds the weights once, plus its graph; the staging folder sits beside the output
        needed = 2 * 4 * trained.model.count_params()
        with space_for(out.parent, needed, f"exporting run {self.run.run_id} as {fmt}"):
            export_model(serve, trained, fmt, out, labels=self.info.label_map.to_json(), about=about)
        from skelgen_runtime.tracking import log_run_files

        log_run_files(self.root, self.run, [out], folder="exports")  # a tracked run's MLflow run gets it too
        return out
