"""Region-based outputs for volume segmentation (``model.output: regions``, nnU-Net's BraTS setting).

The BraTS challenges score nested regions (WT contains TC contains ET), not the exclusive labels a
softmax predicts. With ``model.output: regions`` a model has one sigmoid output per region of the
release (``skelgen_runtime.sources.brats_releases.LABEL_SETS``: WT, TC, ET; the 2024 post-treatment
regions add NETC, SNFH, RC), trained with binary cross-entropy plus soft Dice per region
(:func:`skelgen_runtime.losses.region_dice_bce`), and its outputs go back to the release's labels
by the **nesting rule** (:class:`RegionTable`):

- a region's *own label* is the one label of the region that no smaller region of the release holds
  (WT: edema; TC: necrosis; ET: enhancing tumour); a region made wholly of smaller regions (the 2024
  WT and TC) has none and only trains, as an extra target;
- a voxel takes the own label of the smallest region whose probability is above 0.5: regions are
  painted from the largest to the smallest (ties in table order), each over the ones before.

Every label map of the release round-trips through its regions (:meth:`RegionTable.check`), or the
release cannot be trained this way and is refused, naming the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from skelgen_runtime.errors import ConfigError

__all__ = [
    "OUTPUTS",
    "LABEL_LOSSES",
    "RegionTable",
    "output_mode",
    "region_table",
    "model_outputs",
    "check_region_loss",
]

#: the template's losses of softmax outputs, which a region model cannot train with
LABEL_LOSSES = ("ce", "dice", "dice_ce", "focal")

#: what ``model.output`` may be
OUTPUTS = ("labels", "regions")


def output_mode(config: Any) -> str:
    """``model.output`` of a config (``labels`` where its schema has no such key)."""
    return str(getattr(getattr(config, "model", None), "output", "labels") or "labels")


@dataclass(frozen=True)
class RegionTable:
    """The regions of a release in training ids, and how outputs go back to labels.

    Attributes:
        names: region names, in table order (the model's output channels).
        membership: ``(num_classes, num_regions)`` bool: which training ids each region holds.
        own: per region, its own label (training id), or None.
        order: region indices in painting order (largest first).
    """

    names: tuple[str, ...]
    membership: np.ndarray
    own: tuple[int | None, ...]
    order: tuple[int, ...]

    @classmethod
    def build(cls, regions: Mapping[str, Sequence[int]], num_classes: int) -> "RegionTable":
        """The table of ``regions`` (name -> training ids), checked to round-trip every label."""
        names = tuple(regions)
        membership = np.zeros((num_classes, len(names)), bool)
        for r, ids in enumerate(regions.values()):
            membership[list(ids), r] = True
        sets = [frozenset(int(i) for i in ids) for ids in regions.values()]
        own: list[int | None] = []
        for name, held in zip(names, sets):
            inner = set().union(*(s for s in sets if s < held))
            left = sorted(held - inner)
            if len(left) > 1:
                raise ConfigError(
                    f"model.output regions: region {name} holds labels {left} that no smaller region tells apart; "
                    "train with model.output labels"
                )
            own.append(left[0] if left else None)
        order = tuple(sorted(range(len(names)), key=lambda r: (-len(sets[r]), r)))
        table = cls(names, membership, tuple(own), order)
        table.check()
        return table

    def to_regions(self, labels: np.ndarray) -> np.ndarray:
        """Label ids ``(...)`` -> region masks ``(..., R)`` bool."""
        return self.membership[np.asarray(labels)]

    def to_labels(self, probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Region probabilities ``(..., R)`` -> training ids ``(...)`` uint8 by the nesting rule."""
        probabilities = np.asarray(probabilities)
        out = np.zeros(probabilities.shape[:-1], np.uint8)
        for r in self.order:
            label = self.own[r]
            if label is not None:
                out[probabilities[..., r] > threshold] = label
        return out

    def check(self) -> None:
        """Every label (and background) comes back from its own regions.

        Raises:
            ConfigError: a label that does not, named (the release cannot be trained on regions).
        """
        labels = np.arange(self.membership.shape[0])
        back = self.to_labels(self.to_regions(labels).astype(np.float32))
        wrong = [int(i) for i in labels[back != labels]]
        if wrong:
            raise ConfigError(
                f"model.output regions: labels {wrong} do not come back from the regions {', '.join(self.names)} "
                "by the nesting rule; train with model.output labels"
            )


def region_table(info: Any) -> RegionTable:
    """The release's regions of a volume dataset (``dataset_info.json``), as a :class:`RegionTable`.

    Raises:
        ConfigError: the dataset is of no BraTS release (no regions to train), or its regions do not
            round-trip.
    """
    from skelgen_runtime.sources.brats_releases import regions_for
    from skelgen_runtime.tasks.volume_scoring import regions

    release = (info.data.get("source_info") or {}).get("release")
    if not release or regions_for(release) is None:
        raise ConfigError(
            f"model.output regions needs a dataset of a BraTS release (its nested regions); "
            f"{info.folder.parent.name} has none: train with model.output labels"
        )
    return RegionTable.build(regions(info, release), info.num_classes)


def model_outputs(config: Any, info: Any) -> int:
    """Output channels of the model: the class count, or with ``model.output: regions`` the region count."""
    if output_mode(config) != "regions":
        return int(info.num_classes)
    return len(region_table(info).names)


def check_region_loss(config: Any) -> None:
    """Refuse ``model.output: regions`` with a loss of softmax labels (:data:`LABEL_LOSSES`).

    Raises:
        ConfigError: naming the loss and the one to use.
    """
    loss = getattr(getattr(config, "train", None), "loss", None)
    if output_mode(config) == "regions" and loss in LABEL_LOSSES:
        raise ConfigError(
            f"model.output regions trains one sigmoid output per region: train.loss {loss!r} is a loss of softmax "
            "labels; use train.loss region_dice_bce (core/losses.py)"
        )
