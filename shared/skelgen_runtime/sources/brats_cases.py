"""Finding BraTS and MSD cases on disk: which release a folder holds, its case folders, their files
and splits. The layouts are those of :mod:`skelgen_runtime.sources.brats` (its docstring);
reading a case's volumes is that module's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.sources._nifti import is_nifti, nifti_stem, read_nifti
from skelgen_runtime.sources.brats_releases import MSD, RELEASES, Release, get_release

__all__ = ["MODALITIES", "FOLDS", "Case", "CaseListing", "holdout", "folds", "list_cases", "msd_channels"]

#: the canonical channel order of every release's records
MODALITIES = ("t1", "t1ce", "t2", "flair")
#: cross-validation folds recorded by a build (nnU-Net's default)
FOLDS = 5
_SEARCH_DEPTH = 3
_FALLBACK_SEG = re.compile(r"segm?\.nii(\.gz)?$", re.IGNORECASE)
_POST_TREATMENT = get_release("brats2024-gli")
#: MSD dataset.json modality names -> canonical names
_MSD_NAMES = {"flair": "flair", "t1w": "t1", "t1": "t1", "t1gd": "t1ce", "t1ce": "t1ce", "t2w": "t2", "t2": "t2"}


def _unit(case_id: str) -> float:
    return int(hashlib.sha256(case_id.encode()).hexdigest()[:12], 16) / 16**12


def holdout(case_ids: list[str], fraction: float) -> set[str]:
    """The validation cases: hash of the id below ``fraction``; at least one, never all, of two or more."""
    if fraction <= 0 or len(case_ids) < 2:
        return set()
    ranked = sorted(case_ids, key=_unit)
    chosen = [c for c in ranked if _unit(c) < fraction] or ranked[:1]
    return set(chosen[: len(ranked) - 1])


def folds(case_ids: list[str], k: int = FOLDS) -> dict[str, int]:
    """Deterministic k-fold assignment of cases: ranked by the hash of their id (as :func:`holdout`), then
    dealt round-robin, so that folds differ in size by at most one case and a case keeps its fold when
    others are added or removed only where the ranking around it stays. Fewer cases than ``k``: one per fold."""
    ranked = sorted(case_ids, key=_unit)
    return {case_id: i % k for i, case_id in enumerate(ranked)}


def _expects_label(case_dir: Path, root: Path) -> bool | None:
    """True/False when a folder name on the way up from ``case_dir`` to ``root`` says training/validation."""
    for folder in (case_dir, *case_dir.parents):
        name = folder.name.lower()
        if re.search(r"validation|testing", name):
            return False
        if "training" in name or name in ("hgg", "lgg", "imagestr"):
            return True
        if folder == root:
            break
    return None


@lru_cache(maxsize=8)
def msd_channels(dataset_json: Path) -> tuple[str, ...]:
    """Canonical name of each channel of MSD's 4D images, from ``dataset.json``'s ``modality``."""
    try:
        meta = json.loads(dataset_json.read_text())
        modality = meta["modality"]
        names = tuple(_MSD_NAMES[modality[str(i)].strip().lower()] for i in range(len(modality)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetError(
            f"{dataset_json}: cannot read the modality list ({type(err).__name__}: {err}); expected "
            f'"modality": {{"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}}'
        ) from None
    if sorted(names) != sorted(MODALITIES):
        raise DatasetError(f"{dataset_json}: modalities {list(modality.values())} are not FLAIR, T1w, t1gd and T2w")
    return names


@dataclass
class Case:
    """One case folder (or MSD image): its id, folder, files by modality (and ``seg``), labelled or not."""

    case_id: str
    folder: Path
    files: dict[str, Path]
    labelled: bool


@dataclass
class CaseListing:
    """The cases under ``root`` and the release they are read as (:func:`list_cases`)."""

    root: Path
    release: Release | None = None

    def _msd_dir(self) -> Path | None:
        for folder in (self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())):
            if (folder / "dataset.json").is_file() and (folder / "imagesTr").is_dir():
                return folder
        return None

    def scan(self, wanted: Release | None) -> list[Case]:
        if not self.root.is_dir():
            raise DatasetError(f"BraTS folder {self.root} does not exist")
        found: list[tuple[Path, Release]] = []
        self._walk(self.root, 0, found)
        msd = self._msd_dir()
        if msd is not None:
            if found:
                raise DatasetError(
                    f"{self.root} holds both MSD Task01 ({msd}) and BraTS case folders "
                    f"(e.g. {found[0][0]}); point --source at one of them"
                )
            if wanted not in (None, MSD):
                raise DatasetError(
                    f"{self.root} is MSD's Task01_BrainTumour ({msd}), not {wanted.title}: "
                    "drop --release or pass --release msd-task01"
                )
            self.release = MSD
            return self._msd_cases(msd)
        if not found:
            raise DatasetError(
                f"no BraTS cases found under {self.root} (searched {_SEARCH_DEPTH} levels deep): expected case folders "
                "such as HGG/Brats18_2013_2_1/, BraTS20_Training_001/, BraTS2021_00000/, BraTS-GLI-00000-000/, "
                "or MSD's Task01_BrainTumour/ with dataset.json and imagesTr/"
            )
        self.release = self._choose(found, wanted)
        cases = sorted((self._brats_case(folder) for folder, _ in found), key=lambda c: c.case_id)
        if wanted is None and self.release.key == "brats2023" and self._first_label_has_cavity(cases):
            self.release = _POST_TREATMENT
        return cases

    def _choose(self, found: list[tuple[Path, Release]], wanted: Release | None) -> Release:
        """The release to read the found case folders as (module docstring)."""
        releases: dict[str, tuple[Release, Path]] = {}
        for folder, release in found:
            releases.setdefault(release.key, (release, folder))
        if wanted is not None:
            other = [(r, f) for r, f in releases.values() if not r.same_naming(wanted)]
            if other:
                release, folder = other[0]
                raise DatasetError(
                    f"--release {wanted.key}: {folder} is named as {release.title} cases, whose "
                    f"files {wanted.title} does not name alike; drop --release or point --source "
                    "at the right folder"
                )
            return wanted
        pre_and_post = {"brats2023", _POST_TREATMENT.key} == set(releases) and all(
            folder.name.lower().startswith("brats-gli-") for folder, r in found if r.key == "brats2023"
        )
        if pre_and_post:
            return _POST_TREATMENT
        if len(releases) > 1:
            listed = "; ".join(f"{r.title} (e.g. {f})" for r, f in releases.values())
            raise DatasetError(
                f"{self.root} mixes cases of several releases, whose label ids differ: {listed}; "
                "build each release as its own dataset"
            )
        return found[0][1]

    def _first_label_has_cavity(self, cases: list[Case]) -> bool:
        """Whether the first glioma case's label file holds 4, BraTS 2024's resection cavity."""
        first = next(
            (
                c
                for c in cases
                if c.labelled and c.case_id.lower().startswith("brats-gli-") and c.files["seg"].is_file()
            ),
            None,
        )
        if first is None:
            return False
        try:
            data, _ = read_nifti(first.files["seg"])
        except BadExampleError:  # reported, with its path, when the case is encoded
            return False
        return bool((np.asarray(data) == 4).any())

    def _walk(self, folder: Path, depth: int, found: list) -> None:
        if depth == 0:
            release = next((r for r in RELEASES if r.matches(folder.name)), None)
            if release is not None:  # --source is one case folder
                found.append((folder, release))
                return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            raise DatasetError(f"cannot list {folder} ({err})") from None
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "__MACOSX" or not entry.is_dir():
                continue
            release = next((r for r in RELEASES if r.matches(entry.name)), None)
            if release is not None:
                found.append((Path(entry.path), release))
            elif depth + 1 < _SEARCH_DEPTH:
                self._walk(Path(entry.path), depth + 1, found)

    def _brats_case(self, folder: Path) -> Case:
        release = self.release
        assert release is not None, "scan() chooses the release before it lists the case folders"
        case_id, sep = folder.name, release.separator
        names = {n.lower(): n for n in os.listdir(folder) if is_nifti(n)}

        def find(tag: str) -> Path | None:
            for suffix in (".nii.gz", ".nii"):
                name = names.get(f"{case_id}{sep}{tag}{suffix}".lower())
                if name:
                    return folder / name
            return None

        files = {m: find(t) or folder / f"{case_id}{sep}{t}.nii.gz" for m, t in release.tags.items()}
        seg = find("seg")
        if seg is None:  # e.g. BraTS 2020 case 355: W39_1998.09.19_Segm.nii
            used = {p.name for p in files.values()}
            others = [n for n in names.values() if n not in used and _FALLBACK_SEG.search(n)]
            if len(others) == 1:
                seg = folder / others[0]
        expected = _expects_label(folder, self.root)
        labelled = seg is not None or bool(expected)
        if labelled:
            files["seg"] = seg or folder / f"{case_id}{sep}seg.nii.gz"
        return Case(case_id, folder, files, labelled)

    def _msd_cases(self, task_dir: Path) -> list[Case]:
        msd_channels(task_dir / "dataset.json")  # fail early on an unreadable dataset.json
        cases = []
        for images, labelled in (("imagesTr", True), ("imagesTs", False)):
            folder = task_dir / images
            if not folder.is_dir():
                continue
            stems = sorted(nifti_stem(n) for n in os.listdir(folder) if is_nifti(n))
            if labelled and not stems:
                raise DatasetError(
                    f"{folder} holds no cases (BRATS_NNN.nii.gz; ._* files are skipped): "
                    "the training split would be empty"
                )
            for stem in stems:
                image = next(folder / f"{stem}{s}" for s in (".nii.gz", ".nii") if (folder / f"{stem}{s}").is_file())
                files = {"image": image}
                if labelled:
                    labels = task_dir / "labelsTr"
                    files["seg"] = next(
                        (labels / f"{stem}{s}" for s in (".nii.gz", ".nii") if (labels / f"{stem}{s}").is_file()),
                        labels / image.name,
                    )
                cases.append(Case(stem, folder, files, labelled))
        return cases


def list_cases(root: Path, wanted: Release | None = None) -> tuple[Release, list[Case]]:
    """The release the folder ``root`` is read as (``wanted``, else detected) and its cases, sorted by id.

    Raises:
        DatasetError: no cases, a folder mixing releases, a ``wanted`` release the files are not named
            as, an unreadable MSD ``dataset.json``.
    """
    listing = CaseListing(Path(root))
    cases = listing.scan(wanted)
    assert listing.release is not None  # scan() found one or raised
    return listing.release, cases
