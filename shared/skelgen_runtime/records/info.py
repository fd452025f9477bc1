"""``dataset_info.json``: the description that makes a folder of shards self-describing.

It is written last, atomically, by a build that completed; its presence marks a usable dataset.

Fields: ``schema`` and ``schema_version``; ``feature_spec`` (per key: kind and dtype);
``label_map`` (id, name, colour, optional source id); ``num_classes``; ``ignore_label``;
``compression``; ``splits`` (per split: ``labelled``, ``count``, ``shards`` with file, count and
SHA-256, and ``images``: sizes and encodings, see :mod:`~skelgen_runtime.records.image_stats`; absent
for volumes and for datasets built before 0.3); ``skipped`` (examples left out by ``--skip-bad``, with reasons); ``source``; ``source_info``
(optional: what the reader detected, e.g. the BraTS release);
``build_options`` (``max_examples`` and ``subsets``: per split how it was cut, see
:mod:`~skelgen_runtime.records.subset`; ``skip_bad``, ``shard_size``, ``runner``: ``local`` or ``beam``, and
``beam_runner``: the Beam runner's class name, None for local builds); ``skelgen_version``; ``created``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from skelgen_runtime.errors import ConfigError, DatasetError, did_you_mean
from skelgen_runtime.labels import LabelMap
from skelgen_runtime.layout import ProjectLayout
from skelgen_runtime.records.image_stats import ImageStats

__all__ = ["INFO_FILE", "DatasetInfo", "load_info"]

INFO_FILE = "dataset_info.json"


@dataclass(frozen=True)
class DatasetInfo:
    """A parsed ``dataset_info.json`` and the folder it lives in."""

    folder: Path
    data: dict[str, Any]

    @property
    def schema(self) -> str:
        return self.data["schema"]

    @property
    def label_map(self) -> LabelMap:
        return LabelMap.from_json(self.data["label_map"], ignore_label=self.data.get("ignore_label", 255))

    @property
    def num_classes(self) -> int:
        return int(self.data["num_classes"])

    @property
    def compression(self) -> str | None:
        return self.data.get("compression") or None

    def _split(self, split: str) -> dict:
        splits = self.data["splits"]
        if split not in splits:
            raise DatasetError(
                f"{self.folder / INFO_FILE} has no split {split!r}; it has: {', '.join(sorted(splits))}"
                f"{did_you_mean(split, splits)}"
            )
        return splits[split]

    def split_files(self, split: str) -> list[Path]:
        """The shard files of ``split``; raise :class:`DatasetError` if the split or a shard is missing."""
        files = [self.folder / s["file"] for s in self._split(split)["shards"] if s["count"] > 0]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise DatasetError(
                f"shard {missing[0]} listed in {self.folder / INFO_FILE} is missing; rebuild the dataset"
            )
        return files

    def image_stats(self, split: str) -> ImageStats | None:
        """The sizes and encodings of the images of ``split``, or None when the build did not record them."""
        stats = ImageStats.from_json(self._split(split).get("images"))
        return stats if stats.count else None

    @property
    def folds(self) -> dict[str, int]:
        """Case id -> cross-validation fold of every labelled case, as the build recorded them (``source_info``'s
        ``folds``); empty for a dataset without."""
        recorded = (self.data.get("source_info") or {}).get("folds") or {}
        return {str(k): int(v) for k, v in (recorded.get("cases") or {}).items()}

    def with_fold(self, fold: int) -> "DatasetInfo":
        """This dataset seen as cross-validation fold ``fold``: ``train`` is every labelled case of the other
        folds, ``val`` the cases of this one (both read from the shards of the labelled splits, keeping the
        named cases, :func:`~skelgen_runtime.records.reader.read_split`); other splits as they are.

        Raises:
            DatasetError: the build recorded no folds (rebuild the dataset).
            ConfigError: ``fold`` is not one of them.
        """
        assigned = self.folds
        if not assigned:
            raise DatasetError(
                f"{self.folder / INFO_FILE} records no cross-validation folds (data.fold, --fold): rebuild the "
                "dataset with this project's build script (BraTS datasets record 5 folds of their labelled cases)"
            )
        k = int(self.data["source_info"]["folds"].get("k", max(assigned.values()) + 1))
        if not 0 <= fold < k:
            raise ConfigError(f"data.fold: fold {fold} is outside the dataset's {k} folds: choose 0 to {k - 1}")
        labelled = [name for name, split in self.data["splits"].items() if split.get("labelled")]
        shards = [shard for name in labelled for shard in self.data["splits"][name]["shards"]]
        held = sorted(c for c, f in assigned.items() if f == fold)
        rest = sorted(c for c, f in assigned.items() if f != fold)
        splits = {n: v for n, v in self.data["splits"].items() if n not in labelled}
        for name, cases in (("train", rest), ("val", held)):
            splits[name] = {"labelled": True, "count": len(cases), "shards": shards, "cases": cases}
        return DatasetInfo(self.folder, {**self.data, "splits": splits, "fold": {"index": fold, "k": k}})

    def split_cases(self, split: str) -> list[str] | None:
        """The case ids a fold's split keeps of its shards (:meth:`with_fold`); None: every record."""
        cases = self._split(split).get("cases")
        return None if cases is None else [str(c) for c in cases]

    def count(self, split: str) -> int:
        return int(self._split(split)["count"])

    def is_labelled(self, split: str) -> bool:
        return bool(self._split(split)["labelled"])

    def check_schema(self, name: str, versions: int | Sequence[int]) -> None:
        """Stop with a clear message if these records were not written with schema ``name`` in one of
        ``versions`` (the versions the reading library reads, newest first)."""
        readable = (versions,) if isinstance(versions, int) else tuple(versions)
        got = (self.data.get("schema"), self.data.get("schema_version"))
        if got[0] != name or got[1] not in readable:
            raise DatasetError(
                f"{self.folder / INFO_FILE} describes {got[0]} records (schema version {got[1]}), but this "
                f"project reads {name} records (schema version {readable[0]}); rebuild the dataset with this "
                f"project's build script or point the config at another dataset"
            )


def load_info(folder: Path) -> DatasetInfo:
    """Read ``folder/dataset_info.json``; raise :class:`DatasetError` saying how to build it if absent."""
    path = folder / INFO_FILE
    if not path.is_file():
        name, datasets = folder.parent.name, folder.parent.parent
        in_project = ProjectLayout.is_project_records(folder)
        if not in_project or (datasets / f"build_{name}_to_tfrecord.py").is_file():
            hint = f"run python datasets/build_{name}_to_tfrecord.py" if in_project else "build the dataset first"
            raise DatasetError(
                f"{path} not found: the dataset has not been built (or its build did not finish); {hint}"
            )
        added = sorted(p.name[len("build_") : -len("_to_tfrecord.py")] for p in datasets.glob("build_*_to_tfrecord.py"))
        raise DatasetError(
            f"dataset {name!r} is not in this project ({', '.join(added) or 'no dataset added yet'})"
            f"{did_you_mean(name, added)}; add it with skelgen add-dataset {name}, or set data.dataset"
        )
    try:
        return DatasetInfo(folder, json.loads(path.read_text()))
    except ValueError as err:
        raise DatasetError(f"{path} is not valid JSON ({err}); rebuild the dataset") from None
