"""PLOVAD-based weakly supervised detection with classes and a localization head: the estimator.

Learns from video-level labels (`vadctl fit --video-labels FILE`, CSV `video,label[,class]`).
Snippets are the store's 16-frame clips (at most `max_snippets` per video in training, the seed's
256); each brings a spatial map of cells. The network (`net.py`) turns cells into a one-channel
heatmap, pools them into snippet vectors, runs a distance-aware temporal module, and gives
detection logits (trained by top-k multiple-instance learning), class logits and the heatmap
(trained jointly: `training.py`).

Inputs. Each cell carries the snippet's motion grid there and the *normality scores* of
unsupervised attributes, learned on the normal training videos only (`attributes.py`: FUVAS-style
reconstruction error of the motion grid per cell, AI-VAD's velocity GMM per region), cross-fitted
and contrasted within each video. The cell encoder and the heatmap are 1×1 (each cell judged on its
own), and the localization loss pins every cell of every normal video down, so a recording-wide
trait of the anomalous training videos (on Ped2's weak split they are busier) is invisible to the
heatmap. `inputs="attributes"` drops the grid; `contrast="none"` keeps the attributes' absolute
levels. Two options were added after Ped2's weak-split evaluation and did not help there (see
benchmarks/RESULTS.md): `detection="evidence"` (detection from heatmap evidence only, see `net.py`)
and `match_activity` (activity-matched negatives, calibration held out from the quieter normals).

Classes: a learned classifier over the training classes, or, with `clip` frame embeddings and
CLIP's text tower (`prompts.py`), prompts "a video of {class}" (open vocabulary: `vadctl score
--classes …` names classes never seen in training).

Thresholds (no test labels): frame scores at μ+3σ of held-out *normal* validation videos (a
fraction of the normal training videos, never trained on), heatmaps at μ + `region_sigma`·σ of
the same videos' per-frame heatmap peaks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from vadctl.backbones.torch_compat import device, host_threads
from vadctl.backbones.weights import WeightResolver
from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import Capabilities, has_feature, pick_feature
from vadctl.models.neural import NeuralModel, load_module_arrays, module_arrays
from vadctl.models.plovad import outputs, prompts
from vadctl.models.plovad.attributes import CellAttributes, activity
from vadctl.models.plovad.snippets import VideoInputs, capped, load_video
from vadctl.models.registry import register
from vadctl.models.scores import ClassScores, VideoScores, temporal_smooth
from vadctl.store import FeatureStore
from vadctl.video.labels import VideoLabels

HEADS = ("attributes", "network")
INPUTS = ("attributes", "attributes+grid")
DETECTIONS = ("additive", "evidence")
OPEN_VOCABULARY = ("auto", "on", "off")


@register
class Plovad(NeuralModel):
    """Weakly supervised detection, classes and heatmaps (see module docstring)."""

    name = "plovad"
    summary = "PLOVAD-based weak supervision: video labels → MIL detection, classes, heatmap boxes"
    needs = "motion (spatial clip grid); regions+velocity and clip when extracted; --video-labels FILE"
    capabilities = Capabilities(trains_in_steps=True, onnx=True, video_labels=True, classes=True)
    # Chosen on Ped1's weak split (benchmarks/choices.md): the attribute head, absolute attribute
    # levels, velocity with the box's height. Files written before mean what they meant then:
    file_defaults: ClassVar[dict[str, Any]] = {"head": "network", "contrast": "video", "velocity_position": "none"}

    def __init__(
        self,
        grid_feature: str = "motion",
        velocity_feature: str = "auto",
        appearance_feature: str = "auto",
        head: str = "attributes",
        inputs: str = "attributes+grid",
        contrast: str = "none",
        velocity_position: str = "y",
        detection: str = "additive",
        match_activity: bool = False,
        open_vocabulary: str = "auto",
        prompt: str = "a video of {}",
        clip_weights: str | None = None,
        max_snippets: int = 256,
        pca_level: float = 0.98,
        velocity_bins: int = 1,
        velocity_components: int = 2,
        d_model: int = 32,
        heads: int = 2,
        layers: int = 1,
        class_dim: int = 32,
        dropout: float = 0.1,
        topk_fraction: float = 0.125,
        localization_weight: float = 1.0,
        class_weight: float = 1.0,
        smooth_weight: float = 0.1,
        batch_size: int = 8,
        lr: float | None = None,
        weight_decay: float = 1e-4,
        epochs: float = 150.0,
        steps: int | None = None,
        smoothing_sigma: float = 0.0,
        region_sigma: float = 3.0,
        n_folds: int = 10,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.grid_feature = grid_feature
        self.velocity_feature = velocity_feature
        self.appearance_feature = appearance_feature
        self.head = head
        self.inputs = inputs
        self.contrast = contrast
        self.velocity_position = velocity_position
        self.detection = detection
        self.match_activity = match_activity
        self.open_vocabulary = open_vocabulary
        self.prompt = prompt
        self.clip_weights = clip_weights
        self.max_snippets = max_snippets
        self.pca_level = pca_level
        self.velocity_bins = velocity_bins
        self.velocity_components = velocity_components
        self.d_model = d_model
        self.heads = heads
        self.layers = layers
        self.class_dim = class_dim
        self.dropout = dropout
        self.topk_fraction = topk_fraction
        self.localization_weight = localization_weight
        self.class_weight = class_weight
        self.smooth_weight = smooth_weight
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.steps = steps
        self.smoothing_sigma = smoothing_sigma
        self.region_sigma = region_sigma
        self.n_folds = n_folds
        self.device = device
        self.random_state = random_state

    # ----- labels and features ----------------------------------------------------------------
    def set_video_labels(self, labels: VideoLabels) -> None:
        self._labels = labels

    def _video_labels(self) -> VideoLabels:
        labels = getattr(self, "_labels", None)
        if labels is None:
            raise UsageError(
                "plovad learns from video-level labels: pass --video-labels FILE (CSV video,label[,class])"
            )
        return labels

    def calibration_split(
        self, store: FeatureStore, split: str, videos: Sequence[str], fraction: float, seed: int
    ) -> tuple[list[str], list[str]]:
        """Hold out normal videos only (the threshold is a statistic of normal data); every anomalous
        video trains. With `match_activity`, normal videos at least as busy as the quietest anomalous
        one stay in training (they are the negatives that anomalous videos get matched with); the
        held-out ones are drawn from the rest. At least two normal videos stay for training."""
        labels = self._video_labels()
        labelled = [v for v in videos if v in labels.labels]
        left_out = len(videos) - len(labelled)
        if left_out:
            self.training_options().notes.append(f"{left_out} video(s) of the split have no label and are left out")
        normal = [v for v in labelled if labels.labels[v] == 0]
        if len(normal) < 3:
            raise UsageError(
                f"{labels.path}: plovad needs at least 3 normal videos (2 to learn normality from, 1 held out "
                f"to calibrate the threshold); it has {len(normal)}"
            )
        if not 0 < fraction < 1:
            raise UsageError(f"validation fraction {fraction} must be in (0, 1)")
        n_held = min(max(1, round(fraction * len(normal))), len(normal) - 2)
        eligible = normal
        if self.match_activity:
            busy = self._activities(store, split, labelled)
            floor = min(busy[v] for v in labelled if labels.labels[v] == 1)
            quiet = [v for v in normal if busy[v] < floor]
            eligible = quiet if len(quiet) >= n_held else normal
        order = np.random.default_rng(seed).permutation(len(eligible))
        held = {eligible[i] for i in order[:n_held]}
        return [v for v in labelled if v not in held], [v for v in normal if v in held]

    def _activities(self, store: FeatureStore, split: str, videos: Sequence[str]) -> dict[str, float]:
        cached = getattr(self, "_activity", {})
        for video_id in videos:
            if video_id not in cached:
                video = self._load(store, split, video_id)
                cached[video_id] = activity(video, video.grid.shape[2:])
        self._activity = cached
        return {v: cached[v] for v in videos}

    def select_features(self, store: FeatureStore, split: str) -> dict[str, FeatureSpec]:
        grid = pick_feature(store, split, self.grid_feature, "spatial clip (grid)", self.name)
        if grid.axis != "clip":
            raise FeatureError(f"plovad needs a clip-level spatial feature as its grid; {grid.key} is frame-level")
        chosen = {"grid": grid}
        velocity = "velocity" if self.velocity_feature == "auto" else self.velocity_feature
        if velocity != "none" and (self.velocity_feature != "auto" or has_feature(store, split, "velocity")):
            spec = pick_feature(store, split, velocity, "velocity attribute", self.name)
            chosen["velocity"] = spec
            regions = spec.params.get("upstream", {}).get("regions")
            chosen["regions"] = pick_feature(store, split, f"regions@{regions}", "regions", self.name)
        appearance = "clip" if self.appearance_feature == "auto" else self.appearance_feature
        if appearance != "none" and (self.appearance_feature != "auto" or has_feature(store, split, "clip")):
            spec = pick_feature(store, split, appearance, "appearance (frame embeddings)", self.name)
            if spec.axis != "frame":
                raise FeatureError(f"plovad's appearance feature must be frame-level; {spec.key} is clip-level")
            chosen["appearance"] = spec
        self.features_ = chosen
        return chosen

    def _load(self, store: FeatureStore, split: str, video_id: str) -> VideoInputs:
        return load_video(store, split, video_id, self.features_, self.velocity_bins)

    # ----- checks -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.head not in HEADS:
            raise UsageError(f"plovad: head={self.head!r}: use {' or '.join(HEADS)}")
        if self.inputs not in INPUTS:
            raise UsageError(f"plovad: inputs={self.inputs!r}: use {' or '.join(INPUTS)}")
        if self.detection not in DETECTIONS:
            raise UsageError(f"plovad: detection={self.detection!r}: use {' or '.join(DETECTIONS)}")
        if self.open_vocabulary not in OPEN_VOCABULARY:
            raise UsageError(f"plovad: open_vocabulary={self.open_vocabulary!r}: use {', '.join(OPEN_VOCABULARY)}")
        for name in ("max_snippets", "d_model", "heads", "layers", "class_dim", "batch_size", "velocity_bins"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"plovad: {name}={value!r} must be a positive integer")
        if self.d_model % self.heads:
            raise UsageError(f"plovad: d_model={self.d_model} must be divisible by heads={self.heads}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise UsageError(f"plovad: lr={self.lr!r} must be positive")
        if not 0 < self.topk_fraction <= 1:
            raise UsageError(f"plovad: topk_fraction={self.topk_fraction} must be in (0, 1]")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"plovad: dropout={self.dropout} must be in [0, 1)")
        if self.steps is None and not self.epochs > 0:
            raise UsageError(f"plovad: epochs={self.epochs} must be positive (or give steps)")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise UsageError(f"plovad: steps={self.steps!r} must be a positive integer")

    # ----- inputs -----------------------------------------------------------------------------
    def _cell_attributes(self) -> CellAttributes:
        return CellAttributes(
            self.pca_level,
            "velocity" in self.features_,
            self.velocity_components,
            self.contrast,
            self.n_folds,
            self.random_state,
            self.velocity_position,
        )

    def _cells(self, video: VideoInputs, maps: np.ndarray) -> np.ndarray:
        """(T, C, R, W) network inputs: attribute maps [+ the grid standardised with normal statistics]."""
        if self.inputs == "attributes":
            return maps.astype(np.float32)
        grid = (video.grid - self.grid_mean_[None, :, None, None]) / self.grid_scale_[None, :, None, None]
        return np.concatenate([maps, grid], axis=1).astype(np.float32)

    def _class_setup(self, labels: VideoLabels) -> None:
        """Class names, and CLIP text prompts for them when the open vocabulary is available."""
        self.classes_ = labels.class_names
        self.clip_params_ = dict(self.features_["appearance"].params) if "appearance" in self.features_ else None
        self.open_vocabulary_ = False
        self.prototypes_ = None
        wanted = self.open_vocabulary != "off" and self.features_.get("appearance") is not None
        if self.open_vocabulary == "on" and (self.clip_params_ is None or self.features_["appearance"].name != "clip"):
            raise UsageError("plovad: open_vocabulary=on needs the clip feature (CLIP frame embeddings) in the store")
        if not (wanted and self.features_["appearance"].name == "clip" and self.classes_):
            return
        try:
            weights = prompts.find_weights(self.clip_params_, self.clip_weights, None)
        except Exception as error:
            if self.open_vocabulary == "on":
                raise
            self.training_options().notes.append(
                f"no CLIP text tower for the class prompts ({str(error)[:200]}); classes learnt from the training "
                "videos only"
            )
            return
        self.prototypes_ = prompts.embed_prompts(self.classes_, self.prompt, self.clip_params_, weights)
        self.open_vocabulary_ = True

    # ----- fit --------------------------------------------------------------------------------
    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Plovad:
        from vadctl.models.plovad.training import TrainVideo, train_network

        self._check_params()
        labels = self._video_labels()
        loaded = {v: self._load(store, split, v) for v in videos}
        normal = [v for v in videos if labels.labels[v] == 0]
        self.attributes_ = self._cell_attributes()
        maps = dict(zip(normal, self.attributes_.fit([loaded[v] for v in normal]), strict=True))
        for video_id in videos:
            if video_id not in maps:
                maps[video_id] = self.attributes_.maps(loaded[video_id])
        grids = np.concatenate([loaded[v].grid for v in normal])
        self.grid_mean_ = grids.mean(axis=(0, 2, 3)).astype(np.float32)
        self.grid_scale_ = np.maximum(grids.std(axis=(0, 2, 3)), 1e-3).astype(np.float32)
        self._class_setup(labels)
        train = []
        for video_id in videos:
            video, cells = capped(loaded[video_id], self._cells(loaded[video_id], maps[video_id]), self.max_snippets)
            name = labels.classes.get(video_id)
            index = self.classes_.index(name) if name is not None else -1
            busy = self._activities(store, split, [video_id])[video_id] if self.match_activity else 0.0
            train.append(TrainVideo(cells, video.appearance, labels.labels[video_id], index, busy))
        identity = self.run_identity({r: s.key for r, s in self.features_.items()}, videos)
        identity["video_labels_sha256"] = labels.digest()
        trained = train_network(
            self,
            train,
            self.prototypes_,
            len(self.classes_),
            identity,
            self.training_options(),
            device(self.device),
        )
        self.net_ = trained.net
        if not self.open_vocabulary_:
            self.prototypes_ = trained.prototypes
        self.history_ = trained.history
        self.train_seconds_ = trained.seconds
        self.steps_ = trained.steps
        self.labels_meta_ = {"path": labels.path, "sha256": labels.digest()}
        self.heat_calibration_: dict[str, float] | None = None
        return self

    def calibrate_heldout(self, store: FeatureStore, split: str, videos: Sequence[str]) -> None:
        """Heatmap threshold from held-out normal videos: μ + region_sigma·σ of per-frame peaks."""
        self._check_fitted()
        peaks = [self._predict(self._load(store, split, v))["frame_heat"].max(axis=(1, 2)) for v in videos]
        self.heat_calibration_ = outputs.heat_calibration(np.concatenate(peaks), self.region_sigma)

    # ----- network ----------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """`lr`, or the head's own default: the attribute head has three parameters that must travel
        several units (1e-3 moves them 0.3 in 300 steps), the network many that must not."""
        if self.lr is not None:
            return float(self.lr)
        return 3e-2 if self.head == "attributes" else 1e-3

    def build_net(self, in_channels: int, appearance_dim: int, class_dim: int, clip_classes: bool):
        """The head `head` names: the attribute head (a few parameters over the attribute maps) or the
        network (cell encoder, temporal Transformer, detection head)."""
        if self.head == "attributes":
            from vadctl.models.plovad.attribute_net import AttributeNet

            return AttributeNet(in_channels, len(self.attributes_.names), appearance_dim, class_dim, clip_classes)
        from vadctl.models.plovad.net import PlovadNet

        return PlovadNet(
            in_channels,
            appearance_dim,
            self.d_model,
            self.heads,
            self.layers,
            class_dim,
            self.dropout,
            clip_classes,
            self.detection,
        )

    def scoring_net(self):
        from vadctl.models.plovad.net import ExportWrapper

        return ExportWrapper(self.net_, "appearance" in self.features_)

    def _active_prototypes(self) -> np.ndarray:
        scored = getattr(self, "_score_prototypes", None)
        if scored is not None:
            return scored
        if self.prototypes_ is None:  # no classes: one placeholder vector, its output unused
            return np.ones((1, self.class_dim if not self.open_vocabulary_ else self.embedding_dim_), np.float32)
        return np.asarray(self.prototypes_, np.float32)

    @property
    def embedding_dim_(self) -> int:
        return int(self.net_.classify.out_features)

    def example_inputs(self, batch: int = 2, variant: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(variant)
        length = 8 + 5 * variant
        channels = self.net_.in_channels
        rows, cols = self.attributes_.shape_
        inputs = {
            "cells": rng.standard_normal((batch, length, channels, rows, cols)).astype(np.float32),
            "prototypes": rng.standard_normal((max(len(self.classes_), 1) + variant, self.embedding_dim_)).astype(
                np.float32
            ),
        }
        if "appearance" in self.features_:
            width = self.net_.appearance_dim
            inputs["appearance"] = rng.standard_normal((batch, length, width)).astype(np.float32)
        return inputs

    def onnx_outputs(self) -> list[str]:
        return ["detection", "class_logits", "heatmap"]

    def onnx_dynamic_axes(self) -> dict[str, dict[int, str]]:
        axes = {
            "cells": {0: "batch", 1: "snippets"},
            "prototypes": {0: "classes"},
            "detection": {0: "batch", 1: "snippets"},
            "class_logits": {0: "batch", 1: "snippets", 2: "classes"},
            "heatmap": {0: "batch", 1: "snippets"},
        }
        if "appearance" in self.features_:
            axes["appearance"] = {0: "batch", 1: "snippets"}
        return axes

    def _predict(self, video: VideoInputs) -> dict[str, np.ndarray]:
        """Snippet outputs of one video (in chunks of `max_snippets`) spread to its frames."""

        with host_threads(next(self.net_.parameters()).device):  # a small network: one CPU thread
            return self._predict_video(video)

    def _predict_video(self, video: VideoInputs) -> dict[str, np.ndarray]:
        cells = self._cells(video, self.attributes_.maps(video))
        prototypes = self._active_prototypes()
        detection, logits, heat = [], [], []
        for start in range(0, len(cells), self.max_snippets):
            part = slice(start, start + self.max_snippets)
            inputs = {"cells": cells[None, part], "prototypes": prototypes}
            if video.appearance is not None and "appearance" in self.features_:
                inputs["appearance"] = video.appearance[None, part].astype(np.float32)
            d, c, h = self.run_network(inputs)
            detection.append(d[0])
            logits.append(c[0])
            heat.append(h[0])
        detection_t = np.concatenate(detection).astype(np.float64)
        probs = outputs.softmax(np.concatenate(logits).astype(np.float64))
        heat_t = np.concatenate(heat).astype(np.float64)
        n = video.n_frames
        return {
            "detection": detection_t,
            "snippet_heat": heat_t.max(axis=(1, 2)),
            "class_probs": probs,
            "frame_scores": outputs.spread(video.clips, detection_t, n),
            "frame_probs": outputs.spread(video.clips, probs, n),
            "frame_heat": outputs.spread(video.clips, heat_t, n),
        }

    # ----- scoring ----------------------------------------------------------------------------
    def set_classes(self, names: Sequence[str], weights: Mapping[str, Any] | None = None) -> None:
        """Name other classes at scoring time (open vocabulary): CLIP text embeddings of prompts."""
        self._check_fitted()
        names = [n.strip() for n in names if n.strip()]
        if not names:
            raise UsageError("--classes: name at least one class")
        if not self.open_vocabulary_:
            known = ", ".join(self.classes_) or "none"
            raise UsageError(
                f"--classes needs a plovad model with open vocabulary (fitted on clip features with CLIP's text "
                f"tower); this one names its training classes only ({known})"
            )

        resolver = WeightResolver(explicit=dict(weights or {}))
        found = prompts.find_weights(self.clip_params_, self.clip_weights if not weights else None, resolver)
        self._score_prototypes = prompts.embed_prompts(names, self.prompt, self.clip_params_, found)
        self._score_classes = list(names)

    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        self._check_fitted()
        names = getattr(self, "_score_classes", None) or self.classes_
        for video_id in videos:
            video = self._load(store, split, video_id)
            predicted = self._predict(video)
            scores = temporal_smooth(predicted["frame_scores"], self.smoothing_sigma)
            peaks = predicted["frame_heat"].max(axis=(1, 2))
            extra = {"anomaly_prob": 1 / (1 + np.exp(-scores)), "heatmap_peak": peaks}
            regions = None
            if self.heat_calibration_:
                threshold = self.heat_calibration_["threshold"]
                extra["heatmap_threshold"] = np.full(len(scores), threshold)
                regions = outputs.heat_boxes(predicted["frame_heat"], threshold, video.width, video.height)
            classes = None
            if names:
                video_probs = outputs.top_mean(predicted["class_probs"], predicted["detection"], self.topk_fraction)
                classes = ClassScores(list(names), predicted["frame_probs"], video_probs)
            video_score = float(outputs.top_mean(predicted["detection"], predicted["detection"], self.topk_fraction))
            yield VideoScores(video_id, scores, regions, extra, classes, video_score)

    # ----- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        attr_arrays, attr_meta = self.attributes_.state()
        arrays = module_arrays("net", self.net_) | {f"attr.{k}": v for k, v in attr_arrays.items()}
        arrays |= {"grid_mean": self.grid_mean_, "grid_scale": self.grid_scale_}
        if self.prototypes_ is not None:
            arrays["prototypes"] = np.asarray(self.prototypes_, np.float32)
        meta = {
            "attributes": attr_meta,
            "classes": self.classes_,
            "open_vocabulary": self.open_vocabulary_,
            "clip_params": self.clip_params_,
            "in_channels": int(self.net_.in_channels),
            "appearance_dim": int(self.net_.appearance_dim),
            "class_dim": self.embedding_dim_,
            "heat_calibration": self.heat_calibration_,
            "video_labels": self.labels_meta_,
            "steps": self.steps_,
            "train_seconds": round(self.train_seconds_, 3),
            "history": self.history_,
        }
        return arrays, meta

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        attr = {k.removeprefix("attr."): v for k, v in arrays.items() if k.startswith("attr.")}
        self.attributes_ = self._cell_attributes().load_state(attr, meta["attributes"])
        self.classes_ = list(meta["classes"])
        self.open_vocabulary_ = bool(meta["open_vocabulary"])
        self.clip_params_ = meta["clip_params"]
        net = self.build_net(
            int(meta["in_channels"]), int(meta["appearance_dim"]), int(meta["class_dim"]), self.open_vocabulary_
        )
        load_module_arrays("net", net, arrays)
        self.net_ = net.to(device("cpu" if self.device == "cpu" else "auto"))
        self.grid_mean_ = np.asarray(arrays["grid_mean"], np.float32)
        self.grid_scale_ = np.asarray(arrays["grid_scale"], np.float32)
        self.prototypes_ = np.asarray(arrays["prototypes"], np.float32) if "prototypes" in arrays else None
        self.heat_calibration_ = dict(meta["heat_calibration"]) if meta.get("heat_calibration") else None
        self.labels_meta_ = dict(meta["video_labels"])
        self.steps_ = int(meta["steps"])
        self.train_seconds_ = float(meta["train_seconds"])
        self.history_ = list(meta.get("history", []))
