"""`clip` and `clip_regions`: CLIP image embeddings of frames and of region crops (AI-VAD's deep features).

Both share one encoder (`clip_model`): with the same model, tag and weights in one run, the model
is loaded once. Embeddings are L2-normalised float16 (D = 768 for ViT-L-14, 512 for ViT-B-32).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vadctl.backbones.weights import ResolvedWeights, WeightFile
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.errors import UsageError
from vadctl.features import clip_model
from vadctl.features.base import Output
from vadctl.features.deep import WeightedFeaturizer
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo


class _ClipBase(WeightedFeaturizer):
    extra = "clip"
    extra_modules = ("open_clip",)
    model: str
    pretrained: str
    resize_mode: str | None
    device: str
    batch_size: int

    def _validate(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"{self.name}.batch_size={self.batch_size!r}: must be a positive integer")
        if self.resize_mode not in clip_model.RESIZE_MODES:
            raise UsageError(f"{self.name}.resize_mode={self.resize_mode!r}: use shortest, longest or squash")

    def weight_file(self) -> WeightFile:
        return clip_model.weight_file(self.name, self.model, self.pretrained)

    def import_extra(self) -> None:
        clip_model.check_names(self.name, self.model, self.pretrained, self.resize_mode)

    def check_weights(self, weights: ResolvedWeights) -> None:
        clip_model.check_weights(self.name, self.model, self.pretrained, weights)

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        self.check()
        self.encoder = clip_model.encoder(self.name, self.model, self.pretrained, self.resolved_weights(), self.device)

    def _dim(self) -> int:
        return clip_model.embed_dim(self.name, self.model)


@register
class Clip(_ClipBase):
    """One embedding per frame, or per `every`-th frame (then ragged: 1 row on sampled frames, 0 else).

    Frames get open_clip's own preprocessing for the model (shortest side resized, centre crop);
    `resize_mode='squash'` keeps the whole frame instead.
    """

    name = "clip"
    summary = "CLIP image embeddings per frame (open_clip; ViT-L-14 default), L2-normalised float16"

    def __init__(
        self,
        model: str = "ViT-L-14",
        pretrained: str = "openai",
        every: int = 1,
        resize_mode: str | None = None,
        batch_size: int = 32,
        device: str = "auto",
    ):
        self.model = model
        self.pretrained = pretrained
        self.every = every
        self.resize_mode = resize_mode
        self.batch_size = batch_size
        self.device = device
        self._validate()
        if not isinstance(every, int) or every < 1:
            raise UsageError(f"clip.every={every!r}: must be a positive integer (1 = every frame)")

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        attrs = {"description": "CLIP image embedding, L2-normalised", "every_nth_frame": self.every}
        return {
            "embedding": ArraySpec((self._dim(),), "float16", ragged=self.every > 1, dims=("embedding",), attrs=attrs)
        }

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        index = np.arange(window.start, window.stop)
        sampled = index % self.every == 0
        embeddings = self.encoder.embed_frames(window.frames[sampled], self.batch_size, self.resize_mode)
        if self.every == 1:
            return Output(dense={"embedding": embeddings})
        return Output(ragged={"embedding": embeddings}, counts=sampled.astype(np.int64))


@register
class ClipRegions(_ClipBase):
    """One embedding per `regions` row: the box's pixels, squashed to the model's input size (as
    AI-VAD's region crops: the whole box, aspect not kept). Rows align 1:1 with `regions`."""

    name = "clip_regions"
    requires = ("regions",)
    summary = "CLIP embeddings of region crops, rows aligned with regions, L2-normalised float16"

    def __init__(
        self,
        model: str = "ViT-L-14",
        pretrained: str = "openai",
        resize_mode: str | None = "squash",
        batch_size: int = 32,
        device: str = "auto",
    ):
        self.model = model
        self.pretrained = pretrained
        self.resize_mode = resize_mode
        self.batch_size = batch_size
        self.device = device
        self._validate()

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        attrs = {"description": "CLIP embedding of each regions box, L2-normalised; rows align with regions"}
        return {"embedding": ArraySpec((self._dim(),), "float16", ragged=True, dims=("embedding",), attrs=attrs)}

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        boxes_per_frame = upstream["regions"].memory["boxes"]
        crops = [
            clip_model.crop(frame, box)
            for frame, boxes in zip(window.frames, boxes_per_frame, strict=True)
            for box in boxes
        ]
        embeddings = self.encoder.embed_crops(crops, self.batch_size, self.resize_mode)
        return Output(
            ragged={"embedding": embeddings},
            counts=np.array([len(b) for b in boxes_per_frame], np.int64),
        )
