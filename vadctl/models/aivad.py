"""AI-VAD: attribute-based anomaly detection on regions (Reiss & Hoshen, arXiv:2212.00789).

Each region (foreground box or detection) is described by attributes: velocity (flow direction
histogram), pose (keypoints) and deep appearance (CLIP embedding). Normal attributes are modelled
by density estimators: a GMM for velocity, kNN distance for pose and deep features. A region's
score is the sum over attribute types of its calibrated scores; a frame's score is the sum over
types of the highest region score of that type in the frame; scores are smoothed in time within
each video. Region extraction parameters (area, overlap, detector) are the `regions` featurizer's,
chosen at extract time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import Capabilities, VadModel, _newest_version, pick_feature, source_scale
from vadctl.models.density import GMMDensity, KNNDistance, PCAError, crossfit_scores
from vadctl.models.fuvas import clip_frame_scores
from vadctl.models.registry import register
from vadctl.models.scores import RegionScores, VideoScores, temporal_smooth
from vadctl.models.state_checks import MIN_SCALE, StateShapes, finite_number
from vadctl.models.velocity_bins import check_layout, merge_bins
from vadctl.models.velocity_form import COMPONENT_CHOICES, choose_components, choose_position
from vadctl.store import FeatureStore

TYPES = ("velocity", "pose", "deep")  # region attributes
FRAME_TYPES = ("motion",)  # clip-level attributes, spread to the clip's frames
VELOCITY_SCALES = ("pixels", "box_height")
VELOCITY_POSITIONS = ("none", "y", "xy", "auto")  # "auto": chosen per camera (`velocity_form`)
FITTED_POSITIONS = ("none", "y", "xy")
POSITION_COMPONENTS = 2  # the form is chosen with the count fixed before "auto" components existed
DEEP_FEATURES = ("clip_regions", "appearance_regions", "hog_regions")  # "auto": the first one extracted


@dataclass
class RegionData:
    """All regions of some videos, flattened: per-row video index, frame, box and attributes."""

    video_ids: list[str]
    n_frames: np.ndarray
    video: np.ndarray
    frame: np.ndarray
    boxes: np.ndarray  # source-video pixels
    attributes: dict[str, np.ndarray]  # type → (n_rows, d)
    valid: dict[str, np.ndarray]  # type → (n_rows,) bool: rows that have this attribute
    sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # per video: source width, height


@register
class AiVad(VadModel):
    """AI-VAD with the parameters of anomalib's API (see `vadctl models aivad`)."""

    name = "aivad"
    summary = "AI-VAD: velocity GMM + pose/deep kNN on regions, leave-video-out calibration"
    needs = (
        "velocity (required); pose and clip_regions, appearance_regions or hog_regions when extracted "
        "(AI-VAD's pose and deep features); motion when extracted (a frame-level attribute)"
    )
    capabilities = Capabilities(crossfit=True)
    # Chosen on Ped1 (benchmarks/choices.md): velocity together with where the box is (its
    # vertical position joins the GMM) where the camera's training videos say position predicts
    # speed ("auto", fourth pass), σ = 6 smoothing, the motion attribute when extracted.
    # Files written before these parameters existed mean what they meant then:
    file_defaults: ClassVar[dict[str, Any]] = {
        "velocity_scale": "pixels",
        "velocity_position": "none",
        "use_motion_features": False,
    }

    def __init__(
        self,
        n_velocity_bins: int = 1,
        use_velocity_features: bool = True,
        use_pose_features: bool = True,
        use_deep_features: bool = True,
        n_components_velocity: int | str = 2,
        n_neighbors_pose: int = 1,
        n_neighbors_deep: int = 1,
        calibration_percentile: float = 99.0,
        smoothing_sigma: float = 6.0,
        n_folds: int = 10,
        velocity_feature: str = "velocity",
        pose_feature: str = "pose",
        deep_feature: str = "auto",
        velocity_scale: str = "pixels",
        velocity_position: str = "auto",
        use_motion_features: bool = True,
        motion_feature: str = "motion",
        pca_level_motion: float = 0.98,
        random_state: int = 0,
    ):
        self.n_velocity_bins = n_velocity_bins
        self.use_velocity_features = use_velocity_features
        self.use_pose_features = use_pose_features
        self.use_deep_features = use_deep_features
        self.n_components_velocity = n_components_velocity
        self.n_neighbors_pose = n_neighbors_pose
        self.n_neighbors_deep = n_neighbors_deep
        self.calibration_percentile = calibration_percentile
        self.smoothing_sigma = smoothing_sigma
        self.n_folds = n_folds
        self.velocity_feature = velocity_feature
        self.pose_feature = pose_feature
        self.deep_feature = deep_feature
        self.velocity_scale = velocity_scale
        self.velocity_position = velocity_position
        self.use_motion_features = use_motion_features
        self.motion_feature = motion_feature
        self.pca_level_motion = pca_level_motion
        self.random_state = random_state

    # ----- features ---------------------------------------------------------------------------
    def _wanted(self) -> dict[str, str]:
        wanted = {
            "velocity": (self.use_velocity_features, self.velocity_feature),
            "pose": (self.use_pose_features, self.pose_feature),
            "deep": (self.use_deep_features, self.deep_feature),
        }
        return {kind: ref for kind, (use, ref) in wanted.items() if use}

    def _candidates(self, store: FeatureStore, split: str, kind: str, ref: str) -> list[FeatureSpec]:
        """Committed entries a role could use (`deep_feature="auto"`: CLIP crops, else ImageNet ones)."""
        refs = DEEP_FEATURES if kind == "deep" and ref == "auto" else (ref,)
        for each in refs:
            found = store.candidates(each, split)
            if found:
                return _newest_version(found)
        return []

    def select_features(self, store: FeatureStore, split: str) -> dict[str, FeatureSpec]:
        """One entry per attribute type, all computed on the same `regions` entry.

        A store can hold attributes on several region entries (foreground boxes, detector boxes):
        the regions that carry velocity and the most other attribute types win; a tie is an error
        that names the entries, so the user can pick one with NAME@HASH.
        """
        wanted = self._wanted()
        if not wanted:
            raise UsageError("aivad: all feature types are switched off (use_*_features)")
        by_regions: dict[str, dict[str, list[FeatureSpec]]] = {}
        for kind, ref in wanted.items():
            for spec in self._candidates(store, split, kind, ref):
                regions = spec.params.get("upstream", {}).get("regions")
                if regions is not None:
                    by_regions.setdefault(regions, {}).setdefault(kind, []).append(spec)
        if "velocity" in wanted:
            if not any("velocity" in kinds for kinds in by_regions.values()):
                pick_feature(store, split, wanted["velocity"], f"velocity ({wanted['velocity']})", self.name)
            by_regions = {r: kinds for r, kinds in by_regions.items() if "velocity" in kinds}
        if not by_regions:
            names = ", ".join(wanted.values())
            raise FeatureError(f"aivad: split {split!r} of {store.path} has none of its features ({names})")
        most = max(len(kinds) for kinds in by_regions.values())
        best = [r for r, kinds in by_regions.items() if len(kinds) == most]
        if len(best) > 1:
            keys = ", ".join(sorted(spec.key for r in best for specs in by_regions[r].values() for spec in specs))
            raise FeatureError(
                f"aivad: the features {keys} were computed on {len(best)} different regions entries; "
                "name the ones to use, e.g. -p velocity_feature=velocity@HASH"
            )
        chosen: dict[str, FeatureSpec] = {}
        for kind, specs in by_regions[best[0]].items():
            if len(specs) > 1:
                keys = ", ".join(sorted(spec.key for spec in specs))
                raise FeatureError(f"aivad: {kind} feature is ambiguous: {keys}; name one as NAME@HASH")
            chosen[kind] = specs[0]
        chosen = {kind: chosen[kind] for kind in TYPES if kind in chosen}
        chosen["regions"] = pick_feature(store, split, f"regions@{best[0]}", "regions", self.name)
        if self.use_motion_features and (self.motion_feature != "motion" or store.candidates("motion", split)):
            motion = pick_feature(store, split, self.motion_feature, "clip-level motion", self.name)
            if motion.axis != "clip":
                raise FeatureError(f"aivad: motion_feature {motion.key} is not clip-level (one row per clip)")
            chosen["motion"] = motion
        self.features_ = chosen
        return chosen

    @property
    def types_(self) -> list[str]:
        """Region attribute types in use."""
        return [kind for kind in TYPES if kind in self.features_]

    @property
    def frame_types_(self) -> list[str]:
        """Clip-level attribute types in use (their scores are added to every frame of the clip)."""
        return [kind for kind in FRAME_TYPES if kind in self.features_]

    def _motion(self, store: FeatureStore, split: str, video_id: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(clip table, one flat motion vector per clip, frames) of a video."""
        record = store.video(split, video_id)
        entry = store.entry(record, self.features_["motion"])
        if "embedding" not in entry.array_names:
            raise FeatureError(f"aivad: {entry.spec.key} has no embedding per clip")
        values = entry["embedding"].astype(np.float32)
        return entry.clips(), values.reshape(len(values), -1), record.n_frames

    def _load(self, store: FeatureStore, split: str, videos: Sequence[str]) -> RegionData:
        rows: dict[str, list] = {key: [] for key in ("video", "frame", "boxes")}
        attributes: dict[str, list] = {kind: [] for kind in self.types_}
        valid: dict[str, list] = {kind: [] for kind in self.types_}
        n_frames, ids, sizes = [], [], []
        for index, video_id in enumerate(videos):
            record = store.video(split, video_id)
            if record is None:
                raise FeatureError(f"split {split!r} of {store.path} has no video {video_id!r}")
            regions = store.entry(record, self.features_["regions"])
            offsets = regions.offsets
            count = int(offsets[-1])
            ids.append(video_id)
            n_frames.append(record.n_frames)
            sizes.append((record.width, record.height))
            rows["video"].append(np.full(count, index, np.int64))
            rows["frame"].append(regions.row_index())
            rows["boxes"].append(regions["boxes"] * source_scale(record, self.features_["regions"]))
            for kind in self.types_:
                entry = store.entry(record, self.features_[kind])
                if not np.array_equal(entry.offsets, offsets):
                    raise FeatureError(f"video {video_id}: {entry.spec.key} rows do not align with its regions")
                values, ok = self._attribute(kind, entry, count)
                attributes[kind].append(values)
                valid[kind].append(ok)
        cat = np.concatenate
        data = RegionData(
            ids,
            np.asarray(n_frames, np.int64),
            cat(rows["video"]) if ids else np.zeros(0, np.int64),
            cat(rows["frame"]) if ids else np.zeros(0, np.int64),
            cat(rows["boxes"]) if ids else np.zeros((0, 4), np.float32),
            {k: cat(v) for k, v in attributes.items()},
            {k: cat(v) for k, v in valid.items()},
            np.asarray(sizes, np.float64).reshape(-1, 2),
        )
        if "velocity" in data.attributes:
            data.attributes["velocity"] = self._with_geometry(data)
        return data

    def _with_geometry(self, data: RegionData) -> np.ndarray:
        """The velocity attribute in the scene's geometry: speeds divided by the box's height when
        `velocity_scale="box_height"` (a person near a slanted camera moves more pixels per frame
        than one far away: AI-VAD's normalisation for ShanghaiTech), and the box centre's position in
        the frame (0..1) appended when `velocity_position` is "y" or "xy", so the GMM learns which
        speeds are normal where."""
        values = np.asarray(data.attributes["velocity"], np.float64)
        boxes = np.asarray(data.boxes, np.float64)
        if self.velocity_scale == "box_height":
            values = values / np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)[:, None]
        position = self._position()
        if position == "none":
            return values
        size = data.sizes[data.video] if len(data.video) else np.zeros((0, 2))
        y = (boxes[:, 1] + boxes[:, 3]) / 2 / np.maximum(size[:, 1], 1.0)
        columns = [values, y[:, None]]
        if position == "xy":
            x = (boxes[:, 0] + boxes[:, 2]) / 2 / np.maximum(size[:, 0], 1.0)
            columns.append(x[:, None])
        return np.concatenate(columns, axis=1)

    def _position(self) -> str:
        """The velocity form in use: the one chosen at fit (`velocity_position_`), else the
        parameter; "auto" loads y too before the fit chooses (it may then drop the column)."""
        chosen = getattr(self, "velocity_position_", None)
        if chosen is not None:
            return chosen
        return "y" if self.velocity_position == "auto" else self.velocity_position

    @property
    def velocity_dims_(self) -> int:
        """Columns of the velocity attribute: direction bins, then the box position's."""
        return self.n_velocity_bins + {"none": 0, "y": 1, "xy": 2}[self._position()]

    def _choose_position(self, data: RegionData) -> None:
        """`velocity_position="auto"`: keep the box's vertical position in the velocity GMM only
        where this camera's training videos say it predicts held-out speed (`velocity_form`)."""
        self.velocity_position_gain_: float | None = None
        if self.velocity_position != "auto" or "velocity" not in data.attributes:
            self.velocity_position_ = self._position()
            return
        rows = data.valid["velocity"]
        values = data.attributes["velocity"]
        try:
            chosen, gain = choose_position(
                values[rows],
                data.video[rows],
                values.shape[1] - 1,
                self._components() if self.n_components_velocity != "auto" else POSITION_COMPONENTS,
                self.n_folds,
                self.random_state,
            )
        except ValueError as error:
            raise UsageError(f"aivad: cannot choose the velocity form: {error}") from None
        self.velocity_position_, self.velocity_position_gain_ = chosen, gain
        if chosen == "none":
            data.attributes["velocity"] = values[:, :-1]

    def _components(self) -> int:
        """The velocity GMM's component count: the one chosen at fit (`n_components_velocity_`),
        else the parameter ("auto" before the fit: the largest it may choose)."""
        chosen = getattr(self, "n_components_velocity_", None)
        if chosen is not None:
            return chosen
        return max(COMPONENT_CHOICES) if self.n_components_velocity == "auto" else int(self.n_components_velocity)

    def _choose_components(self, data: RegionData) -> dict[str, np.ndarray]:
        """`n_components_velocity="auto"`: the smallest count whose held-out likelihood on this
        camera's training videos is near the best (`velocity_form.choose_components`). Returns
        the chosen count's held-out scores by type ({} otherwise): the calibration's own."""
        self.n_components_velocity_loglik_: dict[int, float] | None = None
        if self.n_components_velocity != "auto" or "velocity" not in data.attributes:
            self.n_components_velocity_ = self._components()
            return {}
        rows = data.valid["velocity"]
        values = data.attributes["velocity"]
        try:
            chosen, likelihood, scores = choose_components(
                values[rows], data.video[rows], self.n_folds, self.random_state
            )
        except ValueError as error:
            raise UsageError(f"aivad: cannot choose the velocity component count: {error}") from None
        self.n_components_velocity_, self.n_components_velocity_loglik_ = chosen, likelihood
        return {"velocity": scores}

    def _attribute(self, kind: str, entry, count: int) -> tuple[np.ndarray, np.ndarray]:
        if kind == "velocity":
            check_layout(entry.attrs("magnitude_sum"), entry.spec.key)
            values = merge_bins(entry["magnitude_sum"], entry["count"], self.n_velocity_bins)
            return values, np.ones(count, bool)
        if kind == "pose":
            keypoints = entry["keypoints"].reshape(count, -1).astype(np.float32)
            found = entry["found"].astype(bool) if "found" in entry.array_names else np.ones(count, bool)
            return keypoints, found
        return entry["embedding"].astype(np.float32), np.ones(count, bool)

    def _estimator(self, kind: str) -> GMMDensity | KNNDistance | PCAError:
        if kind == "motion":
            return PCAError(self.pca_level_motion)
        if kind == "velocity":
            return GMMDensity(self._components(), random_state=self.random_state)
        return KNNDistance(self.n_neighbors_pose if kind == "pose" else self.n_neighbors_deep)

    # ----- fit / score ------------------------------------------------------------------------
    def _check_params(self) -> None:
        if not 0 < self.calibration_percentile <= 100:
            raise UsageError(f"aivad: calibration_percentile={self.calibration_percentile} must be in (0, 100]")
        if self.velocity_scale not in VELOCITY_SCALES:
            raise UsageError(f"aivad: velocity_scale={self.velocity_scale!r}: use {' or '.join(VELOCITY_SCALES)}")
        if self.velocity_position not in VELOCITY_POSITIONS:
            raise UsageError(
                f"aivad: velocity_position={self.velocity_position!r}: use {', '.join(VELOCITY_POSITIONS)}"
            )
        count = self.n_components_velocity
        if count != "auto" and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise UsageError(f"aivad: n_components_velocity={count!r}: use a whole number ≥ 1 or auto")

    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> AiVad:
        self._check_params()
        self.velocity_position_ = self.n_components_velocity_ = None  # a refit chooses again
        data = self._load(store, split, videos)
        if len(np.unique(data.video)) < 2:
            raise UsageError("aivad: needs regions from at least two training videos (for leave-video-out calibration)")
        self._choose_position(data)
        known = self._choose_components(data)
        self.estimators_: dict[str, GMMDensity | KNNDistance] = {}
        self.calibration_: dict[str, dict[str, float]] = {}
        heldout: dict[str, np.ndarray] = {}
        for kind in self.types_:
            rows = data.valid[kind]
            features, groups = data.attributes[kind][rows], data.video[rows]
            try:
                self.estimators_[kind] = self._estimator(kind).fit(features)
                raw = known.get(kind)
                if raw is None:
                    raw = crossfit_scores(features, groups, lambda kind=kind: self._estimator(kind), self.n_folds)
            except ValueError as error:
                raise UsageError(f"aivad: cannot fit {kind} features: {error}") from None
            low = float(raw.min())
            high = float(np.percentile(raw, self.calibration_percentile))
            self.calibration_[kind] = {"min": low, "scale": max(high - low, MIN_SCALE)}
            scores = np.full(len(rows), np.nan)
            scores[rows] = self._normalize(kind, raw)
            heldout[kind] = scores
            self.calibration_[kind]["normal"] = float(np.median(self._frame_maxima(data, kind, scores)))
        frame_level = self._fit_frame_types(store, split, data.video_ids)
        self.heldout_ = list(self._video_scores(data, heldout, frame_level))
        return self

    def _fit_frame_types(self, store: FeatureStore, split: str, videos: Sequence[str]) -> dict[str, np.ndarray]:
        """Fit the clip-level types; returns each video's held-out frame scores (summed over them)."""
        frame_level = {video: 0.0 for video in videos}
        for kind in self.frame_types_:
            loaded = [self._motion(store, split, video) for video in videos]
            flat = np.concatenate([values for _, values, _ in loaded])
            groups = np.concatenate([np.full(len(values), i) for i, (_, values, _) in enumerate(loaded)])
            try:
                self.estimators_[kind] = self._estimator(kind).fit(flat)
                raw = crossfit_scores(flat, groups, lambda kind=kind: self._estimator(kind), self.n_folds)
            except ValueError as error:
                raise UsageError(f"aivad: cannot fit {kind} features: {error}") from None
            low, high = float(raw.min()), float(np.percentile(raw, self.calibration_percentile))
            self.calibration_[kind] = {"min": low, "scale": max(high - low, MIN_SCALE)}
            normalized = self._normalize(kind, raw)
            per_video = {}
            for index, (video, (clips, _, n_frames)) in enumerate(zip(videos, loaded, strict=True)):
                per_video[video] = clip_frame_scores(clips, normalized[groups == index], n_frames)
            self.calibration_[kind]["normal"] = float(np.median(np.concatenate(list(per_video.values()))))
            frame_level = {video: frame_level[video] + per_video[video] for video in videos}
        return frame_level

    def _score_frame_types(self, store: FeatureStore, split: str, video_id: str) -> np.ndarray | float:
        total: np.ndarray | float = 0.0
        for kind in self.frame_types_:
            clips, values, n_frames = self._motion(store, split, video_id)
            errors = self._normalize(kind, self.estimators_[kind].score(values))
            total = total + clip_frame_scores(clips, errors, n_frames)
        return total

    def _normalize(self, kind: str, raw: np.ndarray) -> np.ndarray:
        cal = self.calibration_[kind]
        return (raw - cal["min"]) / cal["scale"]

    @staticmethod
    def _frame_maxima(data: RegionData, kind: str, scores: np.ndarray) -> np.ndarray:
        """Per (video, frame) that has rows of this type: the highest region score."""
        ok = data.valid[kind] & np.isfinite(scores)
        keys = data.video[ok] * (int(data.n_frames.max(initial=0)) + 1) + data.frame[ok]
        order = np.lexsort((-scores[ok], keys))
        first = np.ones(len(order), bool)
        first[1:] = keys[order][1:] != keys[order][:-1]
        return scores[ok][order][first]

    def _video_scores(
        self, data: RegionData, scores: Mapping[str, np.ndarray], frame_level: Mapping[str, Any] | None = None
    ) -> Iterator[VideoScores]:
        region_total = np.zeros(len(data.video))
        for kind in self.types_:
            normal = self.calibration_[kind]["normal"]
            region_total += np.where(np.isfinite(scores[kind]), scores[kind], normal)
        for index, video_id in enumerate(data.video_ids):
            n = int(data.n_frames[index])
            mine = data.video == index
            frame_scores = np.zeros(n)
            for kind in self.types_:
                per_frame = np.full(n, -np.inf)
                ok = mine & data.valid[kind] & np.isfinite(scores[kind])
                np.maximum.at(per_frame, data.frame[ok], scores[kind][ok])
                normal = self.calibration_[kind]["normal"]
                frame_scores += np.where(np.isfinite(per_frame), per_frame, normal)
            if frame_level is not None:
                frame_scores += frame_level.get(video_id, 0.0)
            regions = RegionScores(data.frame[mine], data.boxes[mine], region_total[mine])
            yield VideoScores(video_id, temporal_smooth(frame_scores, self.smoothing_sigma), regions)

    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        self._check_fitted()
        for video_id in videos:  # one video at a time: memory stays bounded on long test sets
            data = self._load(store, split, [video_id])
            scores = {}
            for kind in self.types_:
                raw = np.full(len(data.video), np.nan)
                rows = data.valid[kind]
                raw[rows] = self.estimators_[kind].score(data.attributes[kind][rows])
                scores[kind] = self._normalize(kind, raw)
            frame_level = {video_id: self._score_frame_types(store, split, video_id)}
            yield from self._video_scores(data, scores, frame_level)

    # ----- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {}
        for kind, estimator in self.estimators_.items():
            arrays |= {f"{kind}.{name}": value for name, value in estimator.state().items()}
        meta = {"calibration": self.calibration_, "types": self.types_ + self.frame_types_}
        meta["velocity_position"] = self._position()
        if getattr(self, "velocity_position_gain_", None) is not None:
            meta["velocity_position_gain"] = self.velocity_position_gain_
        meta["n_components_velocity"] = self._components()
        if getattr(self, "n_components_velocity_loglik_", None) is not None:
            meta["n_components_velocity_loglik"] = {str(k): v for k, v in self.n_components_velocity_loglik_.items()}
        return arrays, meta

    def check_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self._check_params()
        self.velocity_position_ = self._recorded_position(meta)
        self.n_components_velocity_ = self._recorded_components(meta)
        types = meta.get("types")
        known = TYPES + FRAME_TYPES
        if not isinstance(types, list) or not set(types) & set(TYPES) or not set(types) <= set(known):
            raise ValueError(f"feature types {types!r}: expected a list out of {', '.join(known)}, with a region type")
        calibration = meta.get("calibration")
        if not isinstance(calibration, Mapping) or set(calibration) != set(types):
            raise ValueError(f"calibration for {sorted(calibration or {})}, feature types {types}")
        for kind in types:
            cal = calibration[kind]
            finite_number(cal.get("min"), f"calibration {kind}.min")
            finite_number(cal.get("scale"), f"calibration {kind}.scale", positive=True, minimum=MIN_SCALE)
            finite_number(cal.get("normal"), f"calibration {kind}.normal")
        if meta.get("velocity_position_gain") is not None:
            finite_number(meta["velocity_position_gain"], "velocity_position_gain")
        for count, value in _loglik(meta).items():
            finite_number(value, f"n_components_velocity_loglik[{count}]")
        shapes = StateShapes(arrays, {"D_velocity": self.velocity_dims_})
        for kind in types:
            if kind == "motion":
                shapes.expect("motion.components", ("C_motion", "D_motion"))
                shapes.expect("motion.mean", ("D_motion",))
                shapes.expect("motion.explained_variance", ("C_motion",))
            elif kind == "velocity":
                weights = shapes.expect("velocity.weights", ("K",))
                shapes.expect("velocity.means", ("K", "D_velocity"))
                shapes.expect("velocity.covariances", ("K", "D_velocity", "D_velocity"))
                shapes.expect("velocity.precisions_cholesky", ("K", "D_velocity", "D_velocity"))
                if not 1 <= len(weights) <= self._components():
                    raise ValueError(f"{len(weights)} GMM components, n_components_velocity={self._components()}")
                if (weights < 0).any() or not np.isclose(weights.sum(), 1.0, atol=1e-6):
                    raise ValueError("GMM weights are not a distribution (negative, or not summing to 1)")
            else:
                bank = shapes.expect(f"{kind}.bank", (f"N_{kind}", f"D_{kind}"))
                k = self.n_neighbors_pose if kind == "pose" else self.n_neighbors_deep
                if len(bank) < max(k, 1):
                    raise ValueError(f"{kind} kNN bank holds {len(bank)} features, fewer than k={k}")
        shapes.nothing_else()

    def _recorded_position(self, meta: Mapping[str, Any]) -> str:
        """The velocity form a file was fitted with (files from before "auto" do not record it:
        their parameter is the form)."""
        recorded = meta.get("velocity_position")
        if recorded is None:
            if self.velocity_position == "auto":
                raise ValueError("velocity_position=auto, but the file does not record the form it chose")
            return self.velocity_position
        if recorded not in FITTED_POSITIONS:
            raise ValueError(f"velocity_position {recorded!r}: expected one of {', '.join(FITTED_POSITIONS)}")
        if self.velocity_position != "auto" and recorded != self.velocity_position:
            raise ValueError(f"velocity_position {recorded!r} recorded, {self.velocity_position!r} in the parameters")
        return recorded

    def _recorded_components(self, meta: Mapping[str, Any]) -> int:
        """The velocity component count a file was fitted with (files from before "auto" do not
        record it: their parameter is the count)."""
        recorded = meta.get("n_components_velocity")
        if recorded is None:
            if self.n_components_velocity == "auto":
                raise ValueError("n_components_velocity=auto, but the file does not record the count it chose")
            return int(self.n_components_velocity)
        if isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < 1:
            raise ValueError(f"n_components_velocity {recorded!r}: expected a whole number ≥ 1")
        if self.n_components_velocity == "auto" and recorded not in COMPONENT_CHOICES:
            raise ValueError(f"n_components_velocity {recorded} recorded: auto chooses one of {COMPONENT_CHOICES}")
        if self.n_components_velocity != "auto" and recorded != self.n_components_velocity:
            raise ValueError(
                f"n_components_velocity {recorded} recorded, {self.n_components_velocity} in the parameters"
            )
        return recorded

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        self.n_components_velocity_ = self._recorded_components(meta)
        likelihood = _loglik(meta)
        self.n_components_velocity_loglik_ = {int(k): float(v) for k, v in likelihood.items()} or None
        self.velocity_position_ = self._recorded_position(meta)
        gain = meta.get("velocity_position_gain")
        self.velocity_position_gain_ = None if gain is None else float(gain)
        self.calibration_ = {k: dict(v) for k, v in meta["calibration"].items()}
        self.estimators_ = {}
        for kind in meta["types"]:
            prefix = f"{kind}."
            mine = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            self.estimators_[kind] = self._estimator(kind).load_state(mine)


def _loglik(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The held-out log-likelihood per candidate count a file records ({} when none)."""
    recorded = meta.get("n_components_velocity_loglik") or {}
    if not isinstance(recorded, Mapping) or not all(str(k).isdigit() for k in recorded):
        raise ValueError(f"n_components_velocity_loglik {recorded!r}: expected a count → number mapping")
    return dict(recorded)
