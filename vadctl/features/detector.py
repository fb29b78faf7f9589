"""Object detector regions from local weights: the `regions.detector` backends.

- `maskrcnn_v2` / `maskrcnn`: as AI-VAD's RegionExtractor, torchvision Mask R-CNN (ResNet-50 FPN v2
  by default) with `box_score_thresh` and an RPN NMS threshold of 0.3; labels are COCO category
  ids (1 = person). It needs torchvision's compiled ops (nms, roi_align): where they cannot load (a
  CUDA-linked torchvision on CPU-only torch, as on the development machines) the spec check fails
  with one line.
- `yolox` / `yolov8`: ONNX exports run by onnxruntime (`vadctl.features.yolo`), no torchvision ops;
  labels are the model's class index + 1 (COCO: 1 = person, 2 = bicycle, …), 0 staying foreground.

Each family has its own default `box_score_thresh` and foreground merge (`DEFAULT_SCORE_THRESH`,
`DEFAULT_FOREGROUND`): a detector's scores are calibrated its own way and its operating point
decides what the merge adds, so one setting cannot serve all (see the constants' comments).
"""

from __future__ import annotations

import numpy as np

from vadctl.backbones.batching import Pipeline, chunks
from vadctl.backbones.torch_compat import device as pick_device
from vadctl.backbones.torch_compat import import_extra, inference_dtype, require_compiled_ops
from vadctl.backbones.weights import ResolvedWeights, WeightFile, check_fits, load_tensors, tensor_shapes
from vadctl.errors import WeightsError
from vadctl.features import yolo

# torch is imported inside the functions that use it: importing this module stays cheap (CLI start-up).

# regions.detector → (torchvision builder, published COCO weights file)
TORCHVISION = {
    "maskrcnn_v2": ("maskrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"),
    "maskrcnn": ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"),
}
# regions.detector → ONNX file names looked for in the weights folder (the generic name first)
ONNX = {
    "yolox": ("yolox.onnx", *(f"yolox_{size}.onnx" for size in ("nano", "tiny", "s", "m", "l", "x"))),
    "yolov8": ("yolov8.onnx", *(f"yolov8{size}.onnx" for size in ("n", "s", "m", "l", "x"))),
}
VARIANTS = (*TORCHVISION, *ONNX)
# Each family's own default, never chosen on evaluation data: Mask R-CNN 0.8 is AI-VAD's setting;
# 0.3 is YOLOX's ONNX demo default and 0.25 ultralytics' predict default. YOLOX-nano scores
# Ped2's walkers 0.35-0.76 (../shared/weights/PROVENANCE.md), so 0.8 would drop nearly all of them.
DEFAULT_SCORE_THRESH = {"maskrcnn_v2": 0.8, "maskrcnn": 0.8, **{k: yolo.LAYOUTS[k].default_score_thresh for k in ONNX}}
# Merging foreground (motion) components outside the boxes is AI-VAD's way to catch what a high-
# threshold Mask R-CNN misses. At YOLO's own low operating point the boxes already cover the moving
# objects: on Ped2's training videos YOLOX-nano at 0.3 covers 87 % of moving pixels and what the
# merge adds (0.22 boxes per frame, median 140 px²) are fragments of walkers it has boxed (legs,
# feet), whose crops and flow describe parts, not objects (benchmarks/ped2_choices.md).
DEFAULT_FOREGROUND = {"maskrcnn_v2": True, "maskrcnn": True, "yolox": False, "yolov8": False}
PERSON_LABEL = 1  # "person": COCO category id 1 in torchvision's models; class index 0 (+1) in YOLO's
RPN_NMS_THRESH = 0.3  # AI-VAD's setting


def weight_file(detector: str) -> WeightFile:
    if detector in ONNX:
        describes = f"{yolo.LAYOUTS[detector].describes} (an ONNX export)"
        return WeightFile(detector, "regions", describes, ONNX[detector], source=f"an ONNX export of {describes}")
    builder, official = TORCHVISION[detector]
    return WeightFile.torchvision(detector, "regions", builder, official, f"torchvision {builder} (COCO)")


def load(detector: str, weights: ResolvedWeights, box_score_thresh: float):
    """A loaded detector with `detect(frames) → [(boxes, scores, labels)]` (labels as `regions` stores them)."""
    if detector in ONNX:
        return YoloDetector(detector, weights, box_score_thresh)
    return Detector(detector, weights, box_score_thresh)


class YoloDetector:
    """An ONNX YOLO detector whose labels are class index + 1 (0 is `regions`' foreground label)."""

    def __init__(self, detector: str, weights: ResolvedWeights, box_score_thresh: float):
        self.model = yolo.OnnxDetector(detector, weights.path, box_score_thresh)

    def detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [(b, s, (c + 1).astype(np.int16)) for b, s, c in self.model.detect(frames)]


def build(detector: str, box_score_thresh: float, device: str = "cpu"):
    import torch

    torchvision = import_extra("torchvision", f"regions.detector={detector}", "detector")
    builder = getattr(torchvision.models.detection, TORCHVISION[detector][0])
    with torch.device(device):
        return builder(
            weights=None, weights_backbone=None, box_score_thresh=box_score_thresh, rpn_nms_thresh=RPN_NMS_THRESH
        )


def check(detector: str, box_score_thresh: float, weights: ResolvedWeights) -> None:
    """The detector can run here and the file holds its weights (an ONNX file: its layout)."""
    if detector in ONNX:
        yolo.OnnxDetector(detector, weights.path, box_score_thresh)
        return
    require_compiled_ops(f"regions.detector={detector}")
    expected = {k: tuple(v.shape) for k, v in build(detector, box_score_thresh, "meta").state_dict().items()}
    found = tensor_shapes(weights.path, "regions")
    check_fits("regions", weights.path, f"torchvision {TORCHVISION[detector][0]}", expected, found)


class Detector:
    """A loaded detector: RGB frames in, (boxes, scores, labels) per frame out."""

    def __init__(self, detector: str, weights: ResolvedWeights, box_score_thresh: float, device: str = "auto"):
        require_compiled_ops(f"regions.detector={detector}")
        model = build(detector, box_score_thresh, "cpu")
        try:
            model.load_state_dict(load_tensors(weights.path, "regions"), strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise WeightsError(
                f"regions: {weights.path}: cannot load into {TORCHVISION[detector][0]}: {first}"
            ) from None
        self.device = pick_device(device)
        self.dtype = inference_dtype(self.device)
        self.model = model.to(self.device).eval()
        self.pipeline = Pipeline(overlap=self.device.type == "cuda")
        self.batch_size = 8

    def _prepare(self, frames: np.ndarray):
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, non_blocking=True)
        return list(tensor.permute(0, 3, 1, 2).float().div_(255))

    def _run(self, images) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        import torch

        with torch.inference_mode(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            results = self.model(images)
        return [
            (
                r["boxes"].float().cpu().numpy().astype(np.float32),
                r["scores"].float().cpu().numpy().astype(np.float32),
                r["labels"].cpu().numpy().astype(np.int16),
            )
            for r in results
        ]

    def detect(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        out = self.pipeline.map(chunks(frames, self.batch_size), self._prepare, self._run)
        return [item for batch in out for item in batch]
