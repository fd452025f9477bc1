"""Small wording helpers for the messages the library prints."""

from __future__ import annotations

__all__ = ["count"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 shard"``, ``"3 shards"``, ``"0 shards"``: ``n`` and ``noun`` in its number (``plural``: when not ``noun + "s"``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
