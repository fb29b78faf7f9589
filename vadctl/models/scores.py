"""What models produce: per-video frame scores and scored regions (kept apart from models and
scoring so both can use them without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RegionScores:
    """Scored boxes of one video: frame index, [x1, y1, x2, y2] in source pixels, score."""

    frame: np.ndarray
    boxes: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls) -> RegionScores:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float64))


@dataclass
class ClassScores:
    """The anomaly classes a model names for one video: class names, per-frame probabilities over
    them, and the video's probabilities (from the parts of the video that made it anomalous)."""

    names: list[str]
    frame_probs: np.ndarray  # (n_frames, K)
    video_probs: np.ndarray  # (K,)


@dataclass
class VideoScores:
    """Anomaly scores of one video: one per decoded frame, higher means more anomalous.

    `extra` holds further per-frame columns a model offers (e.g. FFP's per-video min–max score);
    `classes` the anomaly classes a model that names them gives this video; `video_score` a model's
    own video-level anomaly logit, when it has one (plovad's MIL head, trained on video labels): the
    video is called anomalous when it is above 0 (else: when any frame is above the threshold).
    """

    video_id: str
    frame_scores: np.ndarray
    regions: RegionScores | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    classes: ClassScores | None = None
    video_score: float | None = None


def temporal_smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time within one video (the caller never passes two videos at once)."""
    from scipy.ndimage import gaussian_filter1d  # here, so that commands that never smooth start fast

    if sigma <= 0 or len(scores) < 2:
        return np.asarray(scores, dtype=np.float64)
    return gaussian_filter1d(np.asarray(scores, dtype=np.float64), sigma, mode="nearest")
