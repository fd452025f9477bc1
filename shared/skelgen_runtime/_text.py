"""Small wording helpers for the messages the library and the CLI print."""

from __future__ import annotations

from typing import Iterable

__all__ = ["count", "listing"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 shard"``, ``"3 shards"``, ``"0 shards"``: ``n`` and ``noun`` in its number (``plural``: when not ``noun + "s"``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def listing(items: Iterable[str], limit: int) -> str:
    """``"a, b, c and 4 more"``: the first ``limit`` items, and how many are not shown."""
    items = list(items)
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
