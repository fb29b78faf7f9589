"""From snippet outputs to what vadctl writes: frame scores, frame heatmaps, boxes, class probabilities.

Snippets overlap (16 frames every 8 by default), so a frame takes the mean of the snippets that
cover it (the nearest snippet where none does). Heatmap boxes: cells whose frame heatmap is above
the heatmap threshold (μ + `region_sigma`·σ of the per-frame peaks of held-out normal videos: peaks,
since every normal frame has some cell in the tail of the per-cell distribution), joined into
connected components, each a box in source-video pixels scored by its hottest cell.
"""

from __future__ import annotations

import cv2
import numpy as np

from vadctl.models.scores import RegionScores


def spread(clips: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, ...) per-frame mean of the values (first axis = snippet) of covering snippets."""
    total = np.zeros((n_frames, *values.shape[1:]), np.float64)
    count = np.zeros(n_frames)
    for (start, stop), value in zip(clips, values, strict=True):
        total[start:stop] += value
        count[start:stop] += 1
    covered = count > 0
    out = total / np.maximum(count, 1).reshape(-1, *([1] * (values.ndim - 1)))
    if not covered.all() and covered.any():
        centres = clips.mean(axis=1)
        for frame in np.flatnonzero(~covered):
            out[frame] = values[np.argmin(np.abs(centres - frame))]
    return out


def heat_calibration(peaks: np.ndarray, sigma: float) -> dict[str, float] | None:
    """μ + sigma·σ of per-frame heatmap peaks of held-out normal frames."""
    values = np.asarray(peaks, np.float64)
    if len(values) < 2:
        return None
    mean, std = float(values.mean()), float(values.std()) or 1e-12
    return {"mean": mean, "std": std, "threshold": mean + sigma * std, "frames": len(values)}


def heat_boxes(frame_heat: np.ndarray, threshold: float, width: int, height: int) -> RegionScores:
    """Connected components of cells above `threshold` in (n_frames, R, W) maps, as source-pixel boxes."""
    rows, cols = frame_heat.shape[1:]
    cell_w, cell_h = width / cols, height / rows
    frames, boxes, values = [], [], []
    for frame, heat in enumerate(frame_heat):
        mask = (heat > threshold).astype(np.uint8)
        if not mask.any():
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for label in range(1, count):
            x, y, w, h, _ = stats[label]
            frames.append(frame)
            boxes.append([x * cell_w, y * cell_h, (x + w) * cell_w, (y + h) * cell_h])
            values.append(float(heat[labels == label].max()))
    if not frames:
        return RegionScores.empty()
    return RegionScores(np.asarray(frames, np.int64), np.asarray(boxes, np.float32), np.asarray(values))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_mean(values: np.ndarray, detection: np.ndarray, fraction: float) -> np.ndarray:
    """Mean of `values` over the top-k snippets by detection (k as in training)."""
    k = max(1, int(np.ceil(fraction * len(detection))))
    return values[np.argsort(-detection, kind="stable")[:k]].mean(axis=0)
