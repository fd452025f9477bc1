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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from skelgen_runtime.errors import BadExampleError, DatasetError
from skelgen_runtime.labels import LabelLookup
from skelgen_runtime.sources._nifti import header_bytes, read_nifti
from skelgen_runtime.sources._published import complete_label_map
from skelgen_runtime.sources.base import LabelMap, SourceItem
from skelgen_runtime.sources.brats_cases import FOLDS, MODALITIES, Case, folds, holdout, list_cases, msd_channels
from skelgen_runtime.sources.brats_releases import (
    LABEL_SETS,
    RELEASES,
    Release,
    challenge_for,
    get_release,
    regions_for,
    release_keys,
)

#: how 2024's post-treatment glioma is named in messages about label 4
_POST_TREATMENT = get_release("brats2024-gli")
_PAEDIATRIC = get_release("brats2024-ped")

__all__ = ["BratsSource", "Release", "RELEASES", "MODALITIES", "LABEL_SETS", "regions_for", "holdout"]


@dataclass(init=False)
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

    #: what the build writes (``skelgen_runtime.schemas.volume``: arrays deflated inside the records), 8 cases per shard
    record_schema: ClassVar[str] = "volume_segmentation"
    default_shard_size: ClassVar[int] = 8
    #: the build script's own options (``records.build.main(extra_options=...)``), passed to the constructor
    build_options: ClassVar[dict[str, dict]] = {
        "--release": {
            "choices": release_keys(),
            "default": None,
            "help": "read the folder as this BraTS release (default: detected from the case names)",
        },
    }

    root: Path
    label_map: LabelMap
    val_fraction: float
    release: Release
    detected: bool
    _cases: list[Case] | None = field(repr=False)

    def __init__(
        self,
        root: Path,
        label_map: LabelMap | None = None,
        val_fraction: float = 0.2,
        release: Release | str | None = None,
    ) -> None:
        self.root = Path(root)
        self.val_fraction = val_fraction
        if not 0 <= val_fraction < 1:
            raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
        wanted = get_release(release) if isinstance(release, str) else release
        self.detected = wanted is None
        self.release, self._cases = list_cases(self.root, wanted)
        labels = self.release.label_set
        self.label_map = complete_label_map(
            label_map or LabelMap(labels.classes),
            dataset=f"BraTS ({self.release.title})",
            source_ids=labels.source_ids,
            colors=labels.colors,
        )
        self._lookup()  # fail now on a label map whose source ids are not the release's

    def __getstate__(self) -> dict:
        # workers only encode: they need the release, not the case list
        return {**self.__dict__, "_cases": None}

    def _split_of(self) -> dict[str, str]:
        if self._cases is None:  # unpickled in a worker: list again, as the release read
            self.release, self._cases = list_cases(self.root, self.release)
        cases = self._cases
        labelled = [c.case_id for c in cases if c.labelled]
        val = holdout(labelled, self.val_fraction)
        return {c.case_id: ("val" if c.case_id in val else "train") if c.labelled else "pred" for c in cases}

    def _folds(self) -> dict | None:
        """``{"k", "cases": {case_id: fold}}`` over the labelled cases (5 folds; fewer with fewer cases; None below 2)."""
        labelled = [c for c, split in self._split_of().items() if split != "pred"]
        if len(labelled) < 2:
            return None
        k = min(FOLDS, len(labelled))
        return {"k": k, "cases": folds(labelled, k)}

    def splits(self) -> list[str]:
        present = set(self._split_of().values())
        return [s for s in ("train", "val", "pred") if s in present]

    def is_labelled(self, split: str) -> bool:
        return split != "pred"

    def items(self, split: str) -> list[SourceItem]:
        if split not in ("train", "val", "pred"):
            raise DatasetError(
                f"BraTS has no split {split!r}; it has: train, val (a holdout of the labelled "
                "cases), pred (cases without labels)"
            )
        where = self._split_of()
        return [SourceItem(key=c.case_id, files=dict(c.files)) for c in self._cases or () if where[c.case_id] == split]

    def describe(self) -> dict:
        """What was detected, for ``dataset_info.json``: release, labels, regions, default challenge."""
        labels = self.release.label_set
        return {
            "reader": "BratsSource",
            "release": self.release.key,
            "release_title": self.release.title,
            "release_detected": self.detected,
            "label_set": labels.key,
            "modalities": list(MODALITIES),
            "val_fraction": self.val_fraction,
            "regions": {k: list(v) for k, v in labels.regions.items()},
            "challenge": challenge_for(self._recorded_release(self._cases[0].case_id)) if self._cases else None,
            # cross-validation over every labelled case (train and val): python train.py --fold K
            "folds": self._folds(),
        }

    def summary(self) -> str:
        """One paragraph for the build script to print: the release read, its labels and regions."""
        info = self.describe()
        how = "detected from the case names" if self.detected else "--release"
        names = ", ".join(f"{s} {n}" for s, n in zip(self.label_map.source_ids, self.label_map.names))
        regions = "; ".join(f"{r} = {'+'.join(str(i) for i in ids)}" for r, ids in info["regions"].items())
        return (
            f"release: {self.release.title} ({self.release.key}, {how})\n"
            f"labels (file ids): {names}\nregions (file ids): {regions}\n"
            f"evaluate.py scores them lesion-wise as BraTS challenge {info['challenge']} "
            "(config key eval.brats_challenge overrides it)"
        )

    # ------------------------------------------------------------------------------ encoding

    def _lookup(self) -> LabelLookup:
        return LabelLookup(
            dataset=f"{self.release.title} labels",
            source_ids=self.label_map.source_ids,
            known=self.release.source_ids,
            ignore_label=self.label_map.ignore_label,
        )

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
            volume=volume,
            spacing=spacing,
            affine=reference.affine,
            nifti_header=header_bytes(reference),
            case_id=item.key,
            modalities=MODALITIES,
            release=self._recorded_release(item.key),
            label=label,
        )
        del volume, label  # the example holds its own copy: free ours before serialising makes another
        return example.SerializeToString()

    def _read_modalities(self, item: SourceItem) -> tuple[np.ndarray, Any, Path]:
        """The 4 modality files -> ``(D, H, W, 4)`` in canonical order, the t1 image, its path."""
        from skelgen_runtime.schemas.volume import DTYPES, from_nifti_axes

        missing = [m for m in MODALITIES if not item.files[m].is_file()]
        if missing:
            names = ", ".join(f"{m} ({item.files[m].name})" for m in missing)
            raise BadExampleError(str(item.files[missing[0]].parent), f"case {item.key}: modality {names} is missing")
        volume: np.ndarray | None = None
        reference: Any = None
        shape_of: dict[str, tuple] = {}
        for c, modality in enumerate(MODALITIES):
            data, image = read_nifti(item.files[modality])
            if data.ndim != 3:
                raise BadExampleError(
                    str(item.files[modality]),
                    f"case {item.key}: {modality} has shape {data.shape}; expected a 3D volume",
                )
            if volume is None:
                dtype = data.dtype if data.dtype.name in DTYPES else np.dtype(np.float64)
                volume = np.empty((*data.shape[::-1], len(MODALITIES)), dtype=dtype)
                reference = image
            if data.shape[::-1] != volume.shape[:3]:
                first = MODALITIES[0]
                raise BadExampleError(
                    str(item.files[modality]),
                    f"case {item.key}: modalities differ in shape: "
                    f"{modality} is {_fmt(data.shape)} but {first} is {_fmt(shape_of[first])}",
                )
            shape_of[modality] = data.shape
            if np.result_type(volume.dtype, data.dtype) != volume.dtype:  # keep every value exactly
                volume = volume.astype(np.result_type(volume.dtype, data.dtype))
            volume[..., c] = from_nifti_axes(data)
            del data
        assert volume is not None  # four modalities were read
        return volume, reference, item.files[MODALITIES[0]]

    def _read_msd(self, item: SourceItem) -> tuple[np.ndarray, Any, Path]:
        """One 4D MSD file -> ``(D, H, W, 4)`` in canonical order."""
        from skelgen_runtime.schemas.volume import DTYPES, from_nifti_axes

        path = item.files["image"]
        channels = msd_channels(path.parent.parent / "dataset.json")
        data, image = read_nifti(path)
        if data.ndim != 4 or data.shape[3] != len(channels):
            raise BadExampleError(
                str(path),
                f"case {item.key}: image has shape {data.shape}; expected 4D with "
                f"{len(channels)} channels ({', '.join(channels)})",
            )
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
            raise BadExampleError(
                str(path.parent if path else ref_path.parent), f"training case {item.key} has no seg label file{where}"
            )
        data, _ = read_nifti(path)
        if data.shape[::-1] != shape:
            raise BadExampleError(
                str(path), f"case {item.key}: label is {_fmt(data.shape)} but the images are {_fmt(shape[::-1])}"
            )
        if data.dtype.kind == "f":
            if not np.array_equal(data, np.round(data)):
                raise BadExampleError(str(path), f"case {item.key}: label holds non-integer values")
        low, high = data.min(), data.max()
        if low < 0 or high > 255:
            raise BadExampleError(
                str(path),
                f"case {item.key}: label values {low}..{high} are not "
                f"{self.release.title} labels (expected {_ids(self.release.source_ids)})",
            )
        label = np.ascontiguousarray(from_nifti_axes(data.astype(np.uint8)))
        try:
            return self._lookup().apply(label, path)
        except BadExampleError as err:
            if self.release.key == "brats2023" and (label == 4).any():
                paediatric = item.key.upper().startswith("BRATS-PED-")
                other = _PAEDIATRIC if paediatric else _POST_TREATMENT
                meaning = "edema" if paediatric else "the resection cavity"
                raise BadExampleError(
                    str(path),
                    f"{err.reason}; 4 is {meaning} of {other.title}: build with --release {other.key}",
                ) from None
            raise


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _ids(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in sorted(values))
