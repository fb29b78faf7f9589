"""`regions`: foreground boxes from blurred frame differences, AI-VAD's foreground detections."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from vadctl.errors import UsageError
from vadctl.features.base import Featurizer, Output
from vadctl.features.registry import register
from vadctl.store import ArraySpec
from vadctl.video import FrameWindow, VideoInfo

FOREGROUND_LABEL = 0  # detector class ids would be > 0; 0 marks a foreground (motion) region
FOREGROUND_SCORE = 0.5  # AI-VAD gives foreground detections a fixed confidence of 0.5


def foreground_mask(
    before: np.ndarray, current: np.ndarray, kernel_size: int, threshold: int, dilation: int
) -> np.ndarray:
    """Pixels whose blurred gray value changed by more than `threshold` (0..255) between frames."""
    if kernel_size > 1:
        before = cv2.GaussianBlur(before, (kernel_size, kernel_size), 0)
        current = cv2.GaussianBlur(current, (kernel_size, kernel_size), 0)
    mask = (cv2.absdiff(before, current) > threshold).astype(np.uint8)
    if dilation > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1, 2 * dilation + 1))
        mask = cv2.dilate(mask, kernel)
    return mask


def mask_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [x1, y1, x2, y2) of the 8-connected components of a mask, and each one's fill ratio."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:n]
    x, y, w, h, area = (stats[:, i].astype(np.float32) for i in range(5))
    boxes = np.stack([x, y, x + w, y + h], axis=1) if len(stats) else np.zeros((0, 4), np.float32)
    fill = area / np.maximum(w * h, 1) if len(stats) else np.zeros(0, np.float32)
    return boxes.astype(np.float32), fill.astype(np.float32)


def box_area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def drop_overlapping(boxes: np.ndarray, max_overlap: float) -> np.ndarray:
    """Indices of boxes to keep: a box goes when more than `max_overlap` of its own area lies inside a
    larger box (AI-VAD's rule, so of two overlapping boxes only the smaller is removed)."""
    if len(boxes) < 2:
        return np.arange(len(boxes))
    areas = box_area(boxes)
    order = np.argsort(areas, kind="stable")
    keep = []
    for rank, idx in enumerate(order):
        larger = boxes[order[rank + 1 :]]
        if len(larger):
            x1 = np.maximum(boxes[idx, 0], larger[:, 0])
            y1 = np.maximum(boxes[idx, 1], larger[:, 1])
            x2 = np.minimum(boxes[idx, 2], larger[:, 2])
            y2 = np.minimum(boxes[idx, 3], larger[:, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            if np.any(inter / max(areas[idx], 1e-9) > max_overlap):
                continue
        keep.append(idx)
    return np.sort(np.asarray(keep, dtype=np.int64))


@register
class Regions(Featurizer):
    """Connected components of the thresholded difference of blurred consecutive frames.

    Frame t's regions come from frames t-1 and t (frame 0 has none). Filters as AI-VAD's
    RegionExtractor: box area > `min_bbox_area`, then overlap removal by `max_bbox_overlap`.
    `dilation` (pixels, 0 = off as in AI-VAD) joins fragments of one object before labelling.
    """

    name = "regions"
    summary = "foreground boxes from blurred frame differences (AI-VAD filters)"

    def __init__(
        self,
        kernel_size: int = 3,
        binary_threshold: int = 18,
        min_bbox_area: int = 100,
        max_bbox_overlap: float = 0.65,
        dilation: int = 0,
    ):
        self.kernel_size = kernel_size
        self.binary_threshold = binary_threshold
        self.min_bbox_area = min_bbox_area
        self.max_bbox_overlap = max_bbox_overlap
        self.dilation = dilation
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise UsageError(f"regions.kernel_size={kernel_size}: must be a positive odd number")
        if not 0 <= binary_threshold <= 255:
            raise UsageError(f"regions.binary_threshold={binary_threshold}: must be in 0..255")
        if not 0 < max_bbox_overlap <= 1:
            raise UsageError(f"regions.max_bbox_overlap={max_bbox_overlap}: must be in (0, 1]")
        if dilation < 0:
            raise UsageError(f"regions.dilation={dilation}: must be ≥ 0")

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        return {
            "boxes": ArraySpec((4,), "float32", ragged=True),
            "scores": ArraySpec((), "float32", ragged=True),
            "labels": ArraySpec((), "int16", ragged=True),
            "fill": ArraySpec((), "float32", ragged=True),
        }

    def detect(self, before: np.ndarray | None, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(boxes, fill ratios) of one frame given the frame before it."""
        if before is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        mask = foreground_mask(before, current, self.kernel_size, self.binary_threshold, self.dilation)
        boxes, fill = mask_boxes(mask)
        big = box_area(boxes) > self.min_bbox_area
        boxes, fill = boxes[big], fill[big]
        keep = drop_overlapping(boxes, self.max_bbox_overlap)
        return boxes[keep], fill[keep]

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        per_frame = [self.detect(before, current) for _, before, current in window.gray_pairs()]
        boxes = [b for b, _ in per_frame]
        counts = np.array([len(b) for b in boxes], np.int64)
        flat = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
        n = len(flat)
        return Output(
            ragged={
                "boxes": flat,
                "scores": np.full(n, FOREGROUND_SCORE, np.float32),
                "labels": np.full(n, FOREGROUND_LABEL, np.int16),
                "fill": np.concatenate([f for _, f in per_frame]) if per_frame else np.zeros(0, np.float32),
            },
            counts=counts,
            memory={"boxes": boxes},
        )
