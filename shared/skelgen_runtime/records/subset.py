"""``--max-examples N``: which ``N`` examples of a split a build keeps.

Not the first ``N`` by key: an image folder sorts by class, so the first ``N`` are one class, and a
model trained on them scores perfectly on a validation split of that same class. The subset is a
seeded random sample that keeps every class the listing knows of (``SourceItem.classes``):

- one class per example (image folders): *stratified*, each class in proportion to its share of the
  split (largest remainders), at least one example of each class when ``N`` allows;
- several per example (COCO images): *covering*, first one example of each class, rarest first, then
  the rest at random;
- classes unknown before reading the labels (segmentation masks, volumes): *random*.

What was kept is recorded in ``dataset_info.json`` (``build_options.subsets``) and printed; a class
the subset cannot hold (``N`` smaller than the number of classes) is named.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Sequence

from skelgen_runtime.sources.base import SourceItem

__all__ = ["Subset", "choose_subset", "SUBSET_SEED"]

#: the seed of every subset (recorded): the same files give the same subset on every build
SUBSET_SEED = 0


@dataclass(frozen=True)
class Subset:
    """How a split was cut: ``method`` (``stratified``, ``covering`` or ``random``), examples ``kept`` of
    ``total``, the ``seed``, and the classes of the split left without an example."""

    method: str
    kept: int
    total: int
    seed: int = SUBSET_SEED
    missing_classes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {**asdict(self), "missing_classes": list(self.missing_classes)}

    def describe(self, split: str) -> str:
        """One line for the terminal."""
        how = {
            "stratified": "every class in proportion",
            "covering": "every class at least once",
            "random": "a random sample: its classes are not known before the labels are read",
        }[self.method]
        line = f"split {split}: {self.kept} of {self.total} examples ({how}, seed {self.seed})"
        if self.missing_classes:
            shown = ", ".join(repr(c) for c in self.missing_classes[:8])
            more = f" and {len(self.missing_classes) - 8} more" if len(self.missing_classes) > 8 else ""
            line += f"; no example of {shown}{more}: {self.kept} examples cannot hold every class, raise --max-examples"
        return line


def choose_subset(
    items: Sequence[SourceItem], limit: int, *, seed: int = SUBSET_SEED
) -> tuple[list[SourceItem], Subset]:
    """At most ``limit`` of ``items`` (module docstring), in the order of ``items``."""
    items = list(items)
    known = all(item.classes is not None for item in items)
    if not known:
        method = "random"
    elif all(len(item.classes or ()) == 1 for item in items):
        method = "stratified"
    else:
        method = "covering"
    if limit >= len(items):
        return items, Subset(method, len(items), len(items), seed)
    rng = random.Random(seed)
    if method == "stratified":
        chosen = _stratified(items, limit, rng)
    elif method == "covering":
        chosen = _covering(items, limit, rng)
    else:
        chosen = rng.sample(range(len(items)), limit)
    kept = [items[i] for i in sorted(chosen)]
    missing: tuple[str, ...] = ()
    if known:
        present = {c for item in kept for c in item.classes or ()}
        missing = tuple(sorted({c for item in items for c in item.classes or ()} - present))
    return kept, Subset(method, len(kept), len(items), seed, missing)


def _stratified(items: list[SourceItem], limit: int, rng: random.Random) -> list[int]:
    by_class: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_class.setdefault(next(iter(item.classes or ())), []).append(i)
    quota = {c: limit * len(members) / len(items) for c, members in by_class.items()}
    counts = {c: int(q) for c, q in quota.items()}
    if limit >= len(by_class):  # every class at least once, given up by the classes that lose least by it
        for c in counts:
            counts[c] = max(counts[c], 1)
        while sum(counts.values()) > limit:
            counts[max((c for c in counts if counts[c] > 1), key=lambda c: (counts[c] - quota[c], c))] -= 1
    while sum(counts.values()) < limit:  # the largest remainders, one example each
        growable = [c for c in counts if counts[c] < len(by_class[c])]
        counts[max(growable, key=lambda c: (quota[c] - counts[c], len(by_class[c]), c))] += 1
    return [i for c, members in by_class.items() for i in rng.sample(members, counts[c])]


def _covering(items: list[SourceItem], limit: int, rng: random.Random) -> list[int]:
    order = list(range(len(items)))
    rng.shuffle(order)
    frequency = Counter(c for item in items for c in item.classes or ())
    chosen: list[int] = []
    covered: set[str] = set()
    for cls in sorted(frequency, key=lambda c: (frequency[c], c)):  # rarest first
        if len(chosen) >= limit:
            break
        if cls in covered:
            continue
        pick = next(i for i in order if cls in (items[i].classes or ()) and i not in chosen)
        chosen.append(pick)
        covered |= items[pick].classes or set()
    taken = set(chosen)
    chosen += [i for i in order if i not in taken][: limit - len(chosen)]
    return chosen
