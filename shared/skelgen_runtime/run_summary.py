"""What a finished or running run amounts to, read from its record; and which settings differ between runs.

Reads only files (``run.json``, ``config.yaml``, ``metrics.csv``, ``eval_*.json``): no TensorFlow and
no NumPy, so ``skelgen runs`` stays fast. Epochs are counted from 1 here, as training prints them
(``metrics.csv``'s ``epoch`` column counts from 1; in runs that skelgen 0.2 started, from 0).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from skelgen_runtime.runs import Run

__all__ = [
    "DEFAULT_MONITORS",
    "RunSummary",
    "summarize",
    "read_metrics",
    "flatten",
    "varying_keys",
    "best_of",
    "evaluation_rules",
]

#: the monitor of a run whose record names none: the first of these its metrics.csv has
DEFAULT_MONITORS = (("val_miou", "max"), ("val_accuracy", "max"), ("val_loss", "min"))


@dataclass(frozen=True)
class RunSummary:
    """One run, as ``skelgen runs`` shows it.

    Attributes:
        run_id: the run's folder name.
        status: ``running``, ``interrupted``, ``failed``, ``complete`` (``unknown`` without a status).
        started: ISO time the run started (None if not recorded).
        dataset: the dataset's name (``run.json`` ``dataset.name``, else the config's ``data.dataset``).
        config: the resolved config, flattened to dotted keys (``train.learning_rate``).
        monitor: the validation value that ranks epochs; ``monitor_mode``: ``max`` or ``min``.
        best: the best value of ``monitor`` and ``best_epoch`` its epoch (None without one).
        epochs: the epochs in ``metrics.csv`` (``epochs[i]`` is epoch ``i + 1`` when none is missing).
        final: the last epoch's row of ``metrics.csv`` (``epoch`` counted from 1).
        evaluations: ``{split: {key: value}}``, the top-level numbers of each ``eval_SPLIT.json`` (``SPLIT``
            is ``val``, or ``val-FINGERPRINT`` for an evaluation on a dataset rebuilt since training).
        duration_s: seconds spent in epochs (the sum of ``metrics.csv``'s ``seconds``), None before any.
        evaluated_with: ``{split: {"weights": "best" | "final", "data": "as trained" | "rebuilt" | "unknown",
            "rules": "CHALLENGE, HD95 DEFINITION"}}`` (``rules`` only where the evaluation records them:
            BraTS-style volume scoring).
        problem: why the run's ``run.json`` cannot be read (its status is then ``unknown``), else None.
        sweep: ``{"id": SWEEP, "trial": N}`` when a sweep's trial trained the run, else None.
    """

    run_id: str
    status: str
    started: str | None
    dataset: str | None
    config: dict[str, Any]
    monitor: str | None
    monitor_mode: str | None
    best: float | None
    best_epoch: int | None
    epochs: list[dict[str, float]] = field(repr=False)
    final: dict[str, float]
    evaluations: dict[str, dict[str, Any]]
    duration_s: float | None
    evaluated_with: dict[str, dict[str, str]] = field(default_factory=dict)
    problem: str | None = None
    sweep: dict[str, Any] | None = None

    def curve(self, metric: str) -> list[tuple[int, float]]:
        """``(epoch, value)`` of ``metric`` for every epoch that logged a finite one."""
        return [(int(row["epoch"]), row[metric]) for row in self.epochs if metric in row and math.isfinite(row[metric])]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 2}}`` -> ``{"train.epochs": 2}``; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_metrics(run: Run) -> list[dict[str, float]]:
    """The rows of ``metrics.csv`` as numbers, ``epoch`` counted from 1; empty cells are left out."""
    try:
        with open(run.metrics_csv, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    base = run.epoch_base
    parsed = []
    for row in rows:
        values: dict[str, float] = {}
        for key, text in row.items():
            try:
                values[key] = float(text)
            except (TypeError, ValueError):
                continue
        if "epoch" in values:
            values["epoch"] = int(values["epoch"]) + 1 - base
            parsed.append(values)
    return parsed


def best_of(epochs: Sequence[Mapping[str, float]], monitor: str, mode: str) -> tuple[float | None, int | None]:
    """The best finite ``monitor`` value over ``epochs`` (``max`` or ``min`` by ``mode``) and its epoch."""
    scored = [(row[monitor], int(row["epoch"])) for row in epochs if monitor in row and math.isfinite(row[monitor])]
    if not scored:
        return None, None
    sign = -1.0 if mode == "min" else 1.0
    value, epoch = max(scored, key=lambda pair: (sign * pair[0], -pair[1]))  # ties: the earliest epoch
    return value, epoch


def _monitor(record: Mapping[str, Any], columns: set[str]) -> tuple[str | None, str | None]:
    if record.get("monitor"):
        return record["monitor"], record.get("monitor_mode") or "max"
    for name, mode in DEFAULT_MONITORS:
        if name in columns:
            return name, mode
    return None, None


def _evaluations(run: Run) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """The numbers of each ``eval_*.json`` and what each scored (the weights, the data as trained or not)."""
    found: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, str]] = {}
    for path in sorted(run.log_dir.glob("eval_*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            split = path.stem[len("eval_") :]
            found[split] = {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            dataset = data.get("dataset")
            as_trained = dataset.get("as_trained") if isinstance(dataset, dict) else None
            data_state = "as trained" if as_trained is True else "rebuilt" if as_trained is False else "unknown"
            sources[split] = {"weights": str(data.get("weights", "unknown")), "data": data_state}
            rules = evaluation_rules(data)
            if rules:
                sources[split]["rules"] = rules
    return found, sources


def evaluation_rules(evaluation: Mapping[str, Any]) -> str | None:
    """What rules scored an ``eval_*.json``, e.g. ``"GLI, HD95 surface-distance"`` (volume evaluations
    record them as ``scored_as``; a 2025 edition adds its scorer's version, ``"GLI2025, HD95 panoptica,
    panoptica 2.1.7"``); None where it records none."""
    scored = evaluation.get("scored_as")
    if not isinstance(scored, Mapping):
        return None
    rules = f"{scored.get('challenge') or 'no challenge'}, HD95 {scored.get('hd95', 'unknown')}"
    return f"{rules}, {scored['scorer']}" if scored.get("scorer") else rules


def _config(run: Run) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(run.config_file.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return flatten(data) if isinstance(data, Mapping) else {}


def record_problem(run: Run) -> str | None:
    """Why ``run.json`` cannot be read (missing, empty, not JSON, not an object), or None when it can."""
    try:
        text = run.record_file.read_text()
    except FileNotFoundError:
        return f"{run.record_file} is missing"
    except (OSError, UnicodeDecodeError) as err:
        return f"{run.record_file} cannot be read ({err})"
    if not text.strip():
        return f"{run.record_file} is empty"
    try:
        data = json.loads(text)
    except ValueError as err:
        return f"{run.record_file} is not valid JSON ({err})"
    return None if isinstance(data, dict) else f"{run.record_file} does not hold a JSON object"


def summarize(run: Run) -> RunSummary:
    """Read a run's record files into a :class:`RunSummary`; missing files give empty fields."""
    record = run.record()
    config = _config(run)
    epochs = read_metrics(run)
    monitor, mode = _monitor(record, {key for row in epochs for key in row})
    best, best_epoch = best_of(epochs, monitor, mode or "max") if monitor else (None, None)
    seconds = [row["seconds"] for row in epochs if "seconds" in row]
    dataset = record.get("dataset")
    evaluations, evaluated_with = _evaluations(run)
    return RunSummary(
        run_id=run.run_id,
        status=record.get("status", "unknown"),
        started=record.get("started"),
        dataset=dataset.get("name") if isinstance(dataset, dict) else config.get("data.dataset"),
        config=config,
        monitor=monitor,
        monitor_mode=mode,
        best=best,
        best_epoch=best_epoch,
        epochs=epochs,
        final=dict(epochs[-1]) if epochs else {},
        evaluations=evaluations,
        duration_s=round(sum(seconds), 3) if seconds else None,
        evaluated_with=evaluated_with,
        problem=record_problem(run),
        sweep=record.get("sweep") if isinstance(record.get("sweep"), dict) else None,
    )


def varying_keys(summaries: Sequence[RunSummary]) -> list[str]:
    """The config keys whose values are not the same in every run (missing counts as a value), in config order."""
    keys: dict[str, None] = {}
    for summary in summaries:
        keys.update(dict.fromkeys(summary.config))
    return [
        key
        for key in keys
        if len({json.dumps([key in s.config, s.config.get(key)], sort_keys=True, default=str) for s in summaries}) > 1
    ]
