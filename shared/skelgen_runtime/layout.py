"""Where things are in a generated project: every folder and file-name convention, in one place.

The generator (``skelgen new``, ``add-dataset``, ``update``), the library (run records, dataset
readers, provenance) and the template's scripts all ask :class:`ProjectLayout` instead of joining
paths themselves::

    project/
      .copier-answers.yml                 answers of the project scaffold
      configs/                            experiment configs (yours)
      core/                               models, losses, optimizers, config schema (yours)
      datasets/
        .copier-answers.NAME.yml          answers of the dataset NAME's scaffold
        NAME/data/{train,val,pred}/       raw files, as the dataset's README says
        NAME/annotations/
        NAME/tfrecords/                   shards and dataset_info.json
      logs/RUN/                           config.yaml, run.json, metrics.csv, TensorBoard, eval_*.json
      models/RUN/                         checkpoints/, backup/, final.keras, export/

This module imports nothing beyond the standard library, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProjectLayout", "PROJECT_ANSWERS", "DATASET_INFO", "dataset_folders"]

#: the project scaffold's copier answers file, relative to the project
PROJECT_ANSWERS = ".copier-answers.yml"
#: the folders ``add-dataset`` makes in ``datasets/NAME/`` for a plain layout read there, by reader (see
#: :func:`dataset_folders`)
_PLAIN_FOLDERS = {
    "ImagesMasksSource": ("data/train", "data/val", "data/pred", "annotations/train", "annotations/val"),
    "ImageFolderSource": ("data/train", "data/val", "data/pred"),
    "CocoSource": ("data/train", "data/val", "data/pred", "annotations"),
}
#: the file beside a dataset's shards that describes them
DATASET_INFO = "dataset_info.json"


def dataset_folders(reader: str, *, source_given: bool = False) -> tuple[str, ...]:
    """The empty folders ``add-dataset`` makes in ``datasets/NAME/`` for data read by ``reader``.

    Only a plain layout read in the project (images and label PNGs, a folder per class, COCO JSON) gets
    its folders, ready to be filled; a publisher's layout (VOCdevkit/, leftImg8bit/, BraTS cases) is
    placed as it comes, and data read in place with ``--source`` needs none. ``tfrecords/`` is the
    build's to make.
    """
    return () if source_given else _PLAIN_FOLDERS.get(reader, ())


@dataclass(frozen=True)
class ProjectLayout:
    """The paths of a project rooted at ``root``."""

    root: Path

    # ------------------------------------------------------------------ scaffolds
    @property
    def answers(self) -> Path:
        """The project scaffold's copier answers."""
        return self.root / PROJECT_ANSWERS

    def dataset_answers(self, name: str) -> Path:
        """The copier answers of dataset ``name``'s scaffold."""
        return self.datasets / f".copier-answers.{name}.yml"

    def all_dataset_answers(self) -> list[Path]:
        """Every dataset scaffold's answers file, sorted by name."""
        return sorted(self.datasets.glob(".copier-answers.*.yml"))

    # ------------------------------------------------------------------ datasets
    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def dataset(self, name: str) -> Path:
        """``datasets/NAME``: the dataset's raw folders, README and records."""
        return self.datasets / name

    def tfrecords(self, name: str) -> Path:
        """``datasets/NAME/tfrecords``: the shards and ``dataset_info.json``."""
        return self.dataset(name) / "tfrecords"

    def dataset_info(self, name: str) -> Path:
        return self.tfrecords(name) / DATASET_INFO

    # ------------------------------------------------------------------ runs
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def run_logs(self, run_id: str) -> Path:
        """``logs/RUN``: the run's record, config, curves and evaluations."""
        return self.logs / run_id

    def run_models(self, run_id: str) -> Path:
        """``models/RUN``: the run's checkpoints, final model and exports."""
        return self.models / run_id

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    # ------------------------------------------------------------------ sweeps
    @property
    def sweeps(self) -> Path:
        """``sweeps/``: the user's sweep files (``sweeps/NAME.yaml``)."""
        return self.root / "sweeps"

    @property
    def sweep_db(self) -> Path:
        """``logs/sweeps.db``: the default Optuna storage (SQLite) of the project's sweeps."""
        return self.logs / "sweeps.db"

    def sweep_logs(self, sweep_id: str) -> Path:
        """``logs/sweeps/ID``: each trial's console output and the workers' claim files."""
        return self.logs / "sweeps" / sweep_id

    @property
    def default_config(self) -> Path:
        return self.configs / "default.yaml"

    # ------------------------------------------------------------------ recognising paths
    @staticmethod
    def dataset_name_of(records: Path) -> str:
        """The dataset a records folder belongs to: ``NAME`` for ``datasets/NAME/tfrecords``, else the folder's name."""
        return records.parent.name if records.name == "tfrecords" else records.name

    @staticmethod
    def is_project_records(records: Path) -> bool:
        """Whether ``records`` is a project's ``datasets/NAME/tfrecords`` folder."""
        return records.name == "tfrecords" and records.parent.parent.name == "datasets"
