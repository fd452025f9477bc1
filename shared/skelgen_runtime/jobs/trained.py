"""The jobs on a finished run: ``evaluate.py``, ``predict.py`` and ``export.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.project import Project, load_project
from skelgen_runtime.runs import Run

__all__ = ["TrainedRun"]


class TrainedRun:
    """A run's config, dataset and task binding, and its weights (``--run``, ``--weights``), loaded
    when first needed so that a wrong split or format is reported before the model loads."""

    def __init__(
        self, root: Path, project: Project, run: Run, config: Any, pipeline: Any, info: Any, task: Any, weights: str
    ) -> None:
        self.root, self.project, self.run, self.config = root, project, run, config
        self.pipeline, self.info, self.task, self.weights = pipeline, info, task, weights
        self._trained: Any = None

    @property
    def trained(self) -> Any:
        """The loaded model and which weights it holds (:class:`skelgen_runtime.serving.Trained`)."""
        if self._trained is None:
            from skelgen_runtime.serving import load_trained

            self._trained = load_trained(self.run, self.weights, monitor=self.task.MONITOR)
            self._trained.announce()
        return self._trained

    @classmethod
    def open(cls, root: Path, *, run: str = "latest", weights: str = "best") -> "TrainedRun":
        """TensorFlow, the project's hooks (its custom layers registered, so the model loads), the
        run (an id, a unique prefix or ``latest``), its config and dataset, and its ``best`` or
        ``final`` weights."""
        from skelgen_runtime.serving import check_weights

        check_weights(weights)  # before TensorFlow: a typo costs no start-up
        from skelgen_runtime.startup import import_tensorflow

        import_tensorflow()  # without its start-up noise
        from skelgen_runtime.config import load_config
        from skelgen_runtime.runs import find_run
        from skelgen_runtime.tasks import get_binding

        project = load_project(root)
        found = find_run(root, run)
        config = load_config(found.config_file, schema=project.config)
        pipeline = project.open_data(root, config.data)
        info = pipeline.info
        return cls(root, project, found, config, pipeline, info, get_binding(project.task, info.schema), weights)

    # ------------------------------------------------------------------ evaluate.py
    def evaluate(self, split: str = "val") -> tuple[dict[str, Any], list[Path]]:
        """Score ``split``; write ``logs/RUN/eval_SPLIT.json`` (``eval_SPLIT-FINGERPRINT.json`` when the dataset
        was rebuilt since the run trained on it), the task's pictures of the scores and TensorBoard's
        ``eval/SPLIT/*``. The file records the weights and the dataset scored. Returns the scores and the
        files written."""
        from skelgen_runtime.records.writer import atomic_write_text
        from skelgen_runtime.training.summaries import record_evaluation

        if not self.info.is_labelled(split):
            raise DatasetError(f"split {split!r} has no labels to evaluate against")
        dataset, label = self._evaluated_data(split)
        batches = self.pipeline.eval_examples(split)
        scores = self.task.evaluate(self.trained.model, batches, self.config, self.info)
        result = {
            "run": self.run.run_id,
            "split": split,
            "weights": self.trained.weights,
            "examples": self.info.count(split),
            "dataset": dataset,
            **scores,
        }
        out = self.run.log_dir / f"eval_{label}.json"
        atomic_write_text(out, json.dumps(result, indent=2))
        extra = self.task.write_artifacts(result, self.info, self.run.log_dir, label)
        record_evaluation(self.run, label, result, extra)
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
    def inputs(self, *, split: str = "pred", path: Path | None = None) -> Iterable[Any]:
        """What to predict: the images of ``path`` (a file or a folder), else the records of ``split``."""
        if path is not None:
            return self.task.read_inputs(path, self.info)
        return (self.task.predict_item(e, self.info) for e in self.pipeline.raw_examples(split))

    def predict(self, items: Iterable[Any], output: Path) -> str:
        """Write the task's predictions of ``items`` into ``output`` (created); a one-line summary."""
        output.mkdir(parents=True, exist_ok=True)
        return self.task.predict(self.trained.model, items, self.config, self.info, output)

    # ------------------------------------------------------------------ export.py
    def export(self, fmt: str, out: Path | None = None) -> Path:
        """The serving model (raw uint8 images in, predictions out; float32 also for mixed-precision
        runs) as ``fmt`` in ``out`` (default ``models/RUN/export/FORMAT-WEIGHTS``), checked against
        TensorFlow where the format allows."""
        from skelgen_runtime.serving import check_export_dir, check_format, default_export_dir, export_model

        check_format(fmt)
        out = check_export_dir(out or default_export_dir(self.run, fmt, self.weights))
        trained = self.trained.in_float32()
        serve = self.task.serving_function(trained.model, self.config, self.info)
        about = {
            "run": self.run.run_id,
            "task": self.project.task,
            "schema": self.info.schema,
            "image_size": list(self.config.data.image_size),
        }
        export_model(serve, trained, fmt, out, labels=self.info.label_map.to_json(), about=about)
        return out
