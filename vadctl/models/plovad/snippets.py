"""What the PLOVAD-based model reads of one video: snippets, their spatial grid, their regions.

A snippet is a clip of the store's clip table (16 frames by default, the seed's snippet length).
Each snippet brings a spatial map (the `motion` grid: channels × rows × cols, the map the
localization head turns into a heatmap), optionally an appearance vector (the mean `clip`
embedding of its frames), and the regions (foreground boxes with AI-VAD's velocity attribute) seen
during it, whose unsupervised normality scores become per-cell inputs (`attributes`). Boxes are
kept in [0, 1] frame coordinates, so cells and boxes line up whatever size each entry was
decoded at.

Training caps a video at `max_snippets` (256 in the seed) by averaging runs of adjacent snippets,
as the seed samples a fixed maximum of snippets per video.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError
from vadctl.models.base import frame_size
from vadctl.models.velocity_bins import check_layout, merge_bins
from vadctl.store import FeatureStore, VideoRecord


@dataclass
class Regions:
    """Every region of a video: its frame, its box in [0, 1] coordinates and its velocity attribute."""

    frame: np.ndarray  # (n,) int64
    boxes: np.ndarray  # (n, 4) float32, x1 y1 x2 y2 as fractions of the frame
    velocity: np.ndarray  # (n, bins) float64


@dataclass
class VideoInputs:
    """One video's snippets as the model reads them."""

    video_id: str
    n_frames: int
    width: int  # source-video pixels, for boxes in outputs
    height: int
    clips: np.ndarray  # (T, 2) [start, stop) frames of each snippet
    grid: np.ndarray  # (T, C, R, W) float32
    appearance: np.ndarray | None = None  # (T, D) float32
    regions: Regions | None = None

    @property
    def n_snippets(self) -> int:
        return len(self.clips)


def _record(store: FeatureStore, split: str, video_id: str) -> VideoRecord:
    record = store.video(split, video_id)
    if record is None:
        raise FeatureError(f"split {split!r} of {store.path} has no video {video_id!r}")
    return record


def _appearance(store: FeatureStore, record: VideoRecord, spec: FeatureSpec, clips: np.ndarray) -> np.ndarray:
    """Mean frame embedding over each snippet's frames (subsampled entries hold each row until the next)."""
    entry = store.entry(record, spec)
    values = entry["embedding"].astype(np.float32)
    offsets = entry.offsets
    if offsets is not None:
        counts = np.diff(offsets)
        if counts.max(initial=0) > 1:
            raise FeatureError(f"feature {spec.key} has several rows per frame; plovad needs one per frame")
        sampled = np.flatnonzero(counts)
        if not len(sampled):
            raise FeatureError(f"feature {spec.key} has no row in video {record.video_id}")
        values = values[np.maximum(np.searchsorted(sampled, np.arange(len(counts)), side="right") - 1, 0)]
    out = np.stack([values[start:stop].mean(axis=0) for start, stop in clips])
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def _regions(store: FeatureStore, record: VideoRecord, features: dict[str, FeatureSpec], bins: int) -> Regions:
    regions = store.entry(record, features["regions"])
    velocity = store.entry(record, features["velocity"])
    offsets = regions.offsets
    if not np.array_equal(velocity.offsets, offsets):
        raise FeatureError(f"video {record.video_id}: {velocity.spec.key} rows do not align with its regions")
    check_layout(velocity.array("magnitude_sum").attrs, velocity.spec.key)
    width, height = frame_size(record, features["regions"])
    boxes = regions["boxes"].astype(np.float32) / np.array([width, height, width, height], np.float32)
    return Regions(
        regions.row_index(), np.clip(boxes, 0, 1), merge_bins(velocity["magnitude_sum"], velocity["count"], bins)
    )


def load_video(
    store: FeatureStore, split: str, video_id: str, features: dict[str, FeatureSpec], velocity_bins: int
) -> VideoInputs:
    """Everything the model reads of one video, from the entries `features` names."""
    record = _record(store, split, video_id)
    grid_entry = store.entry(record, features["grid"])
    grid = grid_entry["embedding"].astype(np.float32)
    if grid.ndim != 4:
        raise FeatureError(
            f"plovad needs a spatial clip feature (channels × rows × cols); {grid_entry.spec.key} has rows "
            f"of shape {grid.shape[1:]}"
        )
    clips = grid_entry.clips()
    appearance = _appearance(store, record, features["appearance"], clips) if "appearance" in features else None
    regions = _regions(store, record, features, velocity_bins) if "velocity" in features else None
    return VideoInputs(video_id, record.n_frames, record.width, record.height, clips, grid, appearance, regions)


def segment_bounds(n: int, limit: int) -> np.ndarray:
    """(min(n, limit) + 1,) boundaries cutting n snippets into at most `limit` runs of adjacent ones."""
    if n <= limit:
        return np.arange(n + 1)
    return np.unique(np.linspace(0, n, limit + 1).round().astype(np.int64))


def pool_segments(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mean of `values` (first axis = snippet) over each run between boundaries."""
    return np.stack([values[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])


def capped(video: VideoInputs, cells: np.ndarray, limit: int) -> tuple[VideoInputs, np.ndarray]:
    """At most `limit` snippets: runs of adjacent snippets averaged (the seed's fixed maximum)."""
    if video.n_snippets <= limit:
        return video, cells
    bounds = segment_bounds(video.n_snippets, limit)
    clips = np.stack([[video.clips[a, 0], video.clips[b - 1, 1]] for a, b in itertools.pairwise(bounds)])
    appearance = None if video.appearance is None else pool_segments(video.appearance, bounds)
    pooled = replace(video, clips=clips, grid=pool_segments(video.grid, bounds), appearance=appearance)
    return pooled, pool_segments(cells, bounds)
