"""`regions`: foreground boxes from blurred frame differences (AI-VAD's foreground detections), and
optionally object detector boxes merged with them (AI-VAD's region extractor)."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from vadctl.backbones.weights import WeightFile
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.errors import UsageError
from vadctl.features import detector as detectors
from vadctl.features.base import Featurizer, Output
from vadctl.features.deep import UsesWeights
from vadctl.features.loaded import shared
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo

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


def merge_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray | None,
    persons_only: bool,
    min_bbox_area: float,
    max_bbox_overlap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AI-VAD's merge: detector boxes, plus foreground components outside them (each detector box
    widened by 2 px), then the filters: persons only (drops foreground boxes too, as AI-VAD does),
    area > `min_bbox_area`, overlap removal. Returns (boxes, scores, labels, fill)."""
    boxes = boxes.reshape(-1, 4).astype(np.float32)
    fill = np.zeros(len(boxes), np.float32)
    if mask is not None:
        h, w = mask.shape
        covered = np.zeros_like(mask)
        for i, box in enumerate(boxes):
            x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
            x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
            fill[i] = mask[y1:y2, x1:x2].mean() if x2 > x1 and y2 > y1 else 0.0
            covered[max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2] = 1
        extra, extra_fill = mask_boxes(mask * (1 - covered))
        boxes = np.concatenate([boxes, extra])
        scores = np.concatenate([scores, np.full(len(extra), FOREGROUND_SCORE, np.float32)])
        labels = np.concatenate([labels, np.full(len(extra), FOREGROUND_LABEL, np.int16)])
        fill = np.concatenate([fill, extra_fill])
    keep = np.flatnonzero((labels == detectors.PERSON_LABEL) if persons_only else np.ones(len(boxes), bool))
    keep = keep[box_area(boxes[keep]) > min_bbox_area]
    keep = keep[drop_overlapping(boxes[keep], max_bbox_overlap)]
    return boxes[keep], scores[keep].astype(np.float32), labels[keep].astype(np.int16), fill[keep]


DETECTOR_PARAMS = ("detector", "box_score_thresh", "persons_only", "foreground")


@register
class Regions(UsesWeights, Featurizer):
    """Connected components of the thresholded difference of blurred consecutive frames.

    Frame t's regions come from frames t-1 and t (frame 0 has none). Filters as AI-VAD's
    RegionExtractor: box area > `min_bbox_area`, then overlap removal by `max_bbox_overlap`.
    `dilation` (pixels, 0 = off as in AI-VAD) joins fragments of one object before labelling.

    With `detector` (`maskrcnn_v2` as AI-VAD, or `maskrcnn`; ONNX `yolox` or `yolov8`; local
    weights, see `vadctl.features.detector`), frame t's regions are the detector's boxes scoring
    above `box_score_thresh` plus, with `foreground`, the foreground components outside them,
    filtered as AI-VAD does (`persons_only` keeps persons only). Both default per detector family
    (`detector.DEFAULT_SCORE_THRESH`, `detector.DEFAULT_FOREGROUND`); the values used join the
    feature's identity. Detector parameters join it only when a detector is set, so foreground-only
    entries keep their identity.
    """

    name = "regions"
    context_before = 1  # frame differences need frame t-1
    summary = "foreground boxes from blurred frame differences (AI-VAD filters)"

    def __init__(
        self,
        kernel_size: int = 3,
        binary_threshold: int = 18,
        min_bbox_area: int = 100,
        max_bbox_overlap: float = 0.65,
        dilation: int = 0,
        detector: str | None = None,
        box_score_thresh: float | None = None,
        persons_only: bool = False,
        foreground: bool | None = None,
    ):
        self.kernel_size = kernel_size
        self.binary_threshold = binary_threshold
        self.min_bbox_area = min_bbox_area
        self.max_bbox_overlap = max_bbox_overlap
        self.dilation = dilation
        self.detector = detector
        self.box_score_thresh = box_score_thresh
        self.persons_only = persons_only
        self.foreground = foreground
        self._detector = None
        if detector is not None and detector not in detectors.VARIANTS:
            raise UsageError(f"regions.detector={detector!r}: use one of {', '.join(detectors.VARIANTS)}")
        if detector is None and (persons_only or foreground is not None or box_score_thresh is not None):
            raise UsageError("regions.persons_only, .foreground and .box_score_thresh need regions.detector")
        if box_score_thresh is not None and not 0 <= box_score_thresh <= 1:
            raise UsageError(f"regions.box_score_thresh={box_score_thresh}: must be in [0, 1]")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise UsageError(f"regions.kernel_size={kernel_size}: must be a positive odd number")
        if not 0 <= binary_threshold <= 255:
            raise UsageError(f"regions.binary_threshold={binary_threshold}: must be in 0..255")
        if not 0 < max_bbox_overlap <= 1:
            raise UsageError(f"regions.max_bbox_overlap={max_bbox_overlap}: must be in (0, 1]")
        if dilation < 0:
            raise UsageError(f"regions.dilation={dilation}: must be ≥ 0")

    @property
    def merge_foreground(self) -> bool:
        """`foreground`, or the detector family's default when not given."""
        if self.foreground is None:
            return detectors.DEFAULT_FOREGROUND.get(self.detector, True)
        return bool(self.foreground)

    @property
    def score_thresh(self) -> float | None:
        """`box_score_thresh`, or the detector family's default when not given."""
        if self.detector is None:
            return None
        return detectors.DEFAULT_SCORE_THRESH[self.detector] if self.box_score_thresh is None else self.box_score_thresh

    def get_params(self) -> dict:
        params = super().get_params()
        if self.detector is None:  # foreground-only regions keep the identity they had before detectors
            return {k: v for k, v in params.items() if k not in DETECTOR_PARAMS}
        return {**params, "box_score_thresh": self.score_thresh, "foreground": self.merge_foreground}  # as used

    def weight_file(self) -> WeightFile | None:
        return detectors.weight_file(self.detector) if self.detector else None

    def check_weights(self, weights) -> None:
        detectors.check(self.detector, self.score_thresh, weights)

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        if self.detector is not None and self._detector is None:
            weights = self.resolved_weights()
            key = (self.detector, weights.sha256, self.score_thresh)
            self._detector = shared("detector", key, lambda: detectors.load(self.detector, weights, self.score_thresh))

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        return {
            "boxes": ArraySpec(
                (4,),
                "float32",
                ragged=True,
                dims=("corner",),
                attrs={"units": "pixels of the decoded frame (x1, y1, x2, y2)"},
            ),
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
        if self._detector is not None:
            return self._process_detected(window)
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

    def _process_detected(self, window: FrameWindow) -> Output:
        merged = []
        for (_, before, current), found in zip(window.gray_pairs(), self._detector.detect(window.frames), strict=True):
            mask = None
            if self.merge_foreground and before is not None:
                mask = foreground_mask(before, current, self.kernel_size, self.binary_threshold, self.dilation)
            merged.append(merge_detections(*found, mask, self.persons_only, self.min_bbox_area, self.max_bbox_overlap))
        columns = list(zip(*merged, strict=True))
        return Output(
            ragged={
                "boxes": np.concatenate(columns[0]),
                "scores": np.concatenate(columns[1]),
                "labels": np.concatenate(columns[2]),
                "fill": np.concatenate(columns[3]).astype(np.float32),
            },
            counts=np.array([len(b) for b in columns[0]], np.int64),
            memory={"boxes": list(columns[0])},
        )
