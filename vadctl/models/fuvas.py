"""FUVAS: low-rank (PCA) reconstruction of clip features (anomalib's FUVAS / DFM on video clips).

Clip features (X3D `blocks.4` when extracted; any clip-level feature otherwise, e.g. the
weight-free `motion` grid; or, named with `feature`, a frame-level embedding such as `appearance`,
averaged over each clip's frames of the video's clip table) are flattened; PCA keeps `pca_level`
of their variance; a clip's score is its squared reconstruction error, spread to the frames the
clip covers. When the feature keeps
space (channels × rows × cols, or channels × time × rows × cols), the error summed over channels
(and time) is a map over cells; cells above μ+3σ of held-out cell errors become regions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import GroupKFold

from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import Capabilities, VadModel, frame_size, pick_feature
from vadctl.models.pca_state import pca_arrays, pca_from_arrays, squared_errors
from vadctl.models.registry import register
from vadctl.models.scores import RegionScores, VideoScores, temporal_smooth
from vadctl.models.state_checks import StateShapes, finite_number
from vadctl.store import FeatureStore

PREFERRED = ("x3d", "motion")


def clip_frame_scores(clips: np.ndarray, clip_scores: np.ndarray, n_frames: int) -> np.ndarray:
    """Each frame gets the mean score of the clips covering it (the nearest clip if none does)."""
    total, count = np.zeros(n_frames), np.zeros(n_frames)
    for (start, stop), score in zip(clips, clip_scores, strict=True):
        total[start:stop] += score
        count[start:stop] += 1
    covered = count > 0
    out = np.divide(total, count, out=np.zeros(n_frames), where=covered)
    if not covered.all() and covered.any():
        centres = clips.mean(axis=1)
        for frame in np.flatnonzero(~covered):
            out[frame] = clip_scores[np.argmin(np.abs(centres - frame))]
    return out


@register
class Fuvas(VadModel):
    name = "fuvas"
    summary = "FUVAS: PCA reconstruction error of clip features, with spatial error maps"
    needs = (
        "a clip-level feature: x3d when extracted, else motion (weight-free), else any clip-level entry; "
        "or a frame embedding named with -p feature=appearance (averaged per clip)"
    )
    capabilities = Capabilities(crossfit=True)

    def __init__(
        self,
        pca_level: float = 0.98,
        feature: str = "auto",
        smoothing_sigma: float = 0.0,
        n_folds: int = 10,
        region_sigma: float = 3.0,
    ):
        self.pca_level = pca_level
        self.feature = feature
        self.smoothing_sigma = smoothing_sigma
        self.n_folds = n_folds
        self.region_sigma = region_sigma

    def select_features(self, store: FeatureStore, split: str) -> dict[str, FeatureSpec]:
        if self.feature != "auto":
            spec = pick_feature(store, split, self.feature, "clip-level", self.name)
        else:
            clip_level = {s.name: s for s, _ in store.specs(split).values() if s.axis == "clip"}
            name = next((n for n in PREFERRED if n in clip_level), next(iter(sorted(clip_level)), None))
            if name is None:
                raise FeatureError(
                    f"fuvas needs a clip-level feature and split {split!r} of {store.path} has none; "
                    "run `vadctl extract … --features motion` (or x3d with weights)"
                )
            spec = pick_feature(store, split, name, "clip-level", self.name)
        self.features_ = {"clips": spec}
        return self.features_

    def _load(self, store: FeatureStore, split: str, video_id: str):
        record = store.video(split, video_id)
        entry = store.entry(record, self.features_["clips"])
        if "embedding" not in entry.array_names:
            raise FeatureError(f"fuvas needs a feature with an embedding per clip or frame; {entry.spec.key} has none")
        values = entry["embedding"].astype(np.float32)
        if entry.spec.axis == "clip":
            return record, entry.clips(), values
        if entry.offsets is not None or values.ndim != 2:
            raise FeatureError(f"fuvas: {entry.spec.key} is not one vector per frame; it cannot make clip features")
        clips = store.clip_table(record)
        return record, clips, np.stack([values[start:stop].mean(axis=0) for start, stop in clips])

    def _errors(self, pca: PCA, flat: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        """(clip errors, per-cell error maps or None): squared reconstruction error."""
        squared = squared_errors(pca, flat)
        if len(shape) < 3:
            return squared.sum(axis=1), None
        maps = squared.reshape(len(flat), *shape)
        maps = maps.sum(axis=tuple(range(1, maps.ndim - 2)))  # over channels (and time) → (n, rows, cols)
        return maps.reshape(len(flat), -1).sum(axis=1), maps

    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Fuvas:
        if not 0 < self.pca_level <= 1 and not (self.pca_level >= 1 and float(self.pca_level).is_integer()):
            raise UsageError(f"fuvas: pca_level={self.pca_level}: a variance ratio in (0, 1] or a component count")
        loaded = [self._load(store, split, v) for v in videos]
        shape = loaded[0][2].shape[1:]
        flat = np.concatenate([values.reshape(len(values), -1) for _, _, values in loaded])
        groups = np.concatenate([np.full(len(values), i) for i, (_, _, values) in enumerate(loaded)])
        self.shape_ = tuple(int(s) for s in shape)
        self.pca_ = self._pca(flat)
        heldout = np.empty(len(flat))
        heldout_maps = np.empty((len(flat), *shape[-2:])) if len(shape) >= 3 else None
        n_groups = len(loaded)
        if n_groups < 2:
            raise UsageError("fuvas: needs at least two training videos (for held-out calibration)")
        for fit_rows, held_rows in GroupKFold(n_splits=min(self.n_folds, n_groups)).split(flat, groups=groups):
            errors, maps = self._errors(self._pca(flat[fit_rows]), flat[held_rows], self.shape_)
            heldout[held_rows] = errors
            if heldout_maps is not None:
                heldout_maps[held_rows] = maps
        if heldout_maps is not None:
            cells = heldout_maps.reshape(-1)
            self.cell_threshold_ = float(cells.mean() + self.region_sigma * cells.std())
        else:
            self.cell_threshold_ = None
        self.heldout_ = []
        start = 0
        for record, clips, values in loaded:
            stop = start + len(values)
            scores = clip_frame_scores(clips, heldout[start:stop], record.n_frames)
            self.heldout_.append(VideoScores(record.video_id, temporal_smooth(scores, self.smoothing_sigma)))
            start = stop
        return self

    def _pca(self, flat: np.ndarray) -> PCA:
        level = self.pca_level if self.pca_level < 1 else min(int(self.pca_level), *flat.shape)
        return PCA(n_components=level, svd_solver="full").fit(flat)

    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        self._check_fitted()
        for video_id in videos:
            record, clips, values = self._load(store, split, video_id)
            if values.shape[1:] != self.shape_:
                raise FeatureError(
                    f"video {video_id}: clip features of shape {values.shape[1:]}, model has {self.shape_}"
                )
            errors, maps = self._errors(self.pca_, values.reshape(len(values), -1), self.shape_)
            scores = temporal_smooth(clip_frame_scores(clips, errors, record.n_frames), self.smoothing_sigma)
            regions = self._regions(record, clips, maps) if maps is not None and self.cell_threshold_ else None
            yield VideoScores(video_id, scores, regions)

    def _regions(self, record, clips: np.ndarray, maps: np.ndarray) -> RegionScores:
        """Cells above the held-out cell threshold, as boxes on the frames nearest each clip's centre."""
        width, height = frame_size(record, self.features_["clips"])
        rows, cols = maps.shape[1:]
        sx, sy = record.width / width, record.height / height
        centres = clips.mean(axis=1)
        nearest = np.argmin(np.abs(centres[None, :] - np.arange(record.n_frames)[:, None]), axis=1)
        frames, boxes, values = [], [], []
        for frame, clip in enumerate(nearest):
            for r, c in zip(*np.nonzero(maps[clip] > self.cell_threshold_), strict=True):
                frames.append(frame)
                boxes.append(
                    [
                        c * width / cols * sx,
                        r * height / rows * sy,
                        (c + 1) * width / cols * sx,
                        (r + 1) * height / rows * sy,
                    ]
                )
                values.append(maps[clip, r, c])
        if not frames:
            return RegionScores.empty()
        return RegionScores(np.asarray(frames), np.asarray(boxes, np.float32), np.asarray(values))

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        pca = self.pca_
        arrays = pca_arrays(pca)
        meta = {"shape": list(self.shape_), "cell_threshold": self.cell_threshold_, "n_components": pca.n_components_}
        return arrays, meta

    def check_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        shape, n_components = meta.get("shape"), meta.get("n_components")
        if not isinstance(shape, list) or not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"clip feature shape {shape!r}: expected a list of positive sizes")
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components {n_components!r}: expected a whole number ≥ 1")
        if meta.get("cell_threshold") is not None:
            finite_number(meta["cell_threshold"], "cell_threshold")
        shapes = StateShapes(arrays, {"k": n_components, "F": int(np.prod(shape))})
        shapes.expect("components", ("k", "F"))
        shapes.expect("mean", ("F",))
        if (shapes.expect("explained_variance", ("k",)) < 0).any():
            raise ValueError("explained_variance holds negative values")
        shapes.nothing_else()

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self.pca_ = pca_from_arrays(arrays, meta["n_components"])
        self.shape_ = tuple(meta["shape"])
        threshold = meta["cell_threshold"]
        self.cell_threshold_ = None if threshold is None else float(threshold)
