"""Featurizers: one module each, registered by name in `registry.FEATURIZERS`."""

from vadctl.features import (  # noqa: F401  (registration)
    appearance,
    clip,
    flow,
    frames,
    motion,
    pose,
    regions,
    velocity,
    x3d,
)
from vadctl.features.base import Featurizer, Output
from vadctl.features.registry import DEFAULT_FEATURES, FEATURIZERS, build, featurizer_class

__all__ = ["DEFAULT_FEATURES", "FEATURIZERS", "Featurizer", "Output", "build", "featurizer_class"]
