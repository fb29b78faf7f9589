"""FFP scoring: predict each frame from its history, PSNR against the real frame, error maps and boxes.

PSNR is taken on the [0, 1] pixel scale. The first `history` frames of a video have no full
history: they take the score of the first predicted frame. Boxes: the blurred per-pixel squared
error above μ + `region_sigma`·σ of the per-frame peak errors of held-out normal videos; connected
components large enough become boxes in source-video pixels, scored by their mean error in σ units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import cv2
import numpy as np

from vadctl.models.scores import RegionScores

Forward = Callable[[np.ndarray], np.ndarray]


def to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [-1, 1]."""
    return frames.astype(np.float32) / 127.5 - 1.0


def history_indices(targets: np.ndarray, history: int) -> np.ndarray:
    """(len(targets), history) frame indices before each target, clamped at frame 0."""
    return np.maximum(targets[:, None] - history + np.arange(history)[None, :], 0)


def predict(
    forward: Forward, frames: np.ndarray, history: int, batch_size: int, blur: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted frame indices, their PSNR, their blurred squared-error maps) for one video's
    (n, C, R, R) uint8 frames."""
    n, _, size = len(frames), frames.shape[1], frames.shape[-1]
    targets = np.arange(min(history, n - 1), n)
    psnr = np.empty(len(targets))
    maps = np.empty((len(targets), size, size), np.float32)
    for start in range(0, len(targets), batch_size):
        chunk = targets[start : start + batch_size]
        inputs = frames[history_indices(chunk, history)]  # (b, h, C, R, R)
        inputs = to_unit(inputs.reshape(len(chunk), -1, size, size))
        pred = forward(inputs)
        error = ((pred - to_unit(frames[chunk])) / 2) ** 2  # squared error on the [0, 1] scale
        mse = error.reshape(len(chunk), -1).mean(axis=1).astype(np.float64)
        psnr[start : start + len(chunk)] = 10 * np.log10(1 / np.maximum(mse, 1e-10))
        for j, pixel_map in enumerate(error.mean(axis=1)):
            maps[start + j] = cv2.blur(pixel_map, (blur, blur)) if blur > 1 else pixel_map
    return targets, psnr, maps


def frame_psnr(n_frames: int, targets: np.ndarray, psnr: np.ndarray) -> np.ndarray:
    """PSNR of every frame; frames without a full history take the first prediction's value."""
    per_frame = np.empty(n_frames)
    per_frame[targets] = psnr
    per_frame[: targets[0]] = psnr[0]
    return per_frame


def minmax_score(per_frame_psnr: np.ndarray) -> np.ndarray:
    """FFP's published score: 1 − PSNR min–max normalised over the video itself."""
    span = per_frame_psnr.max() - per_frame_psnr.min()
    if span <= 0:
        return np.zeros(len(per_frame_psnr))
    return 1 - (per_frame_psnr - per_frame_psnr.min()) / span


def peak_calibration(peaks: np.ndarray, sigma: float) -> dict[str, float] | None:
    """The localization threshold from held-out normal frames' peak errors: μ + sigma·σ.

    Peaks, not all pixels: every normal frame has some pixels far in the tail of the pixel
    distribution (edges of walkers), so a per-pixel μ+3σ would box them all.
    """
    values = np.asarray(peaks, np.float64)
    if len(values) < 2:
        return None
    mean, std = float(values.mean()), float(values.std()) or 1e-12
    return {"mean": mean, "std": std, "threshold": mean + sigma * std, "frames": len(values)}


def error_boxes(
    targets: np.ndarray,
    maps: np.ndarray,
    calibration: Mapping[str, float],
    min_area_fraction: float,
    scale: np.ndarray,
) -> RegionScores:
    """Connected components of error maps above the calibrated threshold, in source pixels."""
    size = maps.shape[-1]
    min_area = max(1, round(min_area_fraction * size * size))
    frames, boxes, values = [], [], []
    for frame, error in zip(targets, maps, strict=True):
        mask = (error > calibration["threshold"]).astype(np.uint8)
        if not mask.any():
            continue
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for label in range(1, count):
            x, y, w, h, area = stats[label]
            if area < min_area:
                continue
            frames.append(int(frame))
            boxes.append(np.array([x, y, x + w, y + h], np.float32) * scale)
            values.append((float(error[labels == label].mean()) - calibration["mean"]) / calibration["std"])
    if not frames:
        return RegionScores.empty()
    return RegionScores(np.asarray(frames, np.int64), np.stack(boxes), np.asarray(values))
