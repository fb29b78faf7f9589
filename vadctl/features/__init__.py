"""Featurizers: one module each, registering itself by name in `registry.FEATURIZERS`."""

from vadctl.features.base import Featurizer, Output
from vadctl.features.registry import FEATURIZERS, build, featurizer_class, parse_names, register

__all__ = ["FEATURIZERS", "Featurizer", "Output", "build", "featurizer_class", "parse_names", "register"]
