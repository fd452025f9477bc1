"""Ensembles of runs (``evaluate.py``/``predict.py --run A,B,C``): which runs may be averaged. No TensorFlow.

The averaging itself is :func:`skelgen_runtime.serving.ensemble.ensemble`.
"""

from __future__ import annotations

from typing import Any, Sequence

from skelgen_runtime.errors import UserInputError
from skelgen_runtime.runs import Run

__all__ = ["check_ensemble", "check_ensemble_split"]


def _section(run: Run, name: str) -> dict:
    """One section of a run's config (empty when it has none or the file cannot be read)."""
    import yaml

    try:
        config = yaml.safe_load(run.config_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    section = config.get(name) if isinstance(config, dict) else None
    return section if isinstance(section, dict) else {}


def _output(run: Run) -> str:
    """``model.output`` of a run's config (``labels`` when it has none)."""
    return str(_section(run, "model").get("output") or "labels")


def check_ensemble_split(runs: Sequence[Run], split: str) -> None:
    """Refuse to score an ensemble on ``train`` or ``val`` when its runs trained on different cross-validation
    folds (``data.fold``): some of them trained on the cases scored, so the numbers would flatter the ensemble.

    Raises:
        UserInputError: naming the runs and their folds, and what to score instead.
    """
    folds = {r.run_id: _section(r, "data").get("fold") for r in runs}
    if split in ("train", "val") and len({str(f) for f in folds.values()}) > 1:
        listed = ", ".join(f"{run} {'fold ' + str(f) if f is not None else 'train/val'}" for run, f in folds.items())
        raise UserInputError(
            f"the runs trained on different cases ({listed}): on split {split} some of them scored cases they "
            "trained on; evaluate the ensemble on a split none trained on, or predict with it"
        )


def check_ensemble(runs: Sequence[Run], info: Any, infos: Sequence[Any]) -> None:
    """Refuse an ensemble (``--run A,B``) of non-volume runs, of a run named twice, or of runs of different
    datasets or of one dataset rebuilt in between (another label set, other cases), naming the runs.

    Args:
        runs: the runs as given, the first the one whose config the ensemble uses.
        info: the first run's dataset; infos: the others', in order (``dataset_info.json``, no TensorFlow).

    Raises:
        UserInputError: what is wrong, naming the runs.
    """
    ids = [r.run_id for r in runs]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise UserInputError(f"--run names run {twice[0]} twice; an ensemble needs different runs")
    if info.schema != "volume_segmentation":
        raise UserInputError(
            f"--run A,B (an ensemble) is for volume datasets (BraTS): run {ids[0]} trained on "
            f"{info.folder.parent.name} ({info.schema} records)"
        )
    modes = {r.run_id: _output(r) for r in runs}
    if len(set(modes.values())) > 1:
        listed = ", ".join(f"{run} {mode}" for run, mode in modes.items())
        raise UserInputError(f"the runs predict different outputs (model.output: {listed}): ensemble runs of one kind")
    first = runs[0]
    dataset = (first.record().get("dataset") or {}).get("fingerprint")
    for other, theirs in zip(runs[1:], infos):
        if theirs.folder != info.folder:
            raise UserInputError(
                f"runs {first.run_id} and {other.run_id} trained on different datasets ({info.folder.parent.name}, "
                f"{theirs.folder.parent.name}): an ensemble averages runs of one dataset"
            )
        fingerprint = (other.record().get("dataset") or {}).get("fingerprint")
        if dataset and fingerprint and fingerprint != dataset:
            raise UserInputError(
                f"runs {first.run_id} and {other.run_id} trained on different builds of {info.folder.parent.name} "
                f"({dataset[:15]}... vs {fingerprint[:15]}...): their label sets or cases may differ; ensemble runs "
                "of one build"
            )
