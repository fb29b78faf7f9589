"""Featurizer names → classes, and building a run's featurizers with their dependencies.

Adding a featurizer is one module with a `Featurizer` subclass decorated by `register`, plus its
import in `vadctl/features/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vadctl.errors import UsageError
from vadctl.features.base import Featurizer
from vadctl.registry import Registry

_REGISTRY: Registry[Featurizer] = Registry("feature")
FEATURIZERS = _REGISTRY.items
register = _REGISTRY.register
featurizer_class = _REGISTRY.get
# What the default models need: frames (FFP, scene-aware), velocity on regions (AI-VAD), motion (FUVAS).
DEFAULT_FEATURES = ("frames", "flow", "regions", "velocity", "motion")


def parse_names(text: str | Iterable[str] | None) -> list[str]:
    """'flow,velocity' → ['flow', 'velocity'], each checked against the registry."""
    if text is None:
        return list(DEFAULT_FEATURES)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [item.strip() for item in items if item.strip()]
    if not names:
        raise UsageError("--features: name at least one feature")
    for name in names:
        featurizer_class(name)
    return list(dict.fromkeys(names))


def build(names: Iterable[str], params: Mapping[str, Mapping[str, Any]] | None = None) -> list[Featurizer]:
    """Featurizers for `names` and everything they require, in dependency order."""
    params = params or {}
    ordered: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise RuntimeError(f"featurizer dependency cycle: {' → '.join((*trail, name))}")
        if name in ordered:
            return
        for dep in featurizer_class(name).requires:
            visit(dep, (*trail, name))
        ordered.append(name)

    for name in names:
        visit(name, ())
    unknown = set(params) - set(ordered)
    if unknown:
        raise UsageError(f"--param given for feature(s) not in this run: {', '.join(sorted(unknown))}")
    built = []
    for name in ordered:
        cls = featurizer_class(name)
        try:
            built.append(cls(**params.get(name, {})))
        except TypeError as error:
            raise UsageError(f"feature {name}: {error}") from None
    return built
