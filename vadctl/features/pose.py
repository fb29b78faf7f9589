"""`pose`: body keypoints of every region, normalised to its box (AI-VAD's pose features).

mediapipe 0.10.21's pose solution runs on each region's crop, widened by `margin` of the box size
on every side so a whole body fits, and upscaled to at least `MIN_SIDE` pixels on its long side
(surveillance people are small; the detector wants more pixels). Its 33 keypoints are mapped back
to frame pixels and normalised to the box: (0, 0) is the box's top-left corner, (1, 1) its
bottom-right; keypoints the model places outside the box fall outside [0, 1]. Rows align 1:1 with
the `regions` rows: `found` is 0 where no person was found in the crop (keypoints and visibility
are zero there).

The model ships inside the mediapipe wheel (`model_complexity=1`, the only one present offline);
the feature's identity holds the sha256 of the bundled model files. mediapipe pins numpy<2, so it
lives in its own environment: `pip install 'vadctl[pose]'` (nox session `tests_pose`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from vadctl.backbones.torch_compat import offline
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.errors import UsageError
from vadctl.features.base import Output
from vadctl.features.deep import WeightedFeaturizer
from vadctl.features.loaded import shared
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo

# mediapipe is imported inside the functions that use it: importing this module stays cheap (CLI start-up).

N_KEYPOINTS = 33  # mediapipe BlazePose landmarks
MIN_SIDE = 256  # crops are upscaled to at least this long side before the model sees them
BUNDLED = ("modules/pose_detection/pose_detection.tflite", "modules/pose_landmark/pose_landmark_full.tflite")


def import_mediapipe():
    offline()
    try:
        import mediapipe
    except ImportError:
        raise UsageError(
            "feature pose needs the 'pose' extra (mediapipe 0.10.21, which pins numpy<2; use a separate "
            "environment): pip install 'vadctl[pose]' -c constraints.txt"
        ) from None
    if not hasattr(getattr(mediapipe, "solutions", None), "pose"):
        raise UsageError(
            f"feature pose needs mediapipe's legacy pose solution (0.10.21); mediapipe {mediapipe.__version__} lacks it"
        )
    return mediapipe


def bundled_models() -> list[Path]:
    root = Path(import_mediapipe().__file__).parent
    return [root / name for name in BUNDLED]


def widened(box: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """The crop [x1, y1, x2, y2) around a box, `margin` of its size added on every side, inside the frame."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    x1 = int(np.clip(np.floor(box[0] - margin * bw), 0, width - 1))
    y1 = int(np.clip(np.floor(box[1] - margin * bh), 0, height - 1))
    x2 = int(np.clip(np.ceil(box[2] + margin * bw), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[3] + margin * bh), y1 + 1, height))
    return x1, y1, x2, y2


def to_box(points: np.ndarray, crop: tuple[int, int, int, int], box: np.ndarray) -> np.ndarray:
    """Keypoints given in [0, 1] of a crop → frame pixels → [0, 1] of the box."""
    x1, y1, x2, y2 = crop
    pixels = points * np.array([x2 - x1, y2 - y1], np.float32) + np.array([x1, y1], np.float32)
    size = np.maximum(np.array([box[2] - box[0], box[3] - box[1]], np.float32), 1e-6)
    return ((pixels - box[:2]) / size).astype(np.float32)


@register
class Pose(WeightedFeaturizer):
    """33 body keypoints per region (see module doc)."""

    name = "pose"
    requires = ("regions",)
    extra = "pose"
    extra_modules = ("mediapipe",)
    summary = "body keypoints per region (mediapipe pose on crops), normalised to the box"

    def __init__(self, margin: float = 0.25, min_detection_confidence: float = 0.5):
        self.margin = margin
        self.min_detection_confidence = min_detection_confidence
        if not 0 <= margin <= 2:
            raise UsageError(f"pose.margin={margin}: fraction of the box added on each side, in [0, 2]")
        if not 0 < min_detection_confidence < 1:
            raise UsageError(f"pose.min_detection_confidence={min_detection_confidence}: must be in (0, 1)")
        self._model = None

    def import_extra(self) -> None:
        import_mediapipe()

    def bundled_identity(self) -> str:
        digest = hashlib.sha256()
        for path in bundled_models():
            digest.update(path.read_bytes())
        return f"mediapipe-bundled:sha256:{digest.hexdigest()[:16]}"

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        return {
            "keypoints": ArraySpec(
                (N_KEYPOINTS, 2),
                "float32",
                ragged=True,
                dims=("keypoint", "xy"),
                attrs={"units": "fraction of the region box"},
            ),
            "visibility": ArraySpec((N_KEYPOINTS,), "float32", ragged=True, dims=("keypoint",)),
            "found": ArraySpec((), "uint8", ragged=True),
        }

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        self.check()
        if self._model is None:
            self._model = shared("pose", (self.min_detection_confidence,), self._load)

    def _load(self):
        """mediapipe's pose solution on single images: loaded once per process."""
        return import_mediapipe().solutions.pose.Pose(
            static_image_mode=True,  # every crop is a new person: no tracking between calls
            model_complexity=1,
            min_detection_confidence=self.min_detection_confidence,
        )

    def estimate(self, frame: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(keypoints (33, 2) in box units, visibility (33,), found) for one region of an RGB frame."""
        crop = widened(box, self.margin, *frame.shape[:2])
        pixels = frame[crop[1] : crop[3], crop[0] : crop[2]]
        long_side = max(pixels.shape[:2])
        if long_side < MIN_SIDE:
            scale = MIN_SIDE / long_side
            size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)
        result = self._model.process(np.ascontiguousarray(pixels))
        if result.pose_landmarks is None:
            return np.zeros((N_KEYPOINTS, 2), np.float32), np.zeros(N_KEYPOINTS, np.float32), 0
        marks = result.pose_landmarks.landmark
        points = np.array([[m.x, m.y] for m in marks], np.float32)
        visibility = np.array([m.visibility for m in marks], np.float32)
        return to_box(points, crop, box), visibility, 1

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        boxes_per_frame = upstream["regions"].memory["boxes"]
        rows = [
            self.estimate(frame, box)
            for frame, boxes in zip(window.frames, boxes_per_frame, strict=True)
            for box in boxes
        ]
        return Output(
            ragged={
                "keypoints": np.stack([r[0] for r in rows]) if rows else np.zeros((0, N_KEYPOINTS, 2), np.float32),
                "visibility": np.stack([r[1] for r in rows]) if rows else np.zeros((0, N_KEYPOINTS), np.float32),
                "found": np.array([r[2] for r in rows], np.uint8),
            },
            counts=np.array([len(b) for b in boxes_per_frame], np.int64),
        )
