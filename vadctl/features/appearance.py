"""`appearance` and `appearance_regions`: ImageNet backbone embeddings of frames and of region crops.

The weighted alternative to CLIP where only ImageNet weights are at hand: AI-VAD's deep attribute
with CLIP replaced (`vadctl fit -m aivad` reads `appearance_regions` when there is no
`clip_regions`), and a frame/clip feature for FUVAS and the scene-aware model. Both share one
encoder (`appearance_model`). Embeddings are pooled, L2-normalised, float16.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from vadctl.backbones.weights import ResolvedWeights, WeightFile
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.errors import UsageError
from vadctl.features import appearance_model as backbones
from vadctl.features.base import Output
from vadctl.features.deep import WeightedFeaturizer
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo


class _AppearanceBase(WeightedFeaturizer):
    extra = "appearance"
    extra_modules = ("torchvision",)
    ragged: ClassVar[bool] = False  # one row per frame, or per region
    backbone: str
    size: int
    batch_size: int
    device: str
    runtime: str

    def _validate(self) -> None:
        backbones.check_backbone(self.name, self.backbone)
        if not isinstance(self.size, int) or self.size < 32:
            raise UsageError(f"{self.name}.size={self.size!r}: pixels, at least 32")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"{self.name}.batch_size={self.batch_size!r}: must be a positive integer")
        if self.runtime not in backbones.RUNTIMES:
            raise UsageError(f"{self.name}.runtime={self.runtime!r}: use auto, onnx or torch")

    def weight_file(self) -> WeightFile:
        return backbones.weight_file(self.name, self.backbone)

    def import_extra(self) -> None:
        backbones.torchvision_module(self.name)

    def check_weights(self, weights: ResolvedWeights) -> None:
        backbones.check_weights(self.name, self.backbone, weights)

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        self.check()
        self.encoder = backbones.encoder(self.name, self.backbone, self.resolved_weights(), self.device, self.runtime)

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        dim = backbones.BACKBONES[self.backbone].dim
        return {"embedding": ArraySpec((dim,), "float16", ragged=self.ragged)}


@register
class Appearance(_AppearanceBase):
    """One embedding per frame: the whole frame, short side resized to `size` (aspect kept)."""

    name = "appearance"
    summary = "ImageNet backbone embedding per frame (mobilenet_v2 default; resnet18/50), L2-normalised float16"

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        size: int = 224,
        batch_size: int = 16,
        device: str = "auto",
        runtime: str = "auto",
    ):
        self.backbone = backbone
        self.size = size
        self.batch_size = batch_size
        self.device = device
        self.runtime = runtime
        self._validate()

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        images = [backbones.frame_input(frame, self.size) for frame in window.frames]
        return Output(dense={"embedding": self.encoder.embed(images, self.batch_size)})


@register
class AppearanceRegions(_AppearanceBase):
    """One embedding per `regions` row: the box's pixels squashed to `size`×`size` (as AI-VAD's crops).
    Rows align 1:1 with `regions`."""

    name = "appearance_regions"
    requires = ("regions",)
    summary = "ImageNet backbone embeddings of region crops, rows aligned with regions, L2-normalised float16"
    ragged = True

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        size: int = 224,
        batch_size: int = 32,
        device: str = "auto",
        runtime: str = "auto",
    ):
        self.backbone = backbone
        self.size = size
        self.batch_size = batch_size
        self.device = device
        self.runtime = runtime
        self._validate()

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        boxes_per_frame = upstream["regions"].memory["boxes"]
        crops = [
            backbones.crop_input(frame, box, self.size)
            for frame, boxes in zip(window.frames, boxes_per_frame, strict=True)
            for box in boxes
        ]
        return Output(
            ragged={"embedding": self.encoder.embed(crops, self.batch_size)},
            counts=np.array([len(b) for b in boxes_per_frame], np.int64),
        )
