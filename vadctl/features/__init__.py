"""Featurizers: one module each, registered by name in `registry.FEATURIZERS`."""

from vadctl.features import clip, flow, frames, pose, regions, velocity, x3d  # noqa: F401  (registration)
from vadctl.features.base import Featurizer, Output
from vadctl.features.registry import DEFAULT_FEATURES, FEATURIZERS, build, featurizer_class

__all__ = ["DEFAULT_FEATURES", "FEATURIZERS", "Featurizer", "Output", "build", "featurizer_class"]
