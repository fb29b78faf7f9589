"""ONNX object detectors (YOLOX, YOLOv8) through onnxruntime: the `regions.detector=yolox|yolov8` backend.

No torchvision ops: letterboxing with OpenCV, grid decoding and NMS in numpy / `cv2.dnn.NMSBoxes`,
each as the detector's own reference code does it:

- **YOLOX** (Megvii's `tools/export_onnx.py`): input N×3×H×W, BGR, 0–255, resized keeping the
  aspect and padded with 114 at the right and bottom; output (N, anchors, 5 + classes) of grid
  cell offsets, log sizes, objectness and class probabilities, decoded over strides 8/16/32 as
  YOLOX's `demo_postprocess`; score = objectness × class probability; class-agnostic NMS at
  IoU 0.45 (YOLOX's ONNX demo).
- **YOLOv8** (ultralytics `export format=onnx`): input N×3×H×W, RGB, 0–1, letterboxed in the
  centre with 114; output (N, 4 + classes, anchors) of box centres and sizes in input pixels and
  class scores; per-class NMS at IoU 0.7 (ultralytics' default).

The input size is read from the model (640×640 where the file leaves it dynamic). The batch axis
is used when the file declares it dynamic; a fixed batch of 1 runs frame by frame. Class ids are
the model's class indices (COCO: 0 = person); `regions` stores them + 1, keeping 0 for motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vadctl.backbones.onnx_options import session_options
from vadctl.common.threads import thread_cap
from vadctl.errors import UsageError, WeightsError

STRIDES = (8, 16, 32)
PAD_VALUE = 114
DYNAMIC_SIZE = 640  # input size used when the file leaves height and width dynamic


@dataclass(frozen=True)
class Layout:
    """How one detector family's ONNX export is fed and read."""

    name: str
    describes: str
    bgr: bool  # channel order of the input
    scale: float  # input pixel values = uint8 · scale
    centred: bool  # letterbox padding on both sides (else right and bottom only)
    nms_iou: float
    class_agnostic_nms: bool
    default_score_thresh: float  # the family's own demo/predict default
    output_doc: str


LAYOUTS = {
    "yolox": Layout("yolox", "YOLOX", True, 1.0, False, 0.45, True, 0.3, "(N, anchors, 5 + classes)"),
    "yolov8": Layout("yolov8", "YOLOv8", False, 1 / 255, True, 0.7, False, 0.25, "(N, 4 + classes, anchors)"),
}


