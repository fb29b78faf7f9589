"""Featurizer names → classes, and building a run's featurizers with their dependencies.

Adding a featurizer is one module in this package (or a plug-in's entry point in the group
`vadctl.featurizers`) with a `Featurizer` subclass decorated by `register`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vadctl import defaults
from vadctl.common.params import checked
from vadctl.common.registry import Registry
from vadctl.errors import UsageError
from vadctl.features.base import Featurizer

FEATURIZERS: Registry[Featurizer] = Registry("feature", "vadctl.features", "vadctl.featurizers")
register = FEATURIZERS.register
featurizer_class = FEATURIZERS.get


def parse_names(text: str | Iterable[str] | None) -> list[str]:
    """'flow,velocity' → ['flow', 'velocity'], each checked against the registry; None: the defaults."""
    if text is None:
        return list(defaults.FEATURES)
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
            built.append(cls(**checked(cls, params.get(name, {}), name)))
        except TypeError as error:
            raise UsageError(f"feature {name}: {error}") from None
    return built
