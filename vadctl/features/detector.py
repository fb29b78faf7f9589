"""Object detector regions (torchvision Mask R-CNN, local weights): the `regions.detector` backend.

As AI-VAD's RegionExtractor: Mask R-CNN (ResNet-50 FPN v2 by default) with `box_score_thresh` and an
RPN NMS threshold of 0.3 detects objects in frame t. Only the boxes, scores and COCO labels are kept.
Mask R-CNN needs torchvision's compiled ops (nms, roi_align): where they cannot load (a CUDA-linked
torchvision on CPU-only torch, as on the development machines) the spec check fails with one line.
"""

from __future__ import annotations

import numpy as np

from vadctl.batching import Pipeline, chunks
from vadctl.errors import WeightsError
from vadctl.torch_compat import device as pick_device
from vadctl.torch_compat import import_extra, inference_dtype, require_compiled_ops
from vadctl.weights import ResolvedWeights, WeightFile, check_fits, load_tensors, tensor_shapes

# regions.detector → (torchvision builder, published COCO weights file)
VARIANTS = {
    "maskrcnn_v2": ("maskrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"),
    "maskrcnn": ("maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"),
}
PERSON_LABEL = 1  # COCO category id of "person" in torchvision's detection models
RPN_NMS_THRESH = 0.3  # AI-VAD's setting


def weight_file(detector: str) -> WeightFile:
    builder, official = VARIANTS[detector]
    return WeightFile.torchvision(detector, "regions", builder, official, f"torchvision {builder} (COCO)")


def build(detector: str, box_score_thresh: float, device: str = "cpu"):
    import torch

    torchvision = import_extra("torchvision", f"regions.detector={detector}", "detector")
    builder = getattr(torchvision.models.detection, VARIANTS[detector][0])
    with torch.device(device):
        return builder(
            weights=None, weights_backbone=None, box_score_thresh=box_score_thresh, rpn_nms_thresh=RPN_NMS_THRESH
        )


def check(detector: str, box_score_thresh: float, weights: ResolvedWeights) -> None:
    require_compiled_ops(f"regions.detector={detector}")
    expected = {k: tuple(v.shape) for k, v in build(detector, box_score_thresh, "meta").state_dict().items()}
    found = tensor_shapes(weights.path, "regions")
    check_fits("regions", weights.path, f"torchvision {VARIANTS[detector][0]}", expected, found)


class Detector:
    """A loaded detector: RGB frames in, (boxes, scores, labels) per frame out."""

    def __init__(self, detector: str, weights: ResolvedWeights, box_score_thresh: float, device: str = "auto"):
        require_compiled_ops(f"regions.detector={detector}")
        model = build(detector, box_score_thresh, "cpu")
        try:
            model.load_state_dict(load_tensors(weights.path, "regions"), strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise WeightsError(f"regions: {weights.path}: cannot load into {VARIANTS[detector][0]}: {first}") from None
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