def n_anchors(height: int, width: int) -> int:
    """Anchor points of a stride-8/16/32 head on an input of this size (3549 at 416×416)."""
    return sum((height // s) * (width // s) for s in STRIDES)


def letterbox(frame: np.ndarray, size: tuple[int, int], centred: bool) -> tuple[np.ndarray, float, tuple[int, int]]:
    """(padded H×W×3 image, scale, (left, top) offset): the frame resized once to fit, aspect kept."""
    height, width = size
    h, w = frame.shape[:2]
    ratio = min(height / h, width / w)
    new_w, new_h = (round(w * ratio), round(h * ratio)) if centred else (int(w * ratio), int(h * ratio))
    canvas = np.full((height, width, 3), PAD_VALUE, np.uint8)
    left = round((width - new_w) / 2 - 0.1) if centred else 0
    top = round((height - new_h) / 2 - 0.1) if centred else 0
    resized = frame if (new_w, new_h) == (w, h) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, ratio, (left, top)


def yolox_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(anchors, 2) cell coordinates and (anchors, 1) strides, in YOLOX's output order."""
    grids, strides = [], []
    for stride in STRIDES:
        xv, yv = np.meshgrid(np.arange(width // stride), np.arange(height // stride))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((grids[-1].shape[0], 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, agnostic: bool) -> np.ndarray:
    """Indices kept by non-maximum suppression (per class unless `agnostic`), best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    shifted = boxes if agnostic else boxes + classes[:, None].astype(np.float32) * 8192.0  # classes never overlap
    xywh = np.concatenate([shifted[:, :2], shifted[:, 2:] - shifted[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, iou)
    return np.asarray(kept, np.int64).reshape(-1)


class OnnxDetector:
    """A YOLOX or YOLOv8 ONNX file in onnxruntime: RGB frames in, (boxes, scores, class ids) per frame out."""

    def __init__(self, layout: str, path: Path, score_thresh: float, batch_size: int = 8, threads: int | None = None):
        self.layout = LAYOUTS[layout]
        self.path = Path(path)
        self.score_thresh = score_thresh
        ort = onnxruntime_module(f"regions.detector={layout}")
        options = session_options(ort, threads if threads is not None else thread_cap(None))
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise WeightsError(f"regions: {self.path}: not a readable ONNX model ({_first_line(error)})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] not in (3, "3"):
            shapes = ", ".join(str(i.shape) for i in inputs)
            what = self.layout.describes
            raise WeightsError(f"regions: {self.path}: input {shapes} is not one N×3×H×W image, so not a {what} export")
        self.input_name = inputs[0].name
        batch, _, height, width = inputs[0].shape
        self.size = (
            height if isinstance(height, int) else DYNAMIC_SIZE,
            width if isinstance(width, int) else DYNAMIC_SIZE,
        )
        self.fixed_batch = batch if isinstance(batch, int) else None  # a fixed batch is filled up (padded)
        self.batch_size = self.fixed_batch or batch_size
        if self.size[0] % STRIDES[-1] or self.size[1] % STRIDES[-1]:
            raise WeightsError(f"regions: {self.path}: input size {self.size} is not a multiple of 32")
        self.anchors = n_anchors(*self.size)
        self._grid = yolox_grid(*self.size) if layout == "yolox" else None
        self._check_output()

    def _check_output(self) -> None:
        """The output must have this family's layout (a dummy frame tells when its shape is dynamic)."""
        outputs = self.session.get_outputs()
        shape = outputs[0].shape if outputs else []
        if len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]):
            dummy = np.zeros((self.fixed_batch or 1, 3, *self.size), np.float32)
            try:
                shape = list(self._run(dummy).shape)
            except Exception as error:  # onnxruntime's own error types
                raise WeightsError(
                    f"regions: {self.path}: the model fails on a blank image ({_first_line(error)})"
                ) from None
        self.n_classes = self._classes(shape)

    def _classes(self, shape) -> int:
        layout, a = self.layout, self.anchors
        if _matches(layout.name, shape, a):
            return int(shape[2] - 5) if layout.name == "yolox" else int(shape[1] - 4)
        other = next((o for o in LAYOUTS.values() if o is not layout and _matches(o.name, shape, a)), None)
        hint = f"; it looks like a {other.describes} export: use -p regions.detector={other.name}" if other else ""
        raise WeightsError(
            f"regions: {self.path}: output {tuple(shape)} is not {layout.describes}'s layout {layout.output_doc} "
            f"with {a} anchors for a {self.size[0]}×{self.size[1]} input{hint}"
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def prepare(self, frames: np.ndarray) -> tuple[np.ndarray, list[tuple[float, tuple[int, int]]]]:
        """N×3×H×W float32 input and each frame's (scale, offset) to map boxes back."""
        layout = self.layout
        batch = np.empty((len(frames), 3, *self.size), np.float32)
        placements = []
        for i, frame in enumerate(frames):
            image, ratio, offset = letterbox(frame, self.size, layout.centred)
            if layout.bgr:
                image = image[..., ::-1]
            batch[i] = image.transpose(2, 0, 1)
            placements.append((ratio, offset))
        if layout.scale != 1.0:
            batch *= layout.scale
        return batch, placements

    def decode(self, raw: np.ndarray, ratio: float, offset: tuple[int, int], frame_size: tuple[int, int]):
        """One image's raw output → (boxes xyxy in frame pixels, scores, class ids) above the threshold."""
        if self.layout.name == "yolox":
            grid, strides = self._grid
            centres = (raw[:, :2] + grid) * strides
            sizes = np.exp(np.minimum(raw[:, 2:4], 20.0)) * strides
            class_scores = raw[:, 4:5] * raw[:, 5:]
        else:
            raw = raw.T
            centres, sizes, class_scores = raw[:, :2], raw[:, 2:4], raw[:, 4:]
        classes = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(classes)), classes]
        keep = scores > self.score_thresh
        centres, sizes, scores, classes = centres[keep], sizes[keep], scores[keep], classes[keep]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
        boxes = (boxes - np.array([*offset, *offset], np.float32)) / ratio
        height, width = frame_size
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        kept = nms(boxes, scores, classes, self.layout.nms_iou, self.layout.class_agnostic_nms)
        return boxes[kept], scores[kept].astype(np.float32), classes[kept].astype(np.int64)

    def detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per frame: (boxes (n, 4) xyxy float32, scores (n,), class ids (n,)), in the frames' pixels."""
        found = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            batch, placements = self.prepare(chunk)
            if self.fixed_batch and len(batch) < self.fixed_batch:  # the file takes exactly this many images
                batch = np.concatenate(
                    [batch, np.zeros((self.fixed_batch - len(batch), *batch.shape[1:]), batch.dtype)]
                )
            raw = self._run(batch)[: len(chunk)]
            for image_raw, (ratio, offset), frame in zip(raw, placements, chunk, strict=True):
                found.append(self.decode(image_raw, ratio, offset, frame.shape[:2]))
        return found


def _matches(name: str, shape, anchors: int) -> bool:
    if len(shape) != 3:
        return False
    return (name == "yolox" and shape[1] == anchors and shape[2] >= 6) or (
        name == "yolov8" and shape[2] == anchors and shape[1] >= 5
    )


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(error).__name__


def onnxruntime_module(feature: str):
    """onnxruntime, or a one-line error naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(
            f"{feature} needs onnxruntime (the 'onnx' extra): pip install 'vadctl[onnx]' -c constraints.txt"
        ) from None
    return onnxruntime
