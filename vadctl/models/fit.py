"""Fitting a model on a store's cached features, and calibrating its threshold.

Fitting calibrates the threshold on held-out normal frames: cross-fitted scores of every training
video when the model offers them (AI-VAD, FUVAS), otherwise a validation slice of whole videos
held out from fitting (chosen by a seeded shuffle and recorded in the model file). Models that
train in steps also get training options (checkpoints beside the model file, resume, progress)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vadctl.common.specs import FeatureSpec
from vadctl.common.threads import blas_threads
from vadctl.errors import UsageError
from vadctl.models.base import VadModel
from vadctl.models.calibration import DEFAULT_RULE, Calibration
from vadctl.models.files import save_model
from vadctl.models.registry import build, names_with
from vadctl.models.scores import VideoScores
from vadctl.models.training import TrainOptions, checkpoint_dir_for
from vadctl.store import FeatureStore, check_split
from vadctl.video.labels import VideoLabels, read_video_labels


@dataclass
class FitResult:
    model: VadModel
    calibration: Calibration
    fit_videos: list[str]
    seconds: float
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, about the threshold


def usable_videos(store: FeatureStore, split: str, videos: Sequence[str] | None = None) -> list[str]:
    """Videos of a split that extracted fine, or truncated and kept (failed ones are skipped, as recorded)."""
    records = {r.video_id: r for r in store.videos(check_split(split))}
    if not records:
        raise UsageError(f"split {split!r} of {store.path} has no videos; run `vadctl extract … --split {split}`")
    if videos is not None:
        missing = [v for v in videos if v not in records]
        if missing:
            raise UsageError(f"split {split!r} of {store.path} has no video(s) {', '.join(missing[:5])}")
        return [v for v in videos if records[v].usable]
    return [v for v, r in sorted(records.items()) if r.usable]


def validation_split(videos: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out whole videos (at least one, never all) for calibration."""
    if len(videos) < 2:
        raise UsageError("fitting needs at least two training videos (one is held out to calibrate the threshold)")
    if not 0 < fraction < 1:
        raise UsageError(f"validation fraction {fraction} must be in (0, 1)")
    order = np.random.default_rng(seed).permutation(len(videos))
    n_val = min(max(1, round(fraction * len(videos))), len(videos) - 1)
    held = {videos[i] for i in order[:n_val]}
    return [v for v in videos if v not in held], [v for v in videos if v in held]


def fit_model(
    store: FeatureStore,
    name: str,
    params: Mapping[str, Any] | None = None,
    split: str = "train",
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    rule: str = DEFAULT_RULE,
    out: Path | None = None,
    training: TrainOptions | None = None,
    video_labels: Path | str | VideoLabels | None = None,
) -> FitResult:
    with blas_threads():
        return _fit(store, name, params, split, validation_fraction, seed, rule, out, training, video_labels)


def _labels(model: VadModel, video_labels, videos: Sequence[str], where: str) -> VideoLabels | None:
    """Video-level labels for models that learn from them; given to any other model, an error."""
    if not model.capabilities.video_labels:
        if video_labels is not None:
            weak = ", ".join(names_with("video_labels"))
            raise UsageError(f"model {model.name} does not learn from video-level labels (models that do: {weak})")
        return None
    if video_labels is None:
        raise UsageError(
            f"model {model.name} learns from video-level labels: pass --video-labels FILE (CSV video,label[,class])"
        )
    labels = video_labels if isinstance(video_labels, VideoLabels) else read_video_labels(video_labels)
    labels.check_videos(videos, where)
    model.set_video_labels(labels)
    return labels


def feature_chain(store: FeatureStore, split: str, specs: Iterable[FeatureSpec]) -> list[dict]:
    """The entries a model was fitted on and every upstream entry they were computed from (name,
    version, parameters, hash), so `vadctl infer` can extract exactly those from new videos."""
    known = {spec.key: spec for spec, _ in store.specs(split).values()}
    chain: dict[str, FeatureSpec] = {}
    todo = list(specs)
    while todo:
        spec = todo.pop()
        if spec.key in chain:
            continue
        chain[spec.key] = spec
        for name, digest in spec.params.get("upstream", {}).items():
            upstream = known.get(f"{name}@{digest}")
            if upstream is not None:
                todo.append(upstream)
    return [chain[key].to_dict() for key in sorted(chain)]


def _fit(store, name, params, split, validation_fraction, seed, rule, out, training, video_labels) -> FitResult:
    started = time.perf_counter()
    model = build(name, params)
    can = model.capabilities
    if can.trains_in_steps:
        training = training or TrainOptions()
        if training.checkpoint_dir is None and out is not None:
            training.checkpoint_dir = checkpoint_dir_for(out)
        model.set_training(training)
    elif training is not None and training.resume:
        neural = ", ".join(names_with("trains_in_steps"))
        raise UsageError(f"model {name} does not train in steps; --resume applies to models that do ({neural})")
    videos = usable_videos(store, split)
    labels = _labels(model, video_labels, videos, f"the usable videos of split {split!r} of {store.path}")
    chosen = model.select_features(store, split)
    store.require_intact(split, videos, [spec.key for spec in chosen.values()])  # before any training
    if can.crossfit:
        model.fit(store, split, videos)
        heldout: list[VideoScores] = model.heldout_
        fit_videos, method = videos, "crossfit"
    else:
        chosen = model.calibration_split(store, split, videos, validation_fraction, seed)
        fit_videos, validation = chosen or validation_split(videos, validation_fraction, seed)
        model.fit(store, split, fit_videos)
        model.calibrate_heldout(store, split, validation)
        heldout = list(model.score(store, split, validation))
        method = "holdout"
    calibration = Calibration.from_scores(heldout, method, rule)
    result = FitResult(model, calibration, fit_videos, time.perf_counter() - started)
    result.warnings.extend(calibration.warnings())
    if training is not None:
        result.notes.extend(training.notes)
    if out is not None:
        provenance = {"store": str(store.path.resolve()), "split": split, "fit_videos": fit_videos, "seed": seed}
        provenance["feature_entries"] = feature_chain(store, split, model.features_.values())
        if labels is not None:
            provenance["video_labels"] = {"path": labels.path, "sha256": labels.digest()}
        result.path = save_model(out, model, calibration, provenance)
    return result
