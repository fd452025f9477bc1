"""Scoring NIfTI predictions made elsewhere (``evaluate.py --predictions DIR``) under the rules evaluate.py uses.

A folder of ``CASE_ID.nii.gz`` (or ``.nii``) label volumes in the release's own label ids: what
``predict.py --split SPLIT`` writes, or another tool's output, as the BraTS organisers score a submission.
Each file is checked against its case's record before it is scored, and refused naming the case when:

- it is missing;
- its array shape differs from the ground truth's (NIfTI order);
- its affine differs from the case's by more than 1e-3 (mm, or the affine's own units): the prediction
  lies on another grid, and voxel-wise scores would compare different places;
- it holds values that are not the release's label ids, or non-integer values.

Then the cases are scored exactly as :func:`skelgen_runtime.tasks.volume_scoring.score_predictions` scores
a model's predictions (the challenge's rules, ``scored_as``), without post-processing: the files are scored
as they are.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from skelgen_runtime.errors import UserInputError
from skelgen_runtime.tasks.volume_scoring import score_predictions

__all__ = ["AFFINE_TOLERANCE", "prediction_file", "score_files"]

#: the largest difference of any affine entry still read as the same grid
AFFINE_TOLERANCE = 1e-3


def prediction_file(folder: Path, case_id: str) -> Path:
    """``folder/CASE_ID.nii.gz`` or ``.nii``; refused naming the case when neither exists."""
    for suffix in (".nii.gz", ".nii"):
        path = folder / f"{case_id}{suffix}"
        if path.is_file():
            return path
    raise UserInputError(
        f"case {case_id}: no prediction {folder / (case_id + '.nii.gz')}; --predictions needs one file per case of "
        "the split, named by case id (as predict.py writes them)"
    )


def _read(path: Path, case_id: str, truth: np.ndarray, affine: np.ndarray, source_ids: tuple[int, ...]) -> np.ndarray:
    """The file's labels as training ids ``(D, H, W)``, after the checks of the module docstring."""
    from skelgen_runtime.errors import BadExampleError
    from skelgen_runtime.schemas.volume import from_nifti_axes, to_nifti_axes
    from skelgen_runtime.sources._nifti import read_nifti

    try:
        data, image = read_nifti(path)
    except BadExampleError as err:
        raise UserInputError(f"case {case_id}: {err}") from None
    expected = to_nifti_axes(truth).shape
    if data.shape != expected:
        raise UserInputError(
            f"case {case_id}: the prediction {path} is {data.shape} but its ground truth is {expected} (NIfTI order)"
        )
    if not np.allclose(image.affine, affine, rtol=0, atol=AFFINE_TOLERANCE):
        worst = float(np.abs(image.affine - affine).max())
        raise UserInputError(
            f"case {case_id}: the prediction {path} lies on another grid: its affine differs from the case's by up "
            f"to {worst:g} (prediction {np.round(image.affine, 3).tolist()}, case {np.round(affine, 3).tolist()})"
        )
    lut = np.full(256, -1, np.int64)
    lut[list(source_ids)] = np.arange(len(source_ids))
    unknown = [
        v
        for v in np.unique(data).tolist()
        if not math.isfinite(v) or v != int(v) or not 0 <= v < 256 or lut[int(v)] < 0
    ]
    if unknown:
        raise UserInputError(
            f"case {case_id}: the prediction {path} holds values {unknown[:8]} that are not the release's label ids "
            f"{', '.join(map(str, source_ids))}"
        )
    return np.ascontiguousarray(from_nifti_axes(lut[data.astype(np.int64)].astype(np.uint8)))


def score_files(folder: Path, cases: Iterable[dict], info, *, challenge_key: str | None = None) -> dict:
    """Score the files of ``folder`` against ``cases`` (decoded records: ``label``, ``spacing``, ``affine``,
    ``case_id``, ``release``); what :func:`~skelgen_runtime.tasks.volume_scoring.score_predictions` returns.

    Raises:
        UserInputError: a file missing or refused (module docstring), naming the case.
        ConfigError: the challenge does not score the release (as for a model's predictions).
    """
    source_ids = tuple(info.label_map.source_ids or range(info.label_map.num_classes))

    def pairs() -> Iterator[tuple[dict, np.ndarray]]:
        for case in cases:
            case_id = case["case_id"].numpy().decode()
            truth = case["label"].numpy()[..., 0]
            path = prediction_file(folder, case_id)
            yield case, _read(path, case_id, truth, case["affine"].numpy(), source_ids)

    return score_predictions(pairs(), info, challenge_key=challenge_key)
