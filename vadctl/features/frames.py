"""`frames`: resized frames, the input of frame-prediction models (FFP)."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from vadctl.common.specs import ArraySpec
from vadctl.errors import UsageError
from vadctl.features.base import Featurizer, Output
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo


@register
class Frames(Featurizer):
    """Frames resized to a fixed size (area interpolation), gray or RGB, uint8.

    256×256 gray is FFP's published input for Ped2; models may downsample further at fit time.
    """

    name = "frames"
    summary = "resized gray/RGB frames (frame-prediction input)"

    def __init__(self, height: int = 256, width: int = 256, color: str = "gray"):
        self.height = height
        self.width = width
        self.color = color
        if color not in ("gray", "rgb"):
            raise UsageError(f"frames.color={color!r}: use 'gray' or 'rgb'")
        if height < 8 or width < 8:
            raise UsageError(f"frames: size {height}x{width} is too small (minimum 8x8)")

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        tail = (self.height, self.width) if self.color == "gray" else (self.height, self.width, 3)
        dims = ("y", "x") if self.color == "gray" else ("y", "x", "channel")
        return {"data": ArraySpec(tail, "uint8", dims=dims, attrs={"description": f"{self.color} frames, resized"})}

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        source = window.gray if self.color == "gray" else window.frames
        size = (self.width, self.height)
        resized = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in source])
        return Output(dense={"data": resized})
