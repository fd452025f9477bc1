"""The command lines of the project's scripts (argparse, so ``--help`` prints the script's docstring)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["train_arguments", "evaluate_arguments", "predict_arguments", "export_arguments"]

_WEIGHTS_HELP = "best (default: the checkpoint with the best validation score) or final (final.keras)"


def _parser(doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        default="latest",
        help="run id (or unique prefix), or 'latest' (default): the newest *completed* run (skelgen runs lists "
        "them); volumes (BraTS): A,B,C averages the softmax probabilities of several runs (an ensemble)",
    )
    parser.add_argument("--weights", default="best", help=_WEIGHTS_HELP)


def _fold(value: str) -> str:
    """``--fold K`` -> the override ``data.fold=K`` (a whole number, 0 or more)."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"--fold takes a fold number (0, 1, ...), not {value!r}")
    return f"data.fold={int(value)}"


def train_arguments(doc: str | None, root: Path) -> argparse.ArgumentParser:
    """``--config FILE`` (default ``configs/default.yaml``), ``--set KEY=VALUE`` (repeatable), ``--fold K``,
    ``--resume``."""
    from skelgen_runtime.layout import ProjectLayout

    parser = _parser(doc)
    parser.add_argument(
        "--config",
        type=Path,
        default=ProjectLayout(root).default_config,
        help="experiment config (default: configs/default.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 (repeatable)",
    )
    parser.add_argument(
        "--fold",
        type=_fold,
        dest="overrides",
        action="append",
        metavar="K",
        help="volumes (BraTS): train on every labelled case but cross-validation fold K's and validate on them "
        "(the same as --set data.fold=K; the build records 5 folds, K = 0 to 4)",
    )
    parser.add_argument(
        "--resume",
        metavar="auto|latest|RUN",
        help="continue an interrupted run: its id (or a unique prefix), 'latest' (the newest "
        "unfinished run), or 'auto' (the same, else start a new run)",
    )
    return parser


def evaluate_arguments(doc: str | None) -> argparse.ArgumentParser:
    """``--run``, ``--weights``, ``--split`` (default ``val``), ``--tta``, ``--predictions``."""
    parser = _parser(doc)
    _run_options(parser)
    parser.add_argument("--split", default="val", help="labelled split to score (default: val)")
    _tta_option(parser)
    parser.add_argument(
        "--predictions",
        type=Path,
        metavar="DIR",
        help="volumes (BraTS): score these NIfTI files (CASE_ID.nii.gz in the release's label ids, as predict.py "
        "writes them, or another tool's) instead of the run's model, under the run's rules; each file must lie "
        "on its case's grid (shape and affine)",
    )
    return parser


def _tta_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tta",
        action="store_true",
        help="volumes (BraTS): average the predictions of every mirroring of a case (8 in 3D, 4 in 2D; as many "
        "times slower)",
    )


def predict_arguments(doc: str | None) -> argparse.ArgumentParser:
    """``--run``, ``--weights``, ``--split`` (default ``pred``) or ``--input``, ``--output``, ``--skip-bad``,
    ``--tta``."""
    parser = _parser(doc)
    _run_options(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", default="pred", help="split of the run's dataset (default: pred)")
    source.add_argument("--input", type=Path, help="an image file or a folder of images instead of a split")
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help="folder for the predictions: new, empty, or one an earlier predict.py wrote (its predictions are "
        "replaced whole once the new ones are written)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out --input images that cannot be read (each named in a warning and in predict.json) "
        "instead of stopping",
    )
    _tta_option(parser)
    return parser


def export_arguments(doc: str | None) -> argparse.ArgumentParser:
    """``--run``, ``--weights``, ``--format``, ``--out``."""
    parser = _parser(doc)
    _run_options(parser)
    parser.add_argument("--format", required=True, metavar="FORMAT", help="saved_model, tflite or onnx")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder to write; must not exist or be empty (default: models/RUN/export/FORMAT-WEIGHTS)",
    )
    return parser
