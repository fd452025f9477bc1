"""The BraTS challenges' lesion-wise scoring parameters, one table: plain data, no TensorFlow.

Since 2023 the BraTS challenges rank by *lesion-wise* Dice and HD95
(:func:`skelgen_runtime.metrics.lesions.lesion_wise` states the definition). Each sub-challenge sets
how far ground-truth lesions are dilated to group them and to match predictions (``dilation``,
iterations of the 18-neighbour structure), which ground-truth lesions are too small to score
(``threshold``: a lesion of at most this volume in mm^3 is left out) and the HD95 given to a missed
or a false-positive lesion (``penalty``, mm), and how HD95 is computed (``hd95``, a key of :data:`HD95_DEFINITIONS`): the 2023
and 2024 scripts call DeepMind's ``surface-distance`` package (:mod:`skelgen_runtime.metrics.surfels`)
for the lesion-wise and for the full HD95, with the spacing of the NIfTI header.

Sources (read, not copied):

- 2023, all sub-challenges: ``rachitsaluja/BraTS-2023-Metrics`` at commit
  ``43c905242b2eecf421d4ab2da7af8ece9777d322``, ``metrics.py``, ``get_LesionWiseResults``
  (``dilation_factor`` and ``lesion_volume_thresh`` per ``challenge_name``; ``np.inf`` replaced by 374).
  The Synapse evaluation workflow ``Sage-Bionetworks-Challenges/brats2023`` (commit
  ``f429fcc69491e90d942f43f06142e413c63da8bc``) pins this commit as ``evaluation/lesionwise/BraTS-2023-Metrics``.
- 2024 post-treatment adult glioma: ``rachitsaluja/BraTS-2024-Metrics`` at commit
  ``9a0ab9c7d75f158a3ea685cd44ac059c3a6712a1`` (pinned by the same workflow as
  ``evaluation/lesionwise/BraTS-2024-Metrics``), ``metrics_GLI.py``: ``save_tmp_files`` (dilation 5 for
  NETC and RC, else 3 -- the script's test for SNFH is spelt ``"SFNH"``, so SNFH gets 3; threshold 10
  for ET, else 20; predicted groups of at most that many voxels removed), ``combine_lesions_*``
  (touching lesions of NETC, SNFH, ET and RC merged) and ``get_LesionWiseResults`` (penalty 337).

**2025 editions** (keys ending in ``2025``) are scored by the organisers with panoptica
(``BrainLesion/panoptica``, Apache-2.0; the optional extra ``skelgen-tf[brats]``), configured by their
evaluation package ``brats-evaluation`` 0.0.10 (PyPI, ``BrainLesion/BraTS-evaluation``; read, not copied):
``configs/config_gli.yaml``, ``config_mets.yaml``, ``config_ped.yaml``, ``config_MenPre.yaml`` and
``config_GoAT.yaml``, and ``metrics_parser.py``. :data:`PANOPTICA_2025` restates what every one of those
configurations sets alike, :data:`CHALLENGES` the region groups (file label ids) of each:

- input semantic label maps; instances are the connected components of each group
  (``ConnectedComponentsInstanceApproximator``, panoptica's cc3d backend);
- matching: maximum bipartite matching on Dice, a pair matches above Dice 1e-6 (``MaxBipartiteMatching``);
- per-instance and global metrics DSC, NSD and HD95 (panoptica's: NSD within the smallest voxel spacing,
  HD95 the 95th percentile of both directions' surface distances pooled, unweighted);
- zero true positives: DSC and NSD 0, HD95 infinite; no instance in either mask: NaN (every metric);
- ``metrics_parser.py``: an infinite *global* HD95 is reported as 373 ("diameter of the cube in SRI
  space"); the lesion-wise HD95 stays infinite; means over cases skip NaN (pandas' ``mean``).

==========  ==================  ============================================================
key         config              groups (file label ids)
==========  ==================  ============================================================
GLI2025     config_gli          NETC 1; SNFH 2; ET 3; RC 4; TC 1,3; WT 1,2,3
MET2025     config_mets         ET 3; RC 4; TC 1,3; WT 1,2,3
MEN2025     config_MenPre       ET 3; TC 1,3; WT 1,2,3
GOAT2025    config_GoAT         ET 3; TC 1,3; WT 1,2,3
PED2025     config_ped          ET 1; NETC 2; CC 3; ED 4; TC 1,2,3; WT 1,2,3,4
==========  ==================  ============================================================

The radiotherapy meningioma task (``config_MenRT``: one GTV label, T1c only) is not supported.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Mapping

from skelgen_runtime.errors import ConfigError

__all__ = [
    "Challenge",
    "CHALLENGES",
    "HD95_DEFINITIONS",
    "VOXEL_SURFACE",
    "SURFACE_DISTANCE",
    "get_challenge",
    "challenge_keys",
    "PANOPTICA",
    "PanopticaRules",
    "PANOPTICA_2025",
]

#: skelgen's own HD95, for datasets no BraTS challenge scores (:mod:`skelgen_runtime.metrics.overlap`)
VOXEL_SURFACE = "voxel-surface"
#: the BraTS 2023 and 2024 scorers' HD95 (:mod:`skelgen_runtime.metrics.surfels`)
SURFACE_DISTANCE = "surface-distance"
#: what each HD95 definition is, as reports print it
HD95_DEFINITIONS = {
    VOXEL_SURFACE: "voxel-surface: the larger of the two directed 95th percentiles (linear interpolation) of "
    "distances between face-connected surface voxels, unweighted (skelgen's; no BraTS scorer's)",
    SURFACE_DISTANCE: "surface-distance: surfels on the voxel-corner lattice weighted by area, the 95th percentile "
    "of each direction by cumulative area, the larger of the two (DeepMind's surface-distance, as the "
    "BraTS 2023 and 2024 scorers)",
    "panoptica": "panoptica: the 95th percentile of both directions' surface distances pooled, unweighted "
    "(the BraTS 2025 scorer)",
}
#: the scorer of the 2025 editions (:mod:`skelgen_runtime.metrics.panoptica_scoring`), also its HD95's name
PANOPTICA = "panoptica"


@dataclass(frozen=True)
class PanopticaRules:
    """What the BraTS 2025 configurations of panoptica set alike (module docstring).

    Attributes:
        matching_threshold: a predicted and a reference instance match above this Dice.
        metrics: per-instance and global metrics, panoptica's names.
        zero_tp: metric -> its value when a mask has instances but none matches ("ZERO" or "INF");
            without any instance in either mask every metric is NaN.
        global_hd95_inf: what the organisers' parser reports for an infinite global HD95 (mm).
        source: the package and files the values were read from.
    """

    matching_threshold: float = 1e-6
    metrics: tuple[str, ...] = ("DSC", "NSD", "HD95")
    zero_tp: Mapping[str, str] = field(default_factory=lambda: {"DSC": "ZERO", "NSD": "ZERO", "HD95": "INF"})
    global_hd95_inf: float = 373.0
    source: str = "brats-evaluation 0.0.10 (PyPI) configs/config_*.yaml, metrics_parser.py"


PANOPTICA_2025 = PanopticaRules()

_SOURCE_2023 = "rachitsaluja/BraTS-2023-Metrics@43c905242b2eecf421d4ab2da7af8ece9777d322 metrics.py"
_SOURCE_2024_GLI = "rachitsaluja/BraTS-2024-Metrics@9a0ab9c7d75f158a3ea685cd44ac059c3a6712a1 metrics_GLI.py"


@dataclass(frozen=True)
class Challenge:
    """Lesion-wise scoring parameters of one BraTS sub-challenge.

    Attributes:
        key: the name ``eval.brats_challenge`` takes, e.g. ``"GLI"``.
        title: for reports, e.g. ``"BraTS 2023 adult glioma (GLI)"``.
        dilation: iterations of the 18-neighbour dilation that groups and matches lesions.
        threshold: ground-truth lesions of at most this volume (mm^3) are not scored.
        penalty: HD95 (mm) of a missed or a false-positive lesion, and the full HD95 when exactly
            one of prediction and ground truth is empty.
        source: repository, commit and file the parameters were read from.
        dilation_by_region: regions whose dilation differs from ``dilation``.
        threshold_by_region: regions whose threshold differs from ``threshold``.
        predicted_groups: False (2023): every 26-connected predicted component is one predicted
            lesion. True (2024): predicted components are grouped by dilation like the ground truth,
            and groups of at most ``threshold`` *voxels* are removed before matching and before the
            full Dice, HD95, sensitivity and specificity.
        merge_partners: region -> the regions whose lesions it is merged with, in order: lesions of
            the region that touch (18-neighbours) the same lesion of a partner become one lesion
            (2024: NETC, SNFH, ET and RC).
        hd95: the HD95 definition (a key of :data:`HD95_DEFINITIONS`).
        regions: the regions the challenge scores (a release whose regions differ is refused).
        groups: 2025 editions: region -> the file label ids panoptica scores it from, in the organisers'
            report order; a release of another label set (``label_sets``) is refused. Empty before 2025.
        label_sets: 2025 editions: the release label sets (``brats_releases.LABEL_SETS`` keys) whose
            label ids mean what ``groups`` assumes.
    """

    key: str
    title: str
    dilation: int
    threshold: float
    penalty: float
    source: str
    dilation_by_region: Mapping[str, int] = field(default_factory=dict)
    threshold_by_region: Mapping[str, float] = field(default_factory=dict)
    predicted_groups: bool = False
    merge_partners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hd95: str = SURFACE_DISTANCE
    regions: tuple[str, ...] = ("WT", "TC", "ET")
    groups: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    label_sets: tuple[str, ...] = ()

    @property
    def scorer(self) -> str:
        """``"panoptica"`` (2025 editions) or ``"lesion-wise"`` (the 2023 and 2024 scripts' definition)."""
        return PANOPTICA if self.groups else "lesion-wise"

    def __post_init__(self) -> None:
        if self.hd95 not in HD95_DEFINITIONS:
            raise ValueError(f"challenge {self.key}: unknown HD95 definition {self.hd95!r}")
        if min([self.dilation, *self.dilation_by_region.values()]) < 1:
            raise ValueError(f"challenge {self.key}: dilation must be at least 1 iteration")

    def dilation_of(self, region: str) -> int:
        """Dilation iterations for ``region``."""
        return self.dilation_by_region.get(region, self.dilation)

    def threshold_of(self, region: str) -> float:
        """Volume threshold for ``region`` (mm^3 for ground truth; voxels for predicted groups)."""
        return self.threshold_by_region.get(region, self.threshold)

    def describe(self, regions: tuple[str, ...] | list[str]) -> dict:
        """The parameters as used for ``regions``, for ``eval_SPLIT.json``."""
        if self.groups:
            rules = PANOPTICA_2025
            return {
                "key": self.key,
                "title": self.title,
                "scorer": PANOPTICA,
                "source": self.source,
                "groups": {r: list(ids) for r, ids in self.groups.items()},
                "matching": "maximum bipartite matching on Dice > "
                + f"{rules.matching_threshold:g}".replace("e-0", "e-"),
                "zero_tp": dict(rules.zero_tp),
                "global_hd95_inf": rules.global_hd95_inf,
                "penalty": self.penalty,
                "hd95": self.hd95,
                "regions": list(self.regions),
            }
        return {
            "scorer": self.scorer,
            "key": self.key,
            "title": self.title,
            "penalty": self.penalty,
            "source": self.source,
            "dilation": {r: self.dilation_of(r) for r in regions},
            "threshold": {r: self.threshold_of(r) for r in regions},
            "predicted_groups": self.predicted_groups,
            "hd95": self.hd95,
            "regions": list(self.regions),
        }


def _brats2023(key: str, cohort: str, dilation: int, threshold: float) -> Challenge:
    return Challenge(key, f"BraTS 2023 {cohort} ({key})", dilation, threshold, 374.0, _SOURCE_2023)


_ADULT = ("brats2023", "brats2024-gli-post")  # 1 NETC/NCR, 2 SNFH/ED, 3 ET (, 4 RC)


def _brats2025(key: str, cohort: str, config: str, groups: dict, label_sets: tuple[str, ...]) -> Challenge:
    """A 2025 edition: panoptica with the organisers' ``config`` (``dilation``/``threshold`` unused)."""
    source = f"brats-evaluation 0.0.10 (PyPI) brats_evaluation/configs/{config}.yaml"
    return Challenge(
        key,
        f"BraTS 2025 {cohort} ({key})",
        1,
        0.0,
        PANOPTICA_2025.global_hd95_inf,
        source,
        hd95=PANOPTICA,
        regions=tuple(groups),
        groups=groups,
        label_sets=label_sets,
    )


#: every challenge skelgen can score like, by ``eval.brats_challenge`` key
CHALLENGES: dict[str, Challenge] = {
    c.key: c
    for c in (
        _brats2023("GLI", "adult glioma", 3, 50),
        _brats2023("SSA", "glioma in sub-Saharan Africa", 3, 50),
        _brats2023("MEN", "meningioma", 1, 50),
        _brats2023("MET", "brain metastases", 1, 2),
        _brats2023("PED", "paediatric tumours", 3, 50),
        Challenge(
            "GLI2024",
            "BraTS 2024 post-treatment adult glioma (GLI2024)",
            3,
            20,
            337.0,
            _SOURCE_2024_GLI,
            dilation_by_region={"NETC": 5, "RC": 5},
            threshold_by_region={"ET": 10},
            predicted_groups=True,
            merge_partners={
                "NETC": ("ET", "RC"),
                "ET": ("NETC", "RC"),
                "RC": ("ET", "NETC"),
                "SNFH": ("ET", "RC", "NETC"),
            },
            regions=("WT", "TC", "NETC", "SNFH", "ET", "RC"),
        ),
        _brats2025(
            "GLI2025",
            "adult glioma",
            "config_gli",
            {"WT": (1, 2, 3), "TC": (1, 3), "NETC": (1,), "SNFH": (2,), "ET": (3,), "RC": (4,)},
            _ADULT,
        ),
        _brats2025(
            "MET2025",
            "brain metastases",
            "config_mets",
            {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,), "RC": (4,)},
            _ADULT,
        ),
        _brats2025(
            "MEN2025",
            "pre-operative meningioma",
            "config_MenPre",
            {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
            ("brats2023",),
        ),
        _brats2025(
            "GOAT2025",
            "generalisability across tumours",
            "config_GoAT",
            {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
            ("brats2023",),
        ),
        _brats2025(
            "PED2025",
            "paediatric tumours",
            "config_ped",
            {"WT": (1, 2, 3, 4), "TC": (1, 2, 3), "ET": (1,), "NETC": (2,), "CC": (3,), "ED": (4,)},
            ("brats2024-ped",),
        ),
    )
}


def challenge_keys() -> list[str]:
    """The keys of :data:`CHALLENGES`, in table order."""
    return list(CHALLENGES)


def get_challenge(key: str) -> Challenge:
    """The challenge called ``key`` (case-insensitive).

    Raises:
        ConfigError: unknown key; the message lists the known ones and the nearest.
    """
    found = CHALLENGES.get(str(key).strip().upper())
    if found is None:
        near = difflib.get_close_matches(str(key).upper(), CHALLENGES, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"eval.brats_challenge: unknown BraTS challenge {key!r}{hint}; choose one of: {', '.join(CHALLENGES)}"
        )
    return found
