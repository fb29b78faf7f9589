"""Name → class maps for pluggable parts (featurizers, models): one decorator to add, one lookup
that fails with the list of known names."""

from __future__ import annotations

from typing import Generic, TypeVar

from vadctl.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self.items: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator; the class's `name` attribute is its key."""
        name = cls.name  # type: ignore[attr-defined]
        if name in self.items:
            raise RuntimeError(f"{self.kind} {name!r} registered twice")
        self.items[name] = cls
        return cls

    def get(self, name: str) -> type[T]:
        try:
            return self.items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self.items))})") from None
