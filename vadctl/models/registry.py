"""Model names → classes. Adding a model is one module with a registered `VadModel` subclass,
plus its import in `vadctl/models/__init__.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vadctl.errors import UsageError
from vadctl.models.base import VadModel
from vadctl.registry import Registry

_REGISTRY: Registry[VadModel] = Registry("model")
MODELS = _REGISTRY.items
register = _REGISTRY.register
model_class = _REGISTRY.get


def build(name: str, params: Mapping[str, Any] | None = None) -> VadModel:
    """A model with its defaults overridden by `params`; unknown parameter names are errors."""
    cls = model_class(name)
    params = dict(params or {})
    unknown = set(params) - set(cls.param_defaults())
    if unknown:
        raise UsageError(
            f"model {name}: unknown parameter(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(cls.param_defaults())})"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise UsageError(f"model {name}: {error}") from None
