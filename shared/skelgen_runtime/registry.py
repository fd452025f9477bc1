"""Registries: one per extension point (models, backbones, ...), loud on misuse.

Registering a name twice is a programming error (``ValueError``); asking for an unknown name is a
user's config mistake (:class:`~skelgen_runtime.errors.ConfigError` listing the valid names).
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from skelgen_runtime.errors import ConfigError, did_you_mean

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of factories.

    Example::

        BACKBONES = Registry("backbone")

        @BACKBONES.register("simple")
        def simple(inputs, **kwargs): ...
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding the decorated object under ``name``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._items[name]!r})")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """The message for a name that is not registered: the valid names and the closest one."""
        return f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}{did_you_mean(name, self.names())}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
