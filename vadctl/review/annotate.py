"""Annotated videos of scored frames: boxes, a score strip with the threshold, anomalous frames marked.

Each output frame is the source frame with the model's boxes drawn on it (boxes of flagged frames
in red, others thin green), a red border and the score on frames above the threshold, and below it
a strip: the video's score curve, the threshold as a yellow line, flagged frames as red ticks, and
a white cursor at the current frame. Frames are decoded in windows as extraction decodes them and
written with OpenCV (`mp4v`), so memory stays bounded on long videos.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import polars as pl

from vadctl.video.catalog import VideoSource
from vadctl.video.reader import VideoReader

RED, GREEN, YELLOW, WHITE = (0, 0, 255), (0, 200, 0), (0, 220, 255), (255, 255, 255)  # BGR
BOX_THICKNESS = 2


def _strip_curve(scores: np.ndarray, threshold: float, width: int, height: int) -> tuple[np.ndarray, int]:
    """(polyline points, threshold row) of the score curve drawn into a width × height strip."""
    low = float(min(scores.min(), threshold))
    high = float(max(scores.max(), threshold))
    span = high - low or 1.0
    margin = 4

    def row(value: float) -> int:
        return round(height - margin - (value - low) / span * (height - 2 * margin))

    xs = np.linspace(0, width - 1, len(scores))
    points = np.stack([xs, [row(v) for v in scores]], axis=1).round().astype(np.int32)
    return points, row(threshold)


def score_strip(scores: np.ndarray, flagged: np.ndarray, threshold: float, width: int, height: int) -> np.ndarray:
    """The strip without its cursor: curve, threshold line and flagged ticks."""
    strip = np.full((height, width, 3), 24, np.uint8)
    points, threshold_row = _strip_curve(scores, threshold, width, height)
    for frame in np.flatnonzero(flagged):
        cv2.line(strip, (int(points[frame, 0]), height - 4), (int(points[frame, 0]), height - 1), RED, 1)
    cv2.line(strip, (0, threshold_row), (width - 1, threshold_row), YELLOW, 1)
    cv2.polylines(strip, [points.reshape(-1, 1, 2)], False, WHITE, 1, cv2.LINE_AA)
    return strip


def annotate(
    source: Path,
    frames: pl.DataFrame,
    regions: pl.DataFrame,
    out: Path,
    strip_height: int | None = None,
) -> Path:
    """Write `out` (MP4) for one video: its frames table (`frame, score, is_anomaly, threshold`)
    and its regions (`frame, x1, y1, x2, y2, score`) in source-video pixels."""
    frames = frames.sort("frame")
    scores = frames["score"].to_numpy().astype(np.float64)
    flagged = frames["is_anomaly"].to_numpy().astype(bool)
    threshold = float(frames["threshold"][0])
    boxes: dict[int, list[tuple[np.ndarray, float]]] = {}
    for row in regions.iter_rows(named=True):
        box = np.array([row["x1"], row["y1"], row["x2"], row["y2"]], np.float64)
        boxes.setdefault(int(row["frame"]), []).append((box, float(row["score"])))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    reader = VideoReader(VideoSource(out.stem, Path(source)))
    try:
        width, height = reader.info.width, reader.info.height
        strip_h = strip_height or max(24, height // 5)
        total_h = height + strip_h + (height + strip_h) % 2
        width_even = width + width % 2
        strip = score_strip(scores, flagged, threshold, width_even, strip_h)
        fps = reader.info.fps or 25.0
        tmp = out.with_name(f".{out.name}.tmp.mp4")
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width_even, total_h), True)
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {out}")
        try:
            for window in reader.windows(32):
                for offset, rgb in enumerate(window.frames):
                    index = window.start + offset
                    canvas = np.zeros((total_h, width_even, 3), np.uint8)
                    canvas[:height, :width] = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                    _draw_frame(canvas, index, scores, flagged, boxes.get(index, []), width, height)
                    canvas[height : height + strip_h] = strip
                    x = round(index * (width_even - 1) / max(len(scores) - 1, 1))
                    cv2.line(canvas, (x, height), (x, height + strip_h - 1), WHITE, 1)
                    writer.write(canvas)
        finally:
            writer.release()
        tmp.replace(out)
    finally:
        reader.close()
    return out


def _draw_frame(canvas, index: int, scores, flagged, boxes, width: int, height: int) -> None:
    is_flagged = index < len(flagged) and bool(flagged[index])
    for box, _ in boxes:
        x1, y1, x2, y2 = (round(v) for v in box)
        colour, thickness = (RED, BOX_THICKNESS) if is_flagged else (GREEN, 1)
        cv2.rectangle(canvas, (x1, y1), (min(x2, width - 1), min(y2, height - 1)), colour, thickness)
    if is_flagged:
        cv2.rectangle(canvas, (0, 0), (width - 1, height - 1), RED, 3)
        cv2.putText(
            canvas, f"ANOMALY {scores[index]:.2f}", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, RED, 1, cv2.LINE_AA
        )
