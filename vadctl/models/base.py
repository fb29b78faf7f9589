"""What every model is: a scikit-learn-style estimator over cached features.

`__init__` stores parameters unchanged; `fit` reads features from the store (never videos) and
sets fitted attributes ending in `_`; `score` yields per-video frame scores (and region scores
where the model localizes). Models whose fit can cheaply score each training video with a model
that never saw it (cross-fitting: kNN, GMM, PCA) expose those held-out scores as `heldout_`, so
the threshold is calibrated on all training data; the others get a held-out validation slice.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from vadctl.errors import FeatureError
from vadctl.results import VideoScores
from vadctl.store import FeatureSpec, FeatureStore


class VadModel(ABC):
    """Base class for vadctl models (see module docstring for the contract)."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    needs: ClassVar[str] = ""  # which store features it reads, for `vadctl models`
    crossfit: ClassVar[bool] = False  # True: fit sets `heldout_` (held-out scores of training videos)

    def get_params(self) -> dict[str, Any]:
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        signature = inspect.signature(cls.__init__)
        return {n: p.default for n, p in signature.parameters.items() if n != "self"}

    @abstractmethod
    def select_features(self, store: FeatureStore, split: str) -> dict[str, FeatureSpec]:
        """Role → feature entry this model will fit on, chosen from what the split holds."""

    @abstractmethod
    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> VadModel:
        """Learn from the features (`features_`, set by `select_features`) of these videos."""

    @abstractmethod
    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        """Scores of every frame of these videos, from the same feature entries it was fitted on."""

    @abstractmethod
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Fitted state as arrays (saved as tensors) and JSON-able metadata."""

    @abstractmethod
    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Restore what `state` returned."""

    # helpers shared by models --------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")


def current_version(spec: FeatureSpec) -> bool:
    """Whether an entry was made by the featurizer version this vadctl has (after an upgrade, old
    and new entries coexist in a store until re-extraction; the new ones win)."""
    from vadctl.features.registry import FEATURIZERS

    cls = FEATURIZERS.get(spec.name)
    return cls is not None and cls.version == spec.version


def pick_feature(store: FeatureStore, split: str, ref: str, role: str, model: str) -> FeatureSpec:
    """Resolve a feature reference with an error that says which model role wanted it."""
    try:
        return store.resolve(ref, split, prefer=current_version)
    except FeatureError as error:
        raise FeatureError(f"{model} needs a {role} feature: {error}") from None


def has_feature(store: FeatureStore, split: str, name: str) -> bool:
    return any(spec.name == name for spec, _ in store.specs(split).values())
