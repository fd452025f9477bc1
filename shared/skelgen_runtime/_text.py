"""Small wording helpers for the messages the library and the CLI print."""

from __future__ import annotations

from typing import Iterable

__all__ = ["count", "listing", "human_bytes"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 shard"``, ``"3 shards"``, ``"0 shards"``: ``n`` and ``noun`` in its number (``plural``: when not ``noun + "s"``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def listing(items: Iterable[str], limit: int) -> str:
    """``"a, b, c and 4 more"``: the first ``limit`` items, and how many are not shown."""
    items = list(items)
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def human_bytes(n: float) -> str:
    """``1.5 GiB``, ``320 MiB``, ``12 KiB``, ``900 B``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{int(n)} B"
