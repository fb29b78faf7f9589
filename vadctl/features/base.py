"""What every featurizer is: a named, versioned, parameterised transform of frame windows.

A featurizer sees a video once, window by window, in frame order. It declares the arrays it
writes (dense: one row per frame or clip; ragged: any number of rows per frame, e.g. one per
region) and may hand in-memory values to featurizers that depend on it (full-resolution flow
for velocity) without storing them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from vadctl.common.params import param_names
from vadctl.common.specs import ArraySpec, ClipSpec, DecodeSpec, FeatureSpec
from vadctl.video.reader import FrameWindow, VideoInfo


@dataclass
class Output:
    """What a featurizer produced for one window.

    dense: name → rows for the window's indices; ragged: name → rows, with `counts` rows per
    index; memory: values for dependent featurizers only (never stored); params: the producing
    entry's parameters (set by the extractor, so consumers can interpret stored values).
    """

    dense: dict[str, np.ndarray] = field(default_factory=dict)
    ragged: dict[str, np.ndarray] = field(default_factory=dict)
    counts: np.ndarray | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


class Featurizer(ABC):
    """Base class. Subclasses take their parameters as keyword arguments of `__init__` and store
    them unchanged as attributes of the same name (scikit-learn's convention), so `get_params`
    can read them back for the feature's identity."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    axis: ClassVar[str] = "frame"
    requires: ClassVar[tuple[str, ...]] = ()
    # Upstreams consumed only through their stored dense arrays: when such an entry is already in
    # the store, the extractor reads it instead of recomputing it (the point of the cache).
    stored_inputs: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    # Context a value depends on, so a long video can be cut into segments that workers extract
    # apart: `context_before` frames before a frame (flow and frame differences: 1, the frame
    # handed in as `FrameWindow.previous`). Clip-level featurizers need the frames after a
    # segment up to its last clip's end; the extractor derives that from the clip table.
    context_before: ClassVar[int] = 0
    # False when a value depends on more than the declared context (state over the whole video,
    # or batches that would be cut differently at a segment's edge): such videos are not split.
    segmentable: ClassVar[bool] = True

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in param_names(type(self))}

    def spec(
        self, decode: DecodeSpec, upstream: Mapping[str, FeatureSpec], clips: ClipSpec | None = None
    ) -> FeatureSpec:
        """Identity of this featurizer's output: params + decode size (+ clip spec) + upstream identities
        (+ what stands for its weights, see `identity_params`)."""
        params = {k: _jsonable(v) for k, v in self.get_params().items()}
        params["decode"] = decode.to_dict()
        if self.axis == "clip":
            params["clips"] = (clips or ClipSpec()).to_dict()
        if self.requires:
            params["upstream"] = {name: upstream[name].hash for name in self.requires}
        params.update(self.identity_params())
        return FeatureSpec(self.name, self.version, params, self.axis)

    def identity_params(self) -> dict[str, Any]:
        """Identity beyond the parameters (weighted featurizers: the weights' sha256, checked first)."""
        return {}

    def n_index(self, info: VideoInfo, clips: ClipSpec) -> int:
        """Length of the first axis: frames, or clips for clip-level featurizers."""
        return len(clips.table(info.n_frames)) if self.axis == "clip" else info.n_frames

    @abstractmethod
    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        """The arrays this featurizer writes for a video of this size."""

    @property
    def alignment(self) -> int:
        """Segments of a long video must start on a multiple of this frame index (featurizers whose
        output depends on where in the video a frame is, e.g. `appearance_regions.refresh`)."""
        return 1

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:  # noqa: B027 - optional hook
        """Reset per-video state before the first window (clip-level featurizers get the clip spec)."""

    def start_at(self, frame: int, clip: int) -> None:  # noqa: B027 - optional hook
        """After `begin`: the first window starts at `frame` and the first clip to emit is `clip`
        (a segment of a long video); featurizers with per-video state skip ahead."""

    @abstractmethod
    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        """Features for the window's frames (or for the clips it completes)."""

    def finish(self) -> Output | None:
        """Rows still pending after the last window (clip-level featurizers)."""
        return None

    def extra_arrays(self) -> dict[str, np.ndarray]:
        """Arrays written once per video at the end (e.g. a clip table)."""
        return {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
