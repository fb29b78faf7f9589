"""Models on cached features: one module each, registered by name in `registry.MODELS`."""

from vadctl.models import aivad, ffp, fuvas, sceneaware  # noqa: F401  (registration)
from vadctl.models.base import VadModel
from vadctl.models.registry import MODELS, build, model_class

__all__ = ["MODELS", "VadModel", "build", "model_class"]
