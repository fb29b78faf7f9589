"""Per-frame vectors from any frame-level store entry, for sequence models.

Vector entries (CLIP's `embedding`, float16) are used as they are. Spatial entries (`frames`
images, `flow` fields) are area-pooled to a `thumb`×`thumb` grid per channel — a weight-free
appearance embedding — and, with `motion`, the pooled absolute difference to the previous frame
is appended (where things move, not only what is seen). Derived here rather than by a featurizer
because `frames` is already in every default store, so the model needs no extra extraction pass.
"""

from __future__ import annotations

import cv2
import numpy as np

from vadctl.errors import FeatureError
from vadctl.store import Entry

ARRAYS = ("embedding", "data")  # the array read from an entry, in order of preference


def entry_array(entry: Entry) -> np.ndarray:
    for name in ARRAYS:
        if name in entry.array_names:
            return entry[name]
    raise FeatureError(f"feature {entry.spec.key} has none of the arrays {', '.join(ARRAYS)}; it cannot embed frames")


def pool(frames: np.ndarray, thumb: int) -> np.ndarray:
    """(n, H, W[, C]) → (n, thumb·thumb·C) float32 area averages (uint8 images scaled to [0, 1])."""
    scale = 1 / 255 if frames.dtype == np.uint8 else 1.0
    values = frames.astype(np.float32) * scale
    if values.ndim == 3:
        values = values[..., None]
    n, height, width, channels = values.shape
    interpolation = cv2.INTER_AREA if height >= thumb and width >= thumb else cv2.INTER_LINEAR
    pooled = np.empty((n, thumb, thumb, channels), np.float32)
    for i in range(n):
        pooled[i] = cv2.resize(values[i], (thumb, thumb), interpolation=interpolation).reshape(thumb, thumb, channels)
    return pooled.reshape(n, -1)


def held_rows(values: np.ndarray, offsets: np.ndarray, key: str) -> np.ndarray:
    """Per-frame rows of a subsampled entry (at most one row per frame, e.g. `clip.every=4`): each
    sampled row holds until the next one; frames before the first sample take the first."""
    counts = np.diff(offsets)
    if counts.max(initial=0) > 1:
        raise FeatureError(f"feature {key} has several rows per frame (per region?); a frame-level feature is needed")
    if not counts.any():
        raise FeatureError(f"feature {key} has no row in this video")
    sampled = np.flatnonzero(counts)
    row_of_frame = np.searchsorted(sampled, np.arange(len(counts)), side="right") - 1
    return values[np.maximum(row_of_frame, 0)]


def embed(entry: Entry, thumb: int, motion: bool) -> np.ndarray:
    """(n_frames, d) float32 vectors of one video's entry."""
    values = entry_array(entry)
    offsets = entry.offsets
    if offsets is not None:
        values = held_rows(values, offsets, entry.spec.key)
    if values.ndim == 2:
        return values.astype(np.float32)
    if values.ndim not in (3, 4):
        raise FeatureError(f"feature {entry.spec.key}: rows of shape {values.shape[1:]} are neither vectors nor images")
    parts = [pool(values, thumb)]
    if motion:
        as_float = values.astype(np.float32) * (1 / 255 if values.dtype == np.uint8 else 1.0)
        change = np.abs(np.diff(as_float, axis=0, prepend=as_float[:1]))
        parts.append(pool(change, thumb))
    return np.concatenate(parts, axis=1)
