"""BraTS brain-tumour MRI (2018 to 2024+) and MSD Task01_BrainTumour, read as their archives extract.

The release is detected from the folder (``--source`` may be a release's training folder, a folder
holding its training and validation folders, or one case folder)::

    2018/2019  [HGG|LGG/]<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz        case Brats18_* / BraTS19_*
    2020       BraTS20_Training_001/BraTS20_Training_001_{...}.nii[.gz]     (case 355's label file is
               misnamed W39_1998.09.19_Segm.nii: a lone *seg.nii / *Segm.nii file is taken as the label)
    2021       BraTS2021_00000/BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz
    2023+      BraTS-GLI-00000-000/BraTS-GLI-00000-000-{t1n,t1c,t2w,t2f,seg}.nii.gz  (GLI, SSA, MEN, MET, PED, ...)
    2024 GLI   BraTS-GLI-02073-100/BraTS-GLI-02073-100-{t1n,t1c,t2w,t2f,seg}.nii.gz  post-treatment glioma:
               time points 1YY, volumes 182x218x182, label 4 = resection cavity
    MSD        Task01_BrainTumour/{dataset.json, imagesTr/BRATS_001.nii.gz (4D), labelsTr/, imagesTs/}

Case folders are searched up to three levels below ``--source``; hidden entries, macOS ``._*``
resource forks and ``__MACOSX`` are skipped. One dataset holds one release: a folder mixing
releases (their label ids differ) is refused, except that pre-treatment glioma cases (``-000``)
beside post-treatment ones (``-1YY``) are read with the post-treatment labels, whose ids 1-3 carry
on the 2023 ones. 2023-style glioma cases whose first label file holds 4 (the resection cavity)
are read as post-treatment too. ``release=`` (the build script's ``--release``) overrides the
detection among releases that name their files alike.

**Modalities** are stored in one canonical channel order for every release,
:data:`MODALITIES` = ``(t1, t1ce, t2, flair)``: 2023+ ``t1n -> t1, t1c -> t1ce, t2w -> t2,
t2f -> flair``; MSD's 4D channels (``FLAIR, T1w, t1gd, T2w`` per its ``dataset.json``, which is read
to find them) ``-> flair, t1, t1ce, t2``. Values keep the files' dtype (lossless); spacing, affine
and the NIfTI header of the ``t1`` file (MSD: the 4D file) go into the record
(:mod:`skelgen_runtime.schemas.volume`).

**Labels** become contiguous training ids, in the class order of the release's label set
(:data:`skelgen_runtime.sources.brats_releases.LABEL_SETS`, which also holds each release's
evaluation regions in its own ids): ``background, necrotic tumor core, peritumoral edema, enhancing
tumor`` (ids 0..3) for 2018-2023 and MSD, whatever ids their files use; ``background, non-enhancing
tumor core, surrounding FLAIR hyperintensity, enhancing tissue, resection cavity`` (ids 0..4, the
files' own) for 2024 post-treatment glioma. The label map keeps each class's file id
(``dataset_info.json``); predictions are written back with them. Without a label map the reader
takes the release's classes; a label map of other names must have as many. Any other label value
(e.g. 3 in a 2021 file) makes the case bad.

**Splits**: labelled cases go to ``train``, except a deterministic holdout ``val``: the cases whose
``sha256(case_id)`` maps to ``[0, val_fraction)`` (at least one, and never all, when there are two
or more), so a case keeps its split when others are added. Cases without labels go to ``pred``.
A case counts as a *training* case, whose missing ``seg`` file is an error, when its folder or a
folder above it (up to ``--source``) is named ``*Training*`` (or ``HGG``/``LGG``, or MSD's
``imagesTr``) with no nearer ``*Validation*``/``*Testing*`` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.sources._nifti import is_nifti, nifti_stem, read_nifti, header_bytes
from skelgen_runtime.labels import LabelLookup
from skelgen_runtime.sources._published import complete_label_map
from skelgen_runtime.sources.base import LabelMap, SourceItem
from skelgen_runtime.sources.brats_releases import (
    LABEL_SETS,
    MSD,
    RELEASES,
    Release,
    challenge_for,
    get_release,
    regions_for,
    release_keys,
)

__all__ = ["BratsSource", "Release", "RELEASES", "MODALITIES", "LABEL_SETS", "regions_for", "holdout"]

#: the canonical channel order of every release's records
MODALITIES = ("t1", "t1ce", "t2", "flair")
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
def _msd_channels(dataset_json: Path) -> tuple[str, ...]:
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
class _Case:
    case_id: str
    folder: Path
    files: dict[str, Path]
    labelled: bool


@dataclass
class BratsSource:
    """Reader of the BraTS / MSD layouts described in the module docstring.

    Attributes:
        root: the folder to search (``--source``).
        label_map: class names (and optionally source ids and colours) in training-id order; None:
            the release's own classes. Source ids and colours default to the release's.
        val_fraction: share of the labelled cases held out as ``val`` (0 for none).
        release: a release key (:func:`~skelgen_runtime.sources.brats_releases.release_keys`) to
            read the folder as, instead of the detected one; after construction, the release read.
    """

    #: what the build writes (``skelgen_runtime.schemas.volume``), GZIP-compressed, 8 cases per shard
    record_schema: ClassVar[str] = "volume_segmentation"
    default_compression: ClassVar[str] = "GZIP"
    default_shard_size: ClassVar[int] = 8
    #: the build script's own options (``records.build.main(extra_options=...)``), passed to the constructor
    build_options: ClassVar[dict[str, dict]] = {
        "--release": {"choices": release_keys(), "default": None,
                      "help": "read the folder as this BraTS release (default: detected from the case names)"},
    }

    root: Path
    label_map: LabelMap | None = None
    val_fraction: float = 0.2
    release: Release | str | None = None
    detected: bool = field(init=False, default=True)
    _cases: list[_Case] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not 0 <= self.val_fraction < 1:
            raise DatasetError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        wanted = get_release(self.release) if isinstance(self.release, str) else self.release
        self.detected = wanted is None
        self._cases = self._scan(wanted)
        labels = self.release.label_set
        self.label_map = complete_label_map(
            self.label_map or LabelMap(labels.classes), dataset=f"BraTS ({self.release.title})",
            source_ids=labels.source_ids, colors=labels.colors,
        )
        self._lookup()  # fail now on a label map whose source ids are not the release's

    def __getstate__(self) -> dict:
        # workers only encode: they need the release, not the case list
        return {**self.__dict__, "_cases": None}

    # ------------------------------------------------------------------------------- listing

    def _msd_dir(self) -> Path | None:
        for folder in (self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())):
            if (folder / "dataset.json").is_file() and (folder / "imagesTr").is_dir():
                return folder
        return None

    def _scan(self, wanted: Release | None) -> list[_Case]:
        if not self.root.is_dir():
            raise DatasetError(f"BraTS folder {self.root} does not exist")
        found: list[tuple[Path, Release]] = []
        self._walk(self.root, 0, found)
        msd = self._msd_dir()
        if msd is not None:
            if found:
                raise DatasetError(f"{self.root} holds both MSD Task01 ({msd}) and BraTS case folders "
                                   f"(e.g. {found[0][0]}); point --source at one of them")
            if wanted not in (None, MSD):
                raise DatasetError(f"{self.root} is MSD's Task01_BrainTumour ({msd}), not {wanted.title}: "
                                   "drop --release or pass --release msd-task01")
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
                raise DatasetError(f"--release {wanted.key}: {folder} is named as {release.title} cases, whose "
                                   f"files {wanted.title} does not name alike; drop --release or point --source "
                                   "at the right folder")
            return wanted
        pre_and_post = {"brats2023", _POST_TREATMENT.key} == set(releases) and all(
            folder.name.lower().startswith("brats-gli-") for folder, r in found if r.key == "brats2023")
        if pre_and_post:
            return _POST_TREATMENT
        if len(releases) > 1:
            listed = "; ".join(f"{r.title} (e.g. {f})" for r, f in releases.values())
            raise DatasetError(f"{self.root} mixes cases of several releases, whose label ids differ: {listed}; "
                               "build each release as its own dataset")
        return found[0][1]

    def _first_label_has_cavity(self, cases: list[_Case]) -> bool:
        """Whether the first glioma case's label file holds 4, BraTS 2024's resection cavity."""
        first = next((c for c in cases if c.labelled and c.case_id.lower().startswith("brats-gli-")
                      and c.files["seg"].is_file()), None)
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

    def _brats_case(self, folder: Path) -> _Case:
        release, case_id, sep = self.release, folder.name, self.release.separator
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
        return _Case(case_id, folder, files, labelled)

    def _msd_cases(self, task_dir: Path) -> list[_Case]:
        _msd_channels(task_dir / "dataset.json")  # fail early on an unreadable dataset.json
        cases = []
        for images, labelled in (("imagesTr", True), ("imagesTs", False)):
            folder = task_dir / images
            if not folder.is_dir():
                continue
            stems = sorted(nifti_stem(n) for n in os.listdir(folder) if is_nifti(n))
            if labelled and not stems:
                raise DatasetError(f"{folder} holds no cases (BRATS_NNN.nii.gz; ._* files are skipped): "
                                   "the training split would be empty")
            for stem in stems:
                image = next(folder / f"{stem}{s}" for s in (".nii.gz", ".nii") if (folder / f"{stem}{s}").is_file())
                files = {"image": image}
                if labelled:
                    labels = task_dir / "labelsTr"
                    files["seg"] = next((labels / f"{stem}{s}" for s in (".nii.gz", ".nii")
                                         if (labels / f"{stem}{s}").is_file()), labels / image.name)
                cases.append(_Case(stem, folder, files, labelled))
        return cases

    def _split_of(self) -> dict[str, str]:
        cases = self._cases if self._cases is not None else self._scan()
        self._cases = cases
        labelled = [c.case_id for c in cases if c.labelled]
        val = holdout(labelled, self.val_fraction)
        return {c.case_id: ("val" if c.case_id in val else "train") if c.labelled else "pred" for c in cases}

    def splits(self) -> list[str]:
        present = set(self._split_of().values())
        return [s for s in ("train", "val", "pred") if s in present]

    def is_labelled(self, split: str) -> bool:
        return split != "pred"

    def items(self, split: str) -> list[SourceItem]:
        if split not in ("train", "val", "pred"):
            raise DatasetError(f"BraTS has no split {split!r}; it has: train, val (a holdout of the labelled "
                               "cases), pred (cases without labels)")
        where = self._split_of()
        return [SourceItem(key=c.case_id, files=dict(c.files)) for c in self._cases if where[c.case_id] == split]

    def describe(self) -> dict:
        """What was detected, for ``dataset_info.json``: release, labels, regions, default challenge."""
        labels = self.release.label_set
        return {"reader": "BratsSource", "release": self.release.key, "release_title": self.release.title,
                "release_detected": self.detected, "label_set": labels.key, "modalities": list(MODALITIES),
                "val_fraction": self.val_fraction,
                "regions": {k: list(v) for k, v in labels.regions.items()},
                "challenge": challenge_for(self._recorded_release(self._cases[0].case_id)) if self._cases else None}

    def summary(self) -> str:
        """One paragraph for the build script to print: the release read, its labels and regions."""
        info = self.describe()
        how = "detected from the case names" if self.detected else "--release"
        names = ", ".join(f"{s} {n}" for s, n in zip(self.label_map.source_ids, self.label_map.names))
        regions = "; ".join(f"{r} = {'+'.join(str(i) for i in ids)}" for r, ids in info["regions"].items())
        return (f"release: {self.release.title} ({self.release.key}, {how})\n"
                f"labels (file ids): {names}\nregions (file ids): {regions}\n"
                f"evaluate.py scores them lesion-wise as BraTS challenge {info['challenge']} "
                "(config key eval.brats_challenge overrides it)")

    # ------------------------------------------------------------------------------ encoding

    def _lookup(self) -> LabelLookup:
        return LabelLookup(dataset=f"{self.release.title} labels", source_ids=self.label_map.source_ids,
                           known=self.release.source_ids, ignore_label=self.label_map.ignore_label)

    def _recorded_release(self, case_id: str) -> str:
        """``volume/release`` of a case: the release key, 2023+ with the case's cohort (``brats2023-men``)."""
        if self.release.key == "brats2023":
            return f"brats2023-{case_id.split('-')[1].lower()}"
        return self.release.key

    def encode(self, item: SourceItem, split: str) -> bytes:
        from skelgen_runtime.schemas.volume import encode_example

        if "image" in item.files:
            volume, reference, ref_path = self._read_msd(item)
        else:
            volume, reference, ref_path = self._read_modalities(item)
        label = None
        if self.is_labelled(split):
            label = self._read_label(item, volume.shape[:3], ref_path)
        spacing = tuple(float(z) for z in reference.header.get_zooms()[:3])[::-1]  # (i, j, k) -> (D, H, W)
        example = encode_example(
            volume=volume, spacing=spacing, affine=reference.affine, nifti_header=header_bytes(reference),
            case_id=item.key, modalities=MODALITIES, release=self._recorded_release(item.key), label=label,
        )
        del volume, label  # the example holds its own copy: free ours before serialising makes another
        return example.SerializeToString()

    def _read_modalities(self, item: SourceItem) -> tuple[np.ndarray, object, Path]:
        """The 4 modality files -> ``(D, H, W, 4)`` in canonical order, the t1 image, its path."""
        from skelgen_runtime.schemas.volume import DTYPES, from_nifti_axes

        missing = [m for m in MODALITIES if not item.files[m].is_file()]
        if missing:
            names = ", ".join(f"{m} ({item.files[m].name})" for m in missing)
            raise BadExampleError(str(item.files[missing[0]].parent), f"case {item.key}: modality {names} is missing")
        volume = reference = None
        shape_of: dict[str, tuple] = {}
        for c, modality in enumerate(MODALITIES):
            data, image = read_nifti(item.files[modality])
            if data.ndim != 3:
                raise BadExampleError(str(item.files[modality]), f"case {item.key}: {modality} has shape "
                                      f"{data.shape}; expected a 3D volume")
            if volume is None:
                dtype = data.dtype if data.dtype.name in DTYPES else np.dtype(np.float64)
                volume = np.empty((*data.shape[::-1], len(MODALITIES)), dtype=dtype)
                reference = image
            if data.shape[::-1] != volume.shape[:3]:
                first = MODALITIES[0]
                raise BadExampleError(str(item.files[modality]), f"case {item.key}: modalities differ in shape: "
                                      f"{modality} is {_fmt(data.shape)} but {first} is {_fmt(shape_of[first])}")
            shape_of[modality] = data.shape
            if np.result_type(volume.dtype, data.dtype) != volume.dtype:  # keep every value exactly
                volume = volume.astype(np.result_type(volume.dtype, data.dtype))
            volume[..., c] = from_nifti_axes(data)
            del data
        return volume, reference, item.files[MODALITIES[0]]

    def _read_msd(self, item: SourceItem) -> tuple[np.ndarray, object, Path]:
        """One 4D MSD file -> ``(D, H, W, 4)`` in canonical order."""
        from skelgen_runtime.schemas.volume import DTYPES, from_nifti_axes

        path = item.files["image"]
        channels = _msd_channels(path.parent.parent / "dataset.json")
        data, image = read_nifti(path)
        if data.ndim != 4 or data.shape[3] != len(channels):
            raise BadExampleError(str(path), f"case {item.key}: image has shape {data.shape}; expected 4D with "
                                  f"{len(channels)} channels ({', '.join(channels)})")
        order = [channels.index(m) for m in MODALITIES]
        if data.dtype.name not in DTYPES:
            data = data.astype(np.float64)
        volume = np.ascontiguousarray(from_nifti_axes(data)[..., order])
        return volume, image, path

    def _read_label(self, item: SourceItem, shape: tuple[int, ...], ref_path: Path) -> np.ndarray:
        from skelgen_runtime.schemas.volume import from_nifti_axes

        path = item.files.get("seg")
        if path is None or not path.is_file():
            where = f" (expected {path})" if path is not None else ""
            raise BadExampleError(str(path.parent if path else ref_path.parent),
                                  f"training case {item.key} has no seg label file{where}")
        data, _ = read_nifti(path)
        if data.shape[::-1] != shape:
            raise BadExampleError(str(path), f"case {item.key}: label is {_fmt(data.shape)} but the images are "
                                  f"{_fmt(shape[::-1])}")
        if data.dtype.kind == "f":
            if not np.array_equal(data, np.round(data)):
                raise BadExampleError(str(path), f"case {item.key}: label holds non-integer values")
        low, high = data.min(), data.max()
        if low < 0 or high > 255:
            raise BadExampleError(str(path), f"case {item.key}: label values {low}..{high} are not "
                                  f"{self.release.title} labels (expected {_ids(self.release.source_ids)})")
        label = np.ascontiguousarray(from_nifti_axes(data.astype(np.uint8)))
        try:
            return self._lookup().apply(label, path)
        except BadExampleError as err:
            if self.release.key == "brats2023" and (label == 4).any():
                raise BadExampleError(str(path), f"{err.reason}; 4 is the resection cavity of {_POST_TREATMENT.title}: "
                                      f"build with --release {_POST_TREATMENT.key}") from None
            raise


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _ids(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in sorted(values))
