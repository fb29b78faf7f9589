"""`flow`: dense optical flow between consecutive frames (OpenCV DIS by default)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from vadctl.backbones import raft
from vadctl.backbones.weights import WeightFile
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.common.threads import thread_cap
from vadctl.errors import UsageError
from vadctl.features.base import Featurizer, Output
from vadctl.features.deep import UsesWeights
from vadctl.features.loaded import shared
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@register
class Flow(UsesWeights, Featurizer):
    """Flow from frame t-1 to frame t at full decoded resolution (frame 0 has zero flow).

    `method`: `dis` (OpenCV DIS, `preset` sets its quality), or RAFT from local weights (`raft`,
    RAFT-large as AI-VAD uses; `raft_small`), see `vadctl.features.raft`. RAFT entries add the
    weights' sha256 to their identity; DIS entries are unchanged by the RAFT backend's existence.

    Full-resolution flow is handed to dependent featurizers (velocity) in memory. The store keeps
    it scaled by `store_scale`, in pixels of the stored size, as int16 multiples of `quantum`
    pixels: float flow is mostly sub-pixel noise and barely compresses (1.1× as float16), while
    1/32-pixel fixed point, finer than DIS is accurate, compresses about 8×.
    Read it back as float with `to_pixels`.
    """

    name = "flow"
    summary = "dense optical flow (OpenCV DIS), stored downscaled as int16 fixed point"
    context_before = 1  # flow at frame t needs frame t-1
    workers: int | None = None  # DIS pairs computed at once (default: this worker's share of the cores, at most 2)
    raft_device = "auto"  # how RAFT runs, not what it computes: not part of the identity either
    raft_batch_size = 4

    def __init__(self, method: str = "dis", preset: str = "medium", store_scale: float = 0.5, quantum: float = 1 / 32):
        self.method = method
        self.preset = preset
        self.store_scale = store_scale
        self.quantum = quantum
        if method != "dis" and method not in raft.VARIANTS:
            raise UsageError(f"flow.method={method!r}: use dis, raft (RAFT-large, local weights) or raft_small")
        if preset not in DIS_PRESETS:
            raise UsageError(f"flow.preset={preset!r}: use one of {', '.join(DIS_PRESETS)}")
        if not 0 < store_scale <= 1:
            raise UsageError(f"flow.store_scale={store_scale}: must be in (0, 1]")
        if not 0 < quantum <= 1:
            raise UsageError(f"flow.quantum={quantum}: must be in (0, 1] pixels")
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._raft: raft.RaftEngine | None = None

    def weight_file(self) -> WeightFile | None:
        return raft.weight_file(self.method) if self.method in raft.VARIANTS else None

    def check_weights(self, weights) -> None:
        raft.check_weights(self.method, weights)

    def _stored_size(self, info: VideoInfo) -> tuple[int, int]:
        return max(1, round(info.height * self.store_scale)), max(1, round(info.width * self.store_scale))

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        attrs = {
            "description": "optical flow from frame t-1 to t (dx, dy); frame 0 is zero",
            "units": "pixels per frame at the stored size",
            "scale_factor": self.quantum,  # stored values are int16 multiples of `quantum` pixels
            "stored_scale": self.store_scale,  # stored size / decoded size
        }
        return {"data": ArraySpec((*self._stored_size(info), 2), "int16", dims=("y", "x", "component"), attrs=attrs)}

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        self._stored = self._stored_size(info)
        if self.method != "dis" and self._raft is None:
            weights = self.resolved_weights()
            key = (self.method, weights.sha256, self.raft_device, self.raft_batch_size)
            self._raft = shared(
                "raft", key, lambda: raft.RaftEngine(self.method, weights, self.raft_device, self.raft_batch_size)
            )
        workers = self.workers or thread_cap(min(2, os.cpu_count() or 1))
        if self._pool is None and workers > 1 and self.method == "dis":
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="vadctl-flow")

    def _calc(self, pair: tuple[np.ndarray | None, np.ndarray]) -> np.ndarray:
        before, current = pair
        if before is None:
            return np.zeros((*current.shape, 2), np.float32)
        dis = getattr(self._local, "dis", None)
        if dis is None:  # DIS objects are not thread-safe: one per thread
            dis = self._local.dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])
        return dis.calc(before, current, None)

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        if self._raft is not None:
            flows = self._raft_flows(window)
        else:
            pairs = [(before, current) for _, before, current in window.gray_pairs()]
            mapped = self._pool.map(self._calc, pairs) if self._pool else map(self._calc, pairs)
            flows = np.stack(list(mapped))
        return Output(dense={"data": self._to_stored(flows)}, memory={"flow": flows})

    def _raft_flows(self, window: FrameWindow) -> np.ndarray:
        befores = [window.previous, *window.frames[:-1]]
        pairs = [(b, c) for b, c in zip(befores, window.frames, strict=True) if b is not None]
        flows = self._raft.flows(pairs) if pairs else np.zeros((0, *window.frames.shape[1:3], 2), np.float32)
        if window.previous is None:  # frame 0 of the video: no frame before it, zero flow
            flows = np.concatenate([np.zeros((1, *window.frames.shape[1:3], 2), np.float32), flows])
        return flows

    def _to_stored(self, flows: np.ndarray) -> np.ndarray:
        h, w = self._stored
        sy, sx = h / flows.shape[1], w / flows.shape[2]
        out = np.empty((len(flows), h, w, 2), np.int16)
        for i, flow in enumerate(flows):
            small = flow if (h, w) == flow.shape[:2] else cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA)
            small = small * np.array([sx, sy], np.float32) / self.quantum
            out[i] = np.clip(np.rint(small), -32767, 32767)
        return out


def to_pixels(stored: np.ndarray, params: Mapping) -> np.ndarray:
    """Stored int16 flow back to float32 pixels (of the stored resolution)."""
    return stored.astype(np.float32) * float(params["quantum"])
