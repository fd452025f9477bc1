"""What ``evaluate.py`` scores besides one run's model: an ensemble of runs (``--run A,B,C``) or a folder of
NIfTI predictions (``--predictions DIR``, volume datasets); checked before TensorFlow loads, and named so
that their scores go beside the run's own (``eval_SPLIT-ensemble-HASH.json``, ``eval_SPLIT-files-HASH.json``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from skelgen_runtime.errors import UserInputError

__all__ = ["check_sources", "label", "score_files"]


def check_sources(job: Any, split: str, predictions: Path | None) -> None:
    """Refuse an ensemble that trained on the cases of ``split`` (:func:`~skelgen_runtime.jobs.ensembles.
    check_ensemble_split`), and ``predictions`` that cannot be scored: not a folder, not a volume dataset,
    or given with ``--tta`` or several runs (which describe a model, and no model predicts here)."""
    if job.members:
        from skelgen_runtime.jobs.ensembles import check_ensemble_split

        check_ensemble_split([job.run, *job.members], split)
    if predictions is None:
        return
    if job.info.schema != "volume_segmentation":
        raise UserInputError(
            f"--predictions scores NIfTI volumes: run {job.run.run_id}'s dataset {job.info.folder.parent.name} holds "
            f"{job.info.schema} records; evaluate its model without --predictions"
        )
    if job.members or job.tta:
        raise UserInputError("--predictions scores the files as they are: drop --tta and give one run (--run)")
    if not predictions.is_dir():
        raise UserInputError(f"--predictions {predictions} is not a folder of CASE_ID.nii.gz files")


def label(split_label: str, predictions: Path | None, members: Sequence[str]) -> str:
    """``split_label``, or for what is not the run's own model ``SPLIT-files-HASH`` (the folder's resolved path)
    or ``SPLIT-ensemble-HASH`` (the other runs' ids)."""
    if predictions is None and not members:
        return split_label
    what, key = ("files", str(predictions.resolve())) if predictions else ("ensemble", ",".join(members))
    return f"{split_label}-{what}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def score_files(job: Any, split: str, predictions: Path, progress: Callable[..., Iterable]) -> dict[str, Any]:
    """The scores of the files of ``predictions`` against the records of ``split`` (a
    :class:`~skelgen_runtime.jobs.trained.TrainedRun`'s), under the run's rules; ``progress(items, total, what)``
    shows the cases as they are scored."""
    from skelgen_runtime.tasks.volume_files import score_files as score
    from skelgen_runtime.tasks.volume_scoring import challenge_key

    cases = progress(job.pipeline.raw_examples(split), job.info.count(split), f"scoring {predictions}")
    return score(predictions, cases, job.info, challenge_key=challenge_key(job.config))
