"""`velocity`: per-region histogram of flow direction weighted by magnitude (AI-VAD's velocity)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vadctl.common.specs import ArraySpec
from vadctl.errors import UsageError
from vadctl.features.base import Featurizer, Output
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo


def region_histogram(flow: np.ndarray, box: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum of magnitudes, pixel count) per direction bin for the flow inside a box.

    Bin k covers angles [k, k + 1) · 2π / n_bins measured from the +x axis (image y points down).
    """
    h, w = flow.shape[:2]
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    patch = flow[y1:y2, x1:x2].reshape(-1, 2)
    if len(patch) == 0:
        return np.zeros(n_bins, np.float32), np.zeros(n_bins, np.float32)
    magnitude = np.hypot(patch[:, 0], patch[:, 1])
    angle = np.mod(np.arctan2(patch[:, 1], patch[:, 0]), 2 * np.pi)
    bins = np.minimum((angle / (2 * np.pi) * n_bins).astype(np.int64), n_bins - 1)
    sums = np.bincount(bins, weights=magnitude, minlength=n_bins).astype(np.float32)
    counts = np.bincount(bins, minlength=n_bins).astype(np.float32)
    return sums, counts


@register
class Velocity(Featurizer):
    """Each region's flow (frame t-1 → t) in `n_bins` fine direction bins: magnitude sum and pixel
    count, from which models build AI-VAD's histogram with 1, 2, 4 or 8 centred bins. The bin
    layout is recorded with the arrays (`direction_bins`, `first_bin_start_deg`), so models read it
    from the store.

    Rows align one to one with the `regions` rows of the same frame.
    """

    name = "velocity"
    version = 2  # 2: 16 fine bins from 0 rad, merged into centred coarse bins
    requires = ("flow", "regions")
    summary = "per-region magnitude-weighted flow direction histogram"

    def __init__(self, n_bins: int = 16):
        self.n_bins = n_bins
        if n_bins < 1:
            raise UsageError(f"velocity.n_bins={n_bins}: must be ≥ 1")

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        layout = {"direction_bins": self.n_bins, "first_bin_start_deg": 0.0, "angle": "atan2(dy, dx), y down"}
        return {
            "magnitude_sum": ArraySpec(
                (self.n_bins,), "float32", ragged=True, dims=("direction",), attrs={"units": "px/frame", **layout}
            ),
            "count": ArraySpec(
                (self.n_bins,), "float32", ragged=True, dims=("direction",), attrs={"units": "pixels", **layout}
            ),
        }

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        flows = upstream["flow"].memory["flow"]
        boxes_per_frame = upstream["regions"].memory["boxes"]
        sums, counts = [], []
        for flow, boxes in zip(flows, boxes_per_frame, strict=True):
            for box in boxes:
                s, c = region_histogram(flow, box, self.n_bins)
                sums.append(s)
                counts.append(c)
        empty = np.zeros((0, self.n_bins), np.float32)
        return Output(
            ragged={"magnitude_sum": np.stack(sums) if sums else empty, "count": np.stack(counts) if counts else empty},
            counts=np.array([len(b) for b in boxes_per_frame], np.int64),
        )
