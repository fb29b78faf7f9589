"""Name → class maps for pluggable parts (featurizers, models).

A part registers itself where it is defined (`@register` on the class), so adding one is one new
module. The registry imports every module (and subpackage `__init__`) of its package the first
time it is asked, and loads
third-party parts from an entry-point group (`vadctl.featurizers`, `vadctl.models`): an entry
point names a module that registers its classes, or a class, which is registered for it.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from vadctl.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, group: str):
        self.kind = kind
        self.package = package
        self.group = group
        self._items: dict[str, type[T]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator; the class's `name` attribute is its key."""
        name = cls.name  # type: ignore[attr-defined]
        other = self._items.get(name)
        same_place = other is not None and (other.__module__, other.__qualname__) == (cls.__module__, cls.__qualname__)
        if other is not None and other is not cls and not same_place:
            raise RuntimeError(f"{self.kind} {name!r} registered twice ({other.__module__}, {cls.__module__})")
        self._items[name] = cls  # a re-imported module (tests, reloads) replaces its own class
        return cls

    def _load(self) -> None:
        """Import the package's modules (they register themselves), then the entry points."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__, prefix=f"{self.package}."):
                importlib.import_module(module.name)  # a subpackage registers through its __init__
            for point in entry_points(group=self.group):
                try:
                    loaded = point.load()
                except Exception as error:  # a broken plug-in must say so, not break every command
                    what = f"{self.kind} plug-in {point.name!r} ({point.value})"
                    raise UsageError(f"{what} failed to load: {error}") from error
                if isinstance(loaded, type) and getattr(loaded, "name", None) and loaded.name not in self._items:
                    self.register(loaded)
            self._loaded = True

    def get(self, name: str) -> type[T]:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r} (known: {', '.join(sorted(self._items))})") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> type[T]:
        return self.get(name)

    def items(self) -> list[tuple[str, type[T]]]:
        return [(name, self._items[name]) for name in self.names()]
