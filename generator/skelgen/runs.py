"""``skelgen runs``: list, compare and plot the runs of a project; the CLI prints what these return.

Nothing here imports TensorFlow or NumPy (matplotlib only inside :func:`plot_runs`). Run specs are
run ids, unique prefixes of them, or ``latest`` (the newest run, whatever its status). Epochs count
from 1, as training prints them. Durations are the seconds spent in epochs (``metrics.csv``).

JSON of ``skelgen runs --json`` (:func:`listing_json`), runs newest first::

    {"project": PATH, "varying": [KEY, ...],
     "runs": [{"id", "status", "started", "dataset", "params": {KEY: VALUE for each varying KEY},
               "monitor", "monitor_mode", "best", "best_epoch", "epochs", "duration_s",
               "sweep": {"id", "trial"} | null}, ...]}

JSON of ``skelgen runs compare A B --json`` (:func:`comparison_json`), runs in the order given::

    {"project": PATH, "differing": [KEY, ...],
     "runs": [{"id", "status", "config": {KEY: VALUE for each differing KEY}, "monitor", "monitor_mode",
               "best", "best_epoch", "epochs", "final": {COLUMN: VALUE, "epoch": N},
               "eval": {SPLIT: {KEY: VALUE}},
               "eval_sources": {SPLIT: {"weights": "best" | "final", "data": "as trained" | "rebuilt" | "unknown",
                                        "rules": "CHALLENGE, HD95 DEFINITION" (volume scoring only)}}},
              ...],
     "rules_differ": [SPLIT, ...]}

``rules_differ`` lists the splits whose evaluations were scored under different rules (BraTS challenges
or HD95 definitions): their numbers are not comparable, and the text output says so.

``SPLIT`` is the split, or ``SPLIT-FINGERPRINT`` for an evaluation of a dataset rebuilt after the run trained.

``KEY`` is a dotted config key (``train.learning_rate``); a key a run's config lacks is ``null``
there. ``best`` is the best value of ``monitor`` (``run.json``'s, else the first of
``val_miou``/``val_accuracy`` (max) and ``val_loss`` (min) the run logged) and ``best_epoch`` its epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from skelgen.api import find_project
from skelgen_runtime import _text
from skelgen_runtime.errors import UserInputError, did_you_mean
from skelgen_runtime.run_summary import RunSummary, summarize, varying_keys
from skelgen_runtime.runs import list_runs as _run_folders
from skelgen_runtime.runs import resolve_run

__all__ = [
    "PLOT_FORMATS",
    "RunListing",
    "Comparison",
    "CurvesPlot",
    "list_runs",
    "compare_runs",
    "plot_runs",
    "listing_json",
    "listing_text",
    "comparison_json",
    "comparison_text",
]

#: the file types ``plot_runs`` writes (by the suffix of ``out``)
PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")
_NOT_CURVES = {"epoch", "seconds"}


@dataclass(frozen=True)
class RunListing:
    """The runs of a project, newest first, and the config keys whose values differ between them."""

    project: Path
    varying: list[str]
    runs: list[RunSummary]


@dataclass(frozen=True)
class Comparison:
    """Runs in the order asked for, and the config keys whose values differ between them."""

    project: Path
    differing: list[str]
    runs: list[RunSummary]


@dataclass(frozen=True)
class CurvesPlot:
    """What :func:`plot_runs` drew: the file, the metric, and the runs without that metric."""

    path: Path
    metric: str
    plotted: list[str]
    missing: list[str]


def list_runs(*, project: Path = Path("."), sweep: str | None = None) -> RunListing:
    """Every run of the project holding ``project`` (empty when none was trained yet); with ``sweep``, the
    runs of that sweep's trials only.

    Raises:
        UserInputError: no run belongs to sweep ``sweep`` (the sweeps that have runs named).
    """
    root = find_project(project)
    summaries = [summarize(run) for run in reversed(_run_folders(root))]
    if sweep is not None:
        sweeps = sorted({s.sweep["id"] for s in summaries if s.sweep and "id" in s.sweep})
        summaries = [s for s in summaries if s.sweep and s.sweep.get("id") == sweep]
        if not summaries:
            known = f"runs of sweeps: {', '.join(sweeps)}" if sweeps else "no run of this project came from a sweep"
            raise UserInputError(f"no run of sweep {sweep!r}{did_you_mean(sweep, sweeps)}; {known}")
    return RunListing(root, varying_keys(summaries), summaries)


def _resolve(root: Path, specs: Sequence[str]) -> list[RunSummary]:
    runs = [resolve_run(root, spec) for spec in specs]
    seen: dict[str, str] = {}
    for spec, run in zip(specs, runs):
        if run.run_id in seen:
            raise UserInputError(
                f"run {run.run_id} is given twice ({seen[run.run_id]!r} and {spec!r}); name each run once"
            )
        seen[run.run_id] = spec
    return [summarize(run) for run in runs]


def compare_runs(*, project: Path = Path("."), specs: Sequence[str]) -> Comparison:
    """Two or more runs side by side; ``specs`` are run ids, unique prefixes or ``latest``.

    Raises:
        UserInputError: fewer than two runs, or one run named twice.
        RunError: a spec matches no run (the closest id is suggested) or several.
    """
    if len(specs) < 2:
        raise UserInputError(
            "compare needs two runs or more: skelgen runs compare RUN RUN [RUN ...] (see skelgen runs for their ids)"
        )
    root = find_project(project)
    summaries = _resolve(root, specs)
    return Comparison(root, varying_keys(summaries), summaries)


def _label(summary: RunSummary, keys: Sequence[str]) -> str:
    shown = ", ".join(f"{key}={_value(summary.config.get(key))}" for key in keys[:3])
    return f"{summary.run_id} ({shown}{', ...' if len(keys) > 3 else ''})" if shown else summary.run_id


def plot_runs(*, project: Path = Path("."), specs: Sequence[str], out: Path, metric: str | None = None) -> CurvesPlot:
    """Draw ``metric`` per epoch of each run into one figure at ``out``.

    Args:
        specs: run ids, unique prefixes or ``latest``; one line each, labelled with the run id and
            the config values that differ between the runs.
        out: the picture to write; its suffix picks the format (:data:`PLOT_FORMATS`).
        metric: a ``metrics.csv`` column (default: the first run's monitor, e.g. ``val_miou``).

    Raises:
        UserInputError: no run given, an unknown format, a metric no run logged (with the closest),
            or ``out`` cannot be written.
        RunError: a spec matches no run or several.
    """
    from skelgen_runtime.curves import save_curves

    if not specs:
        raise UserInputError("plot needs at least one run: skelgen runs plot RUN [RUN ...] --out curves.png")
    out = Path(out).expanduser()
    if out.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise UserInputError(
            f"--out {out}: unknown picture format {out.suffix or '(no suffix)'!r}; "
            f"end the name with one of: {', '.join('.' + f for f in PLOT_FORMATS)}"
        )
    root = find_project(project)
    summaries = _resolve(root, specs)
    metric = metric or next((s.monitor for s in summaries if s.monitor), "loss")
    columns = sorted({key for s in summaries for row in s.epochs for key in row} - _NOT_CURVES)
    if metric not in columns:
        logged = f"the runs logged: {', '.join(columns)}" if columns else "the runs have no epoch in metrics.csv yet"
        raise UserInputError(f"no run logged metric {metric!r}{did_you_mean(metric, columns)}; {logged}")
    keys = varying_keys(summaries)
    curves = {_label(s, keys): s.curve(metric) for s in summaries if s.curve(metric)}
    title = f"{metric} of {len(curves)} run{'s' * (len(curves) != 1)}"
    try:
        path = save_curves(curves, out, metric=metric, title=title)
    except OSError as err:
        raise UserInputError(f"--out {out}: cannot write it ({err.strerror or err}); choose another path") from None
    return CurvesPlot(
        path,
        metric,
        [s.run_id for s in summaries if s.curve(metric)],
        [s.run_id for s in summaries if not s.curve(metric)],
    )


def _value(value: Any) -> str:
    """A config value as YAML would show it: strings bare, the rest as JSON (``null``, ``[32, 32]``)."""
    return value if isinstance(value, str) else json.dumps(value)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _best(summary: RunSummary, *, with_name: bool) -> str:
    if summary.best is None:
        return "-"
    name = f"{summary.monitor} " if with_name else ""
    return f"{name}{_number(summary.best)} (epoch {summary.best_epoch}/{len(summary.epochs)})"


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _common_monitor(summaries: Sequence[RunSummary]) -> str | None:
    monitors = {s.monitor for s in summaries if s.monitor}
    return monitors.pop() if len(monitors) == 1 else None


def listing_json(listing: RunListing) -> dict[str, Any]:
    """The stable JSON of ``skelgen runs --json`` (fields: the module docstring)."""
    return {
        "project": str(listing.project),
        "varying": listing.varying,
        "runs": [
            {
                "id": s.run_id,
                "status": s.status,
                "started": s.started,
                "dataset": s.dataset,
                "params": {key: s.config.get(key) for key in listing.varying},
                "monitor": s.monitor,
                "monitor_mode": s.monitor_mode,
                "best": s.best,
                "best_epoch": s.best_epoch,
                "epochs": len(s.epochs),
                "duration_s": s.duration_s,
                "sweep": s.sweep,
            }
            for s in listing.runs
        ],
    }


def _headers(keys: Sequence[str]) -> list[str]:
    """Column titles of config keys: the last part of the dotted key where that is unique (``batch_size``)."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return [short if last.count(short) == 1 else key for key, short in zip(keys, last)]


def _terminal_width() -> int:
    """``COLUMNS`` if set, else the width of the terminal stdout is; no limit when stdout is a file or pipe."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size((120, 24)).columns
    return 1 << 16


def listing_text(listing: RunListing, width: int | None = None) -> str:
    """An aligned table, one run a line, newest first, no wider than ``width`` (default: the terminal's;
    ``COLUMNS`` sets it): config columns that do not fit are left out, and a last line names them."""
    if not listing.runs:
        return f"no runs in {listing.project / 'logs'} yet; train one with python train.py"
    width = width or _terminal_width()
    monitor = _common_monitor(listing.runs)
    keys = list(listing.varying)
    while True:
        rows = [["run", "status", "dataset", *_headers(keys), f"best {monitor}" if monitor else "best", "duration"]]
        rows += [
            [
                s.run_id,
                s.status,
                s.dataset or "-",
                *(_value(s.config.get(key)) if key in s.config else "-" for key in keys),
                _best(s, with_name=monitor is None),
                _duration(s.duration_s),
            ]
            for s in listing.runs
        ]
        table = _table(rows)
        if not keys or max(len(line) for line in table.splitlines()) <= width:
            break
        keys.pop()
    hidden = listing.varying[len(keys) :]
    if hidden:
        import textwrap

        note = (
            f"{_text.count(len(hidden), 'more varying key')} not shown at this width: {_text.listing(hidden, 4)} "
            "(skelgen runs compare RUN RUN, or --json)"
        )
        table += "\n" + textwrap.fill(note, width)
    return table


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The stable JSON of ``skelgen runs compare --json`` (fields: the module docstring)."""
    return {
        "project": str(comparison.project),
        "differing": comparison.differing,
        "runs": [
            {
                "id": s.run_id,
                "status": s.status,
                "config": {key: s.config.get(key) for key in comparison.differing},
                "monitor": s.monitor,
                "monitor_mode": s.monitor_mode,
                "best": s.best,
                "best_epoch": s.best_epoch,
                "epochs": len(s.epochs),
                "final": s.final,
                "eval": s.evaluations,
                "eval_sources": s.evaluated_with,
            }
            for s in comparison.runs
        ],
        "rules_differ": [
            split
            for split in dict.fromkeys(split for s in comparison.runs for split in s.evaluations)
            if len(set(_rules_by_run(split, comparison.runs).values())) > 1
        ],
    }


def comparison_text(comparison: Comparison) -> str:
    """The runs as columns: differing config values, then best, final and evaluation metrics."""
    runs = comparison.runs
    blank = [""] * len(runs)
    monitor = _common_monitor(runs)
    rows = [["", *(s.run_id for s in runs)], ["status", *(s.status for s in runs)]]
    rows.append(["config (differing)", *blank] if comparison.differing else ["config", *["same"] * len(runs)])
    rows += [
        [f"  {key}", *(_value(s.config[key]) if key in s.config else "-" for s in runs)] for key in comparison.differing
    ]
    rows.append([f"best {monitor}" if monitor else "best", *(_best(s, with_name=monitor is None) for s in runs)])
    columns = list(dict.fromkeys(key for s in runs for key in s.final if key != "epoch"))
    rows.append(["final epoch", *(_number(s.final.get("epoch")) for s in runs)])
    rows += [[f"  {key}", *(_number(s.final.get(key)) for s in runs)] for key in columns]
    notes = []
    for split in dict.fromkeys(split for s in runs for split in s.evaluations):
        keys = list(dict.fromkeys(key for s in runs for key in s.evaluations.get(split, {})))
        rows.append([f"eval {split}", *blank])
        for what in ("weights", "data", "rules"):  # which weights scored which records, under which rules
            found = [s.evaluated_with.get(split, {}).get(what) for s in runs]
            if what != "rules" or any(found):
                rows.append([f"  ({what})", *(f or "-" for f in found)])
        rows += [[f"  {key}", *(_number(s.evaluations.get(split, {}).get(key)) for s in runs)] for key in keys]
        rules = _rules_by_run(split, runs)
        if len(set(rules.values())) > 1:
            listed = "; ".join(f"{run} {rule or 'no rules recorded'}" for run, rule in rules.items())
            notes.append(
                f"warning: eval {split} was scored under different rules ({listed}): those numbers are not "
                "comparable; evaluate the runs again with one eval.brats_challenge"
            )
    return "\n".join([_table(rows), *notes])


def _rules_by_run(split: str, runs: Sequence[RunSummary]) -> dict[str, str | None]:
    """The rules (BraTS challenge, HD95 definition) that scored each run's evaluation of ``split``."""
    return {s.run_id: s.evaluated_with.get(split, {}).get("rules") for s in runs if split in s.evaluations}
