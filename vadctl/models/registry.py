"""Model names → classes, and what each can do. Adding a model is one module in this package (or a
plug-in's entry point in the group `vadctl.models`) with a `VadModel` subclass decorated by
`register`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vadctl.common.params import checked
from vadctl.common.registry import Registry
from vadctl.errors import UsageError
from vadctl.models.base import Capabilities, VadModel

MODELS: Registry[VadModel] = Registry("model", "vadctl.models", "vadctl.models")
register = MODELS.register
model_class = MODELS.get


def capabilities(name: str) -> Capabilities:
    return model_class(name).capabilities


def names_with(capability: str) -> list[str]:
    """Models that declare a capability (e.g. 'onnx'), for messages and help texts."""
    return [name for name, cls in MODELS.items() if getattr(cls.capabilities, capability)]


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
    params = checked(cls, params, name)
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:
        raise UsageError(f"model {name}: {error}") from None
