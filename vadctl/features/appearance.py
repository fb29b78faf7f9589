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
from vadctl.features import box_tracks
from vadctl.features.base import Output
from vadctl.features.deep import WeightedFeaturizer
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo

REFRESH_CHOICES = (1, 2, 4, 8, 16)  # powers of two: segment starts (multiples of the window) stay refresh frames


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

    def check(self) -> None:
        """On onnxruntime, compiling the graph (once per weight file, in a child process) is the check:
        this process then never imports torch. Else the base class's checks."""
        if self._checked or backbones.resolve_runtime(self.name, self.runtime, self.device) != "onnx":
            super().check()
            return
        backbones.compiled_graph(self.name, self.backbone, self.resolved_weights())
        self._checked = True

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
    Rows align 1:1 with `regions`.

    `refresh` = k > 1 embeds a box when it starts a track (`box_tracks`: IoU ≥ 0.5 with a box of the
    frame before) and on frames whose index is a multiple of k; in between, a box that continues a
    track keeps the embedding last computed on that track. k = 1 embeds every box of every frame
    (and keeps the identity entries had before the option existed). Refreshing on frame indices (not
    on a count since the track began) keeps a long video cut into segments equal to one extracted
    whole: segment starts are multiples of k (`alignment`).

    Defaults (112×112 crops, refresh 4) were chosen on Ped1 (benchmarks/choices.md, third pass):
    AI-VAD's micro AUROC there went from 0.8313 (224, every frame) to 0.8408, with about a tenth of
    the network's work; entries made before keep their parameters (224, refresh 1) in their identity.
    """

    name = "appearance_regions"
    requires = ("regions",)
    summary = "ImageNet backbone embeddings of region crops, rows aligned with regions, L2-normalised float16"
    ragged = True

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        size: int = 112,
        batch_size: int = 32,
        device: str = "auto",
        runtime: str = "auto",
        refresh: int = 4,
    ):
        self.backbone = backbone
        self.size = size
        self.batch_size = batch_size
        self.device = device
        self.runtime = runtime
        self.refresh = refresh
        self._validate()
        if refresh not in REFRESH_CHOICES:
            raise UsageError(
                f"appearance_regions.refresh={refresh!r}: use one of {', '.join(map(str, REFRESH_CHOICES))}"
            )
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (boxes, embeddings) of the frame before

    def get_params(self) -> dict:
        params = super().get_params()
        if self.refresh == 1:  # entries made before the option existed keep their identity
            params.pop("refresh")
        return params

    @property
    def alignment(self) -> int:
        return self.refresh

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        super().begin(info, clips)
        self._last = None

    def start_at(self, frame: int, clip: int) -> None:
        self._last = None  # a segment's first frame starts every track (it is a refresh frame: see above)

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        boxes_per_frame = upstream["regions"].memory["boxes"]
        counts = np.array([len(b) for b in boxes_per_frame], np.int64)
        if self.refresh == 1:
            crops = [
                backbones.crop_input(frame, box, self.size)
                for frame, boxes in zip(window.frames, boxes_per_frame, strict=True)
                for box in boxes
            ]
            return Output(ragged={"embedding": self.encoder.embed(crops, self.batch_size)}, counts=counts)
        return Output(ragged={"embedding": self._tracked(window, boxes_per_frame)}, counts=counts)

    def _tracked(self, window: FrameWindow, boxes_per_frame) -> np.ndarray:
        """Embeddings computed only for boxes that start a track or fall on a refresh frame."""
        previous = None if self._last is None else self._last[0]
        sources = []  # per frame: for each box, ("new", crop index) or ("kept", row of the frame before)
        crops = []
        for offset, (frame, boxes) in enumerate(zip(window.frames, boxes_per_frame, strict=True)):
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            refreshing = (window.start + offset) % self.refresh == 0 or previous is None
            matched = np.full(len(boxes), -1) if refreshing else box_tracks.continue_boxes(boxes, previous)
            frame_sources = []
            for box, kept in zip(boxes, matched, strict=True):
                if kept < 0:
                    frame_sources.append((True, len(crops)))
                    crops.append(backbones.crop_input(frame, box, self.size))
                else:
                    frame_sources.append((False, int(kept)))
            sources.append(frame_sources)
            previous = boxes
        computed = self.encoder.embed(crops, self.batch_size)
        dim = computed.shape[1]
        before = np.zeros((0, dim), np.float16) if self._last is None else self._last[1]
        rows = []
        for frame_sources in sources:
            embeddings = (
                np.stack([computed[i] if new else before[i] for new, i in frame_sources])
                if frame_sources
                else np.zeros((0, dim), np.float16)
            )
            rows.append(embeddings)
            before = embeddings
        if boxes_per_frame:
            self._last = (np.asarray(boxes_per_frame[-1], np.float32).reshape(-1, 4), before)
        return np.concatenate(rows) if rows else np.zeros((0, dim), np.float16)
