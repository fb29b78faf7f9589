"""Models on cached features: one module (or subpackage) each, registering itself by name in
`registry.MODELS`."""

from vadctl.models.base import Capabilities, VadModel
from vadctl.models.registry import MODELS, build, capabilities, model_class, register

__all__ = ["MODELS", "Capabilities", "VadModel", "build", "capabilities", "model_class", "register"]
