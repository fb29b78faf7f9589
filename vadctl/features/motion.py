"""`motion`: a clip-level grid of flow statistics (a histogram of optical flow per cell).

The weight-free clip feature: per clip and per spatial cell, the fraction of pixels in each flow
magnitude bin and, among moving pixels (≥ `moving` px/frame), in each of four directions. It keeps
space (channels × rows × cols), so clip models such as FUVAS can both score clips and say where.
It reads flow in its stored form, so on a store that has flow it costs a decode pass, not another
flow pass.

Magnitude bins are log-spaced (a factor √2 from 0.25 to 8 px/frame by default), not a few fixed
pixel steps: how fast things move in pixels depends on the camera, its distance and frame rate
(on Ped2's training videos DIS flow never exceeds 2.2 px/frame and moving pixels sit at 0.5-1.3,
so the former edges 0.5, 1, 2, 4, 8 left two of five bins always empty). With fine bins the data
decide at fit time which ones carry variance (FUVAS's PCA keeps those), on slow and fast scenes.

Stored values are the square roots of the clip's mean fractions (the Hellinger embedding of each
cell's histograms; `hellinger=False` stores the fractions): Euclidean distances between them are
Hellinger distances, in which a small share of pixels in a rare bin (a cyclist's few fast pixels
in a cell of walkers) weighs as much as a large shift among common bins; on raw fractions the
dominant "still" bin swamps it. On the demo scene this lifts FUVAS's frame AUROC and its recall at
the threshold (benchmarks/demo.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.errors import UsageError
from vadctl.features.base import Featurizer, Output
from vadctl.features.flow import to_pixels
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo

DIRECTIONS = 4  # right, down, left, up
LOG_EDGES = tuple(round(0.25 * 2 ** (k / 2), 3) for k in range(11))  # 0.25, 0.354, 0.5, … 5.657, 8 px/frame


def cell_statistics(flow: np.ndarray, grid: tuple[int, int], edges: np.ndarray, moving: float) -> np.ndarray:
    """(n_magnitude_bins + 4, rows, cols) fractions of each cell's pixels for one flow field."""
    h, w = flow.shape[:2]
    rows, cols = grid
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    mag_bin = np.searchsorted(edges, magnitude, side="right")  # 0 .. len(edges)
    angle = np.arctan2(flow[..., 1], flow[..., 0])
    direction = np.round(angle / (np.pi / 2)).astype(np.int64) % DIRECTIONS
    n_mag = len(edges) + 1
    channel = np.where(magnitude >= moving, n_mag + direction, -1)
    cell_y = np.minimum(np.arange(h) * rows // h, rows - 1)
    cell_x = np.minimum(np.arange(w) * cols // w, cols - 1)
    cell = (cell_y[:, None] * cols + cell_x[None, :]).ravel()
    n_cells = rows * cols
    stats = np.bincount(mag_bin.ravel() * n_cells + cell, minlength=n_mag * n_cells).reshape(n_mag, n_cells)
    moving_rows = channel.ravel() >= 0
    dir_index = (channel.ravel()[moving_rows] - n_mag) * n_cells + cell[moving_rows]
    dirs = np.bincount(dir_index, minlength=DIRECTIONS * n_cells).reshape(DIRECTIONS, n_cells)
    pixels = np.bincount(cell, minlength=n_cells).astype(np.float32)
    out = np.concatenate([stats, dirs]).astype(np.float32) / pixels
    return out.reshape(n_mag + DIRECTIONS, rows, cols)


@register
class Motion(Featurizer):
    """Per clip: the square root of the mean over its sampled frames of per-cell flow magnitude and
    direction fractions."""

    name = "motion"
    version = 3  # 2: from stored flow, in full-resolution px/frame; 3: square-rooted fractions (Hellinger)
    axis = "clip"
    requires = ("flow",)
    stored_inputs = ("flow",)
    summary = "clip-level grid of flow magnitude/direction histograms (weight-free clip feature)"

    def __init__(
        self,
        rows: int = 6,
        cols: int = 8,
        edges: tuple[float, ...] = LOG_EDGES,
        moving: float = 0.5,
        hellinger: bool = True,
    ):
        self.rows = rows
        self.cols = cols
        self.edges = tuple(float(e) for e in edges)
        self.moving = float(moving)
        self.hellinger = bool(hellinger)
        if rows < 1 or cols < 1:
            raise UsageError(f"motion: grid {rows}x{cols} must be at least 1x1")
        if not self.edges or any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise UsageError(f"motion.edges={edges}: need increasing magnitude bin edges (pixels/frame)")
        if not self.moving > 0:
            raise UsageError(f"motion.moving={moving}: pixels/frame above which a pixel counts as moving, > 0")

    @property
    def channels(self) -> int:
        return len(self.edges) + 1 + DIRECTIONS

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        attrs = {
            "description": "per grid cell: fraction of pixels per flow magnitude bin, then per direction",
            "magnitude_edges": list(self.edges),
            "directions": ["right", "down", "left", "up"],
        }
        shape = (self.channels, self.rows, self.cols)
        return {"embedding": ArraySpec(shape, "float32", dims=("channel", "grid_y", "grid_x"), attrs=attrs)}

    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        self._clips = clips
        self._n_frames = info.n_frames
        self._table = clips.table(info.n_frames)
        self._per_frame: dict[int, np.ndarray] = {}  # only frames a clip not yet written samples
        self._seen = 0
        self._next_clip = 0

    def start_at(self, frame: int, clip: int) -> None:
        self._seen = frame
        self._next_clip = clip

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        edges = np.asarray(self.edges)
        flow = upstream["flow"]
        # stored flow is in pixels of the stored size: back to pixels per frame of the decoded frames
        pixels = to_pixels(flow.dense["data"], flow.params) / float(flow.params["store_scale"])
        for offset, field in enumerate(pixels):
            index = window.start + offset
            if index >= self._first_needed():  # frames before the next clip are never read again
                self._per_frame[index] = cell_statistics(field, (self.rows, self.cols), edges, self.moving)
        self._seen = window.stop
        return Output(dense={"embedding": self._ready(self._seen)})

    def _first_needed(self) -> int:
        """The first frame a clip not yet written samples (frames before it are never read again)."""
        if self._next_clip >= len(self._table):
            return self._n_frames
        return int(self._table[self._next_clip, 0])

    def _ready(self, available: int) -> np.ndarray:
        """Clips whose sampled frames have all been seen, in clip order; memory holds only the
        statistics of frames that clips still to come sample, however long the video."""
        done = []
        while self._next_clip < len(self._table):
            start = int(self._table[self._next_clip, 0])
            frames = self._clips.frame_indices(start, self._n_frames)
            if frames[-1] >= available:
                break
            fractions = np.mean([self._per_frame[i] for i in frames], axis=0)
            done.append(np.sqrt(fractions) if self.hellinger else fractions)
            self._next_clip += 1
        first = self._first_needed()
        for index in [i for i in self._per_frame if i < first]:
            del self._per_frame[index]
        return np.stack(done) if done else np.zeros((0, self.channels, self.rows, self.cols), np.float32)

    def finish(self) -> Output | None:
        rest = self._ready(self._seen)
        self._per_frame = {}
        return Output(dense={"embedding": rest}) if len(rest) else None
