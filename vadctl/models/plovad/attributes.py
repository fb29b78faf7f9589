"""Unsupervised normality of every (snippet, cell): the inputs the weak labels re-weight.

Two attribute scores, each learned on normal training videos only:

- `pca`: FUVAS's idea per cell: the motion grid of a snippet reconstructed by a PCA of normal
  grids; a cell's squared reconstruction error, summed over its channels.
- `velocity`: AI-VAD's velocity attribute: a GMM over the velocity of normal regions; a cell
  takes the highest negative log-likelihood of the regions that overlap it during the snippet
  (cells without regions take the 1st percentile of normal values: as normal as it gets).

Normal training videos get maps from models fitted without their own video (group k-fold, as
AI-VAD and FUVAS cross-fit), so what the weak labels see of normal videos is what new normal
videos will look like, not the lower scores of a model's own training data. Each attribute is put
on one scale with held-out normal statistics: (x − q50) / (q99 − q50), then a signed log, so 1
means "as unusual as the top 1 % of normal cells" and rare extremes do not dominate training.

`contrast="video"` subtracts, per attribute, the video's own median over its active cells (cells
a region overlaps; without regions, cells whose reconstruction error is above the normal median):
what stays is how a cell stands out from the other moving things of the
same recording. A recording that is more crowded, lit differently or filmed from a shifted camera
moves all its cells together; an anomaly moves few. This is the within-video contrast that keeps
the weak labels from learning "this recording looks like the anomalous ones".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold

from vadctl.errors import UsageError
from vadctl.models.density import GMMDensity
from vadctl.models.pca_state import pca_arrays, pca_from_arrays, squared_errors
from vadctl.models.plovad.snippets import VideoInputs

CONTRASTS = ("none", "video")
VELOCITY_POSITIONS = ("none", "y")
ACTIVE_QUANTILE = 50.0  # the within-video baseline: the median active cell


def _flat(grids: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([g.reshape(len(g), -1) for g in grids]).astype(np.float64)


def pca_errors(pca: PCA, grid: np.ndarray) -> np.ndarray:
    """(T, R, W) squared reconstruction error per cell of (T, C, R, W) grids."""
    return squared_errors(pca, grid.reshape(len(grid), -1)).reshape(grid.shape).sum(axis=1)


def region_cells(video: VideoInputs, scores: np.ndarray, fill: float | None, shape: tuple[int, int]) -> np.ndarray:
    """(T, R, W): per snippet and cell, the highest score of the regions overlapping the cell
    (NaN where no region does, before `fill`)."""
    rows, cols = shape
    out = np.full((video.n_snippets, rows, cols), -np.inf)
    regions = video.regions
    if regions is not None and len(regions.frame):
        c0 = np.clip(np.floor(regions.boxes[:, 0] * cols).astype(int), 0, cols - 1)
        r0 = np.clip(np.floor(regions.boxes[:, 1] * rows).astype(int), 0, rows - 1)
        c1 = np.clip(np.ceil(regions.boxes[:, 2] * cols).astype(int), c0 + 1, cols)
        r1 = np.clip(np.ceil(regions.boxes[:, 3] * rows).astype(int), r0 + 1, rows)
        order = np.argsort(regions.frame, kind="stable")
        frames = regions.frame[order]
        for t, (start, stop) in enumerate(video.clips):
            a, b = np.searchsorted(frames, [start, stop])
            for i in order[a:b]:
                cell = out[t, r0[i] : r1[i], c0[i] : c1[i]]
                np.maximum(cell, scores[i], out=cell)
    out[~np.isfinite(out)] = np.nan if fill is None else fill
    return out


def activity(video: VideoInputs, shape: tuple[int, int]) -> float:
    """How busy a video is: the mean share of cells a region overlaps per snippet (without regions,
    the share of cells whose grid differs from the video's quietest state). A recording-wide trait
    (crowding), used to match normal videos to anomalous ones, never as an input."""
    if video.regions is not None:
        return float(np.isfinite(region_cells(video, np.ones(len(video.regions.frame)), None, shape)).mean())
    deviation = np.abs(video.grid - video.grid.min(axis=0, keepdims=True)).sum(axis=1)
    return float((deviation > 0.05).mean())


class CellAttributes:
    """Per-cell normality maps (see module docstring); scikit-learn conventions."""

    def __init__(
        self,
        pca_level: float = 0.98,
        velocity: bool = True,
        velocity_components: int = 2,
        contrast: str = "video",
        n_folds: int = 10,
        random_state: int = 0,
        velocity_position: str = "none",
    ):
        self.pca_level = pca_level
        self.velocity = velocity
        self.velocity_components = velocity_components
        self.contrast = contrast
        self.n_folds = n_folds
        self.random_state = random_state
        self.velocity_position = velocity_position

    @property
    def names(self) -> list[str]:
        return ["pca", "velocity"] if self.velocity else ["pca"]

    def _pca(self, flat: np.ndarray) -> PCA:
        level = self.pca_level if self.pca_level < 1 else min(int(self.pca_level), *flat.shape)
        return PCA(n_components=level, svd_solver="full", random_state=self.random_state).fit(flat)

    def _gmm(self, features: np.ndarray) -> GMMDensity:
        return GMMDensity(self.velocity_components, random_state=self.random_state).fit(features)

    def fit(self, normal: Sequence[VideoInputs]) -> list[np.ndarray]:
        """Learn from normal videos; returns each one's maps from models that did not see it."""
        if self.contrast not in CONTRASTS:
            raise UsageError(f"plovad: contrast={self.contrast!r}: use {' or '.join(CONTRASTS)}")
        if self.velocity_position not in VELOCITY_POSITIONS:
            raise UsageError(
                f"plovad: velocity_position={self.velocity_position!r}: use {' or '.join(VELOCITY_POSITIONS)}"
            )
        if len(normal) < 2:
            raise UsageError("plovad: needs at least two normal training videos (held-out attribute scores)")
        self.shape_ = tuple(int(s) for s in normal[0].grid.shape[2:])
        folds = list(KFold(n_splits=min(self.n_folds, len(normal))).split(np.arange(len(normal))))
        held_pca: list[np.ndarray | None] = [None] * len(normal)
        held_velocity: list[np.ndarray | None] = [None] * len(normal)
        for fit_idx, held_idx in folds:
            pca = self._pca(_flat([normal[i].grid for i in fit_idx]))
            gmm = self._gmm(self._velocity_rows([normal[i] for i in fit_idx])) if self.velocity else None
            for i in held_idx:
                held_pca[i] = pca_errors(pca, normal[i].grid)
                if gmm is not None:
                    held_velocity[i] = gmm.score(self._velocity(normal[i]))
        self.pca_ = self._pca(_flat([v.grid for v in normal]))
        self.gmm_ = self._gmm(self._velocity_rows(normal)) if self.velocity else None
        pca_values = np.concatenate([m.ravel() for m in held_pca])
        self.scale_: dict[str, list[float]] = {"pca": self._quantiles(pca_values)}
        if self.velocity:
            values = np.concatenate([s for s in held_velocity if len(s)])
            self.fill_ = float(np.percentile(values, 1))
            self.scale_["velocity"] = self._quantiles(values)
        return [self._normalize(*self._raw(v, held_pca[i], held_velocity[i])) for i, v in enumerate(normal)]

    def _velocity(self, video: VideoInputs) -> np.ndarray:
        """A video's region rows for the velocity GMM: the speed bins, and with `velocity_position="y"`
        the box centre's height in the frame (0 top, 1 bottom) beside them, so the GMM learns which
        speeds are normal where (near and far from a slanted camera: AI-VAD's default)."""
        regions = video.regions
        if self.velocity_position == "none":
            return regions.velocity
        y = (regions.boxes[:, 1] + regions.boxes[:, 3]).astype(np.float64) / 2
        return np.concatenate([regions.velocity, y[:, None]], axis=1)

    def _velocity_rows(self, videos: Sequence[VideoInputs]) -> np.ndarray:
        rows = [self._velocity(v) for v in videos if v.regions is not None and len(v.regions.frame)]
        if not rows:
            raise UsageError("plovad: the normal training videos have no regions for the velocity attribute")
        return np.concatenate(rows)

    @staticmethod
    def _quantiles(values: np.ndarray) -> list[float]:
        q50, q99 = np.percentile(values, [50, 99])
        return [float(q50), float(max(q99 - q50, 1e-9))]

    def _raw(self, video: VideoInputs, pca: np.ndarray, velocity: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """((T, A, R, W) raw attribute maps, (T, R, W) active cells)."""
        maps = [pca]
        active = pca > self.scale_["pca"][0]
        if self.velocity:
            scores = velocity if velocity is not None else np.zeros(0)
            cells = region_cells(video, scores, None, self.shape_)
            active = np.isfinite(cells)
            maps.append(np.where(active, cells, self.fill_))
        return np.stack(maps, axis=1), active

    def _normalize(self, raw: np.ndarray, active: np.ndarray) -> np.ndarray:
        out = np.empty(raw.shape, np.float32)
        for a, name in enumerate(self.names):
            middle, spread = self.scale_[name]
            z = (raw[:, a] - middle) / spread
            out[:, a] = np.sign(z) * np.log1p(np.abs(z))
        if self.contrast == "video":
            for a in range(out.shape[1]):
                values = out[:, a][active] if active.any() else out[:, a].ravel()
                out[:, a] -= np.percentile(values, ACTIVE_QUANTILE)
        return out

    def maps(self, video: VideoInputs) -> np.ndarray:
        """(T, A, R, W) normalised attribute maps of a video the models did not see in training."""
        if video.grid.shape[2:] != self.shape_:
            raise UsageError(f"plovad: grid of {video.grid.shape[2:]} cells, fitted on {self.shape_}")
        pca = pca_errors(self.pca_, video.grid)
        velocity = None
        if self.velocity:
            if video.regions is None:
                raise UsageError(f"plovad: video {video.video_id} has no regions for the velocity attribute")
            velocity = self.gmm_.score(self._velocity(video))
        return self._normalize(*self._raw(video, pca, velocity))

    # ----- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        pca = self.pca_
        arrays = {
            **pca_arrays(pca, "pca."),
        }
        if self.gmm_ is not None:
            arrays |= {f"gmm.{k}": v for k, v in self.gmm_.state().items()}
        meta = {
            "shape": list(self.shape_),
            "scale": self.scale_,
            "fill": getattr(self, "fill_", None),
            "n_components": int(pca.n_components_),
        }
        return arrays, meta

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> CellAttributes:
        self.pca_ = pca_from_arrays(arrays, meta["n_components"], "pca.")
        self.shape_ = tuple(meta["shape"])
        self.scale_ = {k: list(v) for k, v in meta["scale"].items()}
        self.gmm_ = None
        if self.velocity:
            gmm = {k.removeprefix("gmm."): v for k, v in arrays.items() if k.startswith("gmm.")}
            self.gmm_ = GMMDensity(self.velocity_components).load_state(gmm)
            self.fill_ = float(meta["fill"])
        return self
