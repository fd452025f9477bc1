"""BraTS releases: how each names its files, and its label set (classes, label ids, regions). Plain data.

:data:`LABEL_SETS` is the one table of label ids, training classes, evaluation regions and the
challenge whose lesion-wise parameters score them (:mod:`skelgen_runtime.metrics.brats_challenges`);
:data:`RELEASES` says which label set each published naming uses.

=====================  ===========================  ===============================================
label set              file ids (training order)    regions (file ids)
=====================  ===========================  ===============================================
brats2018-2021         0, 1 NCR/NET, 2 ED, 4 ET     WT 1,2,4; TC 1,4; ET 4
brats2023              0, 1 NCR, 2 ED, 3 ET         WT 1,2,3; TC 1,3; ET 3
brats2024-gli-post     0, 1 NETC, 2 SNFH, 3 ET,     WT 1,2,3; TC 1,3; NETC 1; SNFH 2; ET 3; RC 4
                       4 RC
msd                    0, 2 non-enhancing,          WT 1,2,3; TC 2,3; ET 3
                       1 edema, 3 enhancing
brats2024-ped          0, 1 ET, 2 NETC, 3 CC,       WT 1,2,3,4; TC 1,2,3; ET 1; NETC 2; CC 3; ED 4
                       4 ED
=====================  ===========================  ===============================================

Sources: the 2023 regions are ``get_TissueWiseSeg`` of ``rachitsaluja/BraTS-2023-Metrics``
(commit ``43c905242b2eecf421d4ab2da7af8ece9777d322``, ``metrics.py``); the 2024 post-treatment
glioma ids and regions (resection cavity RC outside WT) are ``get_TissueWiseSeg`` of
``rachitsaluja/BraTS-2024-Metrics`` (commit ``9a0ab9c7d75f158a3ea685cd44ac059c3a6712a1``,
``metrics_GLI.py``); the same release's volumes are 182x218x182 (``DIM_GLI_POSTOP`` in
``evaluation/lesionwise/validate2024.py`` of ``Sage-Bionetworks-Challenges/brats2023``, commit
``f429fcc69491e90d942f43f06142e413c63da8bc``). 2018-2021 use 4 for ET (no label 3); MSD Task01's
``dataset.json`` lists 1 edema, 2 non-enhancing tumour, 3 enhancing tumour. The paediatric ids since
2024 (enhancing tumour 1, non-enhancing tumour 2, cystic component 3, edema 4) and their regions are the
groups of ``brats_evaluation/configs/config_ped.yaml`` (brats-evaluation 0.0.10 on PyPI, the organisers'
2025 scorer's configuration). Their cases are named like 2023's (``BraTS-PED-00001-000``), so the
release is never detected: build such a folder with ``--release brats2024-ped``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skelgen_runtime.errors import DatasetError
from skelgen_runtime.published_classes import BRATS_CLASSES, BRATS_PED_CLASSES, BRATS_POST_TREATMENT_CLASSES

__all__ = [
    "LabelSet",
    "LABEL_SETS",
    "Release",
    "RELEASES",
    "MSD",
    "ALL_RELEASES",
    "release_keys",
    "get_release",
    "release_of",
    "label_set_for",
    "regions_for",
    "challenge_for",
]


@dataclass(frozen=True)
class LabelSet:
    """The labels of a family of releases.

    Attributes:
        key: e.g. ``"brats2023"``.
        classes: training class names, id 0 first.
        source_ids: the file's label value of each training class.
        colors: display colour of each training class.
        regions: evaluation region -> the file label values it is made of.
        challenge: key of the challenge whose lesion-wise parameters score it by default.
    """

    key: str
    classes: tuple[str, ...]
    source_ids: tuple[int, ...]
    colors: tuple[tuple[int, int, int], ...]
    regions: dict[str, tuple[int, ...]]
    challenge: str


_COLORS = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (255, 255, 0))
#: label set key -> label set: the one table of label ids, classes and regions of every release
LABEL_SETS: dict[str, LabelSet] = {
    s.key: s
    for s in (
        LabelSet(
            "brats2018-2021", BRATS_CLASSES, (0, 1, 2, 4), _COLORS, {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}, "GLI"
        ),
        LabelSet("brats2023", BRATS_CLASSES, (0, 1, 2, 3), _COLORS, {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}, "GLI"),
        LabelSet(
            "brats2024-gli-post",
            BRATS_POST_TREATMENT_CLASSES,
            (0, 1, 2, 3, 4),
            (*_COLORS, (0, 128, 255)),
            {"WT": (1, 2, 3), "TC": (1, 3), "NETC": (1,), "SNFH": (2,), "ET": (3,), "RC": (4,)},
            "GLI2024",
        ),
        LabelSet("msd", BRATS_CLASSES, (0, 2, 1, 3), _COLORS, {"WT": (1, 2, 3), "TC": (2, 3), "ET": (3,)}, "GLI"),
        LabelSet(
            "brats2024-ped",
            BRATS_PED_CLASSES,
            (0, 1, 2, 3, 4),
            ((0, 0, 0), (255, 255, 0), (255, 0, 0), (0, 128, 255), (0, 255, 0)),
            {"WT": (1, 2, 3, 4), "TC": (1, 2, 3), "ET": (1,), "NETC": (2,), "CC": (3,), "ED": (4,)},
            "PED2025",
        ),
    )
}


@dataclass(frozen=True)
class Release:
    """One published naming convention and the label set its files use.

    Attributes:
        key: recorded as ``volume/release`` (2023+: with the cohort, e.g. ``"brats2023-men"``).
        title: for messages, e.g. ``"BraTS 2021"``.
        pattern: matches the release's case folder names (case-insensitive).
        separator: between case id and file tag (``_`` or ``-``).
        tags: canonical modality -> the tag in the file name.
        labels: key of its :data:`LABEL_SETS` entry.
    """

    key: str
    title: str
    pattern: str
    separator: str
    tags: dict[str, str]
    labels: str

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.pattern, name, flags=re.IGNORECASE) is not None

    @property
    def label_set(self) -> LabelSet:
        return LABEL_SETS[self.labels]

    @property
    def source_ids(self) -> tuple[int, ...]:
        return self.label_set.source_ids

    def same_naming(self, other: "Release") -> bool:
        """Whether both name their case folders and files alike (so one can be read as the other)."""
        return (self.separator, self.tags) == (other.separator, other.tags) and self is not MSD and other is not MSD


_OLD_TAGS = {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair"}
_NEW_TAGS = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f"}
#: BraTS releases in the order case folder names are tried (the 2024 naming is a special case of 2023's)
RELEASES = (
    Release("brats2018", "BraTS 2018", r"brats18_.+", "_", _OLD_TAGS, "brats2018-2021"),
    Release("brats2019", "BraTS 2019", r"brats19_.+", "_", _OLD_TAGS, "brats2018-2021"),
    Release("brats2020", "BraTS 2020", r"brats20_(training|validation|testing)_\d+", "_", _OLD_TAGS, "brats2018-2021"),
    Release("brats2021", "BraTS 2021", r"brats2021_\d+", "_", _OLD_TAGS, "brats2018-2021"),
    # post-treatment glioma: time points 1YY (BraTS-GLI-02073-100); pre-treatment cases are -000
    Release(
        "brats2024-gli",
        "BraTS 2024 post-treatment glioma",
        r"brats-gli-\d+-1\d\d",
        "-",
        _NEW_TAGS,
        "brats2024-gli-post",
    ),
    Release("brats2023", "BraTS 2023+", r"brats-[a-z]+-\d+-\d+", "-", _NEW_TAGS, "brats2023"),
    # named like 2023's paediatric cases (matched by brats2023 first): only read as such by --release
    Release("brats2024-ped", "BraTS 2024+ paediatric", r"brats-ped-\d+-\d+", "-", _NEW_TAGS, "brats2024-ped"),
)
MSD = Release("msd-task01", "MSD Task01_BrainTumour", r"brats_\d+", "", {}, "msd")
ALL_RELEASES = (*RELEASES, MSD)


def release_keys() -> list[str]:
    """Every release key ``--release`` accepts."""
    return [r.key for r in ALL_RELEASES]


def get_release(key: str) -> Release:
    """The release called ``key``; raise :class:`DatasetError` listing the known ones."""
    for release in ALL_RELEASES:
        if release.key == key.strip().lower():
            return release
    raise DatasetError(f"unknown BraTS release {key!r}; choose one of: {', '.join(release_keys())}")


def release_of(recorded: str) -> Release | None:
    """The release of a recorded ``volume/release`` (``brats2023-men`` -> brats2023); None if unknown."""
    for release in ALL_RELEASES:
        if recorded == release.key or recorded.startswith(release.key + "-"):
            return release
    return None


def label_set_for(recorded: str) -> LabelSet | None:
    """The label set of a recorded ``volume/release``; None if unknown."""
    release = release_of(recorded)
    return release.label_set if release else None


def regions_for(recorded: str) -> dict[str, tuple[int, ...]] | None:
    """The evaluation regions (in the release's own label ids) of a recorded ``volume/release``; None if unknown."""
    labels = label_set_for(recorded)
    return dict(labels.regions) if labels else None


def challenge_for(recorded: str) -> str | None:
    """The challenge that scores a recorded ``volume/release`` by default: 2023+ by its cohort
    (``brats2023-men`` -> MEN; an unknown cohort -> GLI), else its label set's; None if unknown."""
    from skelgen_runtime.metrics.brats_challenges import CHALLENGES

    release = release_of(recorded)
    if release is None:
        return None
    if release.key == "brats2023":
        cohort = recorded[len(release.key) + 1 :].upper()
        return cohort if cohort in CHALLENGES else release.label_set.challenge
    return release.label_set.challenge
