"""What every model is: a scikit-learn-style estimator over cached features.

`__init__` stores parameters unchanged; `fit` reads features from the store (never videos) and
sets fitted attributes ending in `_`; `score` yields per-video frame scores (and region scores
where the model localizes). Models whose fit can cheaply score each training video with a model
that never saw it (cross-fitting: kNN, GMM, PCA) expose those held-out scores as `heldout_`, so
the threshold is calibrated on all training data; the others get a held-out validation slice.

Models read only the store: what they need to know about a feature (the decoded frame size its
pixel coordinates refer to, a histogram's bin layout) is recorded with the entry at extract time.
Each model declares what it can do in `capabilities`; the pipeline, ONNX export and the CLI ask
the registry for it instead of testing types or names.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from vadctl.common.params import param_names
from vadctl.common.specs import DecodeSpec, FeatureSpec
from vadctl.errors import FeatureError
from vadctl.models.scores import VideoScores
from vadctl.store import FeatureStore, VideoRecord


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, declared where it is defined.

    crossfit: `fit` sets `heldout_`, scores of every training video by a model that did not see it.
    trains_in_steps: a neural model trained in steps, with checkpoints, resume and a training
        progress callback (`set_training`).
    onnx: its scoring network can be exported to ONNX and scored with onnxruntime.
    video_labels: it learns from video-level labels (`fit --video-labels FILE`, weak supervision)
        and calibrates on held-out normal videos only (`set_video_labels`, `calibration_split`).
    classes: it names anomaly classes; `score --classes` may name other ones (`set_classes`).
    """

    crossfit: bool = False
    trains_in_steps: bool = False
    onnx: bool = False
    video_labels: bool = False
    classes: bool = False


class VadModel(ABC):
    """Base class for vadctl models (see module docstring for the contract)."""

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    needs: ClassVar[str] = ""  # which store features it reads, for `vadctl models`
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Parameters added after model files were written, with the value that means what a file
    # without them meant (a default changed since must not change what an old file scores).
    file_defaults: ClassVar[dict[str, Any]] = {}

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in param_names(type(self))}

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        signature = inspect.signature(cls.__init__)
        return {name: signature.parameters[name].default for name in param_names(cls)}

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

    def check_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:  # noqa: B027
        """Raise ValueError naming what does not fit when saved arrays or metadata disagree with this
        model's parameters (shapes, dtypes, scales > 0; see `models.state_checks`). Called before
        `load_state` on every model file; the loader already refused NaN and infinite arrays."""

    def calibration_split(
        self, store: FeatureStore, split: str, videos: Sequence[str], fraction: float, seed: int
    ) -> tuple[list[str], list[str]] | None:
        """(videos to fit, videos held out to calibrate), or None for the pipeline's seeded split of
        whole videos. Weakly supervised models hold out normal videos only."""
        return None

    def calibrate_heldout(self, store: FeatureStore, split: str, videos: Sequence[str]) -> None:  # noqa: B027
        """Models that are not cross-fitted are fitted on part of the training videos; here they may
        set thresholds of their own on the held-out rest (FFP: its localization threshold)."""

    # helpers shared by models --------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")


def _newest_version(candidates: list[FeatureSpec]) -> list[FeatureSpec]:
    """After a featurizer upgrade, old and new entries coexist until re-extraction; the entries of
    the newest featurizer version win (versions only ever go up)."""
    if not candidates:
        return candidates
    newest = max(spec.version for spec in candidates)
    return [spec for spec in candidates if spec.version == newest]


def pick_feature(store: FeatureStore, split: str, ref: str, role: str, model: str) -> FeatureSpec:
    """Resolve a feature reference with an error that says which model role wanted it."""
    try:
        return store.resolve(ref, split, narrow=_newest_version)
    except FeatureError as error:
        raise FeatureError(f"{model} needs a {role} feature: {error}") from None


def has_feature(store: FeatureStore, split: str, name: str) -> bool:
    return any(spec.name == name for spec, _ in store.specs(split).values())


def frame_size(record: VideoRecord, spec: FeatureSpec) -> tuple[int, int]:
    """(width, height) of the decoded frames an entry's pixel coordinates refer to.

    Recorded with the entry at extract time; entries written before that are derived from the
    decode parameters in their identity, which is the same rule the decoder applied.
    """
    summary = record.features.get(spec.key) or {}
    size = summary.get("frame_size")
    if size is not None:
        return int(size[0]), int(size[1])
    return DecodeSpec(**spec.params.get("decode", {})).output_size(record.width, record.height)


def source_scale(record: VideoRecord, spec: FeatureSpec) -> np.ndarray:
    """[sx, sy, sx, sy]: from an entry's decoded-frame pixels to source-video pixels (for boxes)."""
    width, height = frame_size(record, spec)
    return np.array([record.width / width, record.height / height] * 2, np.float32)
