"""Fit and score end to end on a store: the library calls behind `vadctl fit` and `vadctl score`.

Fitting calibrates the threshold on held-out normal frames: cross-fitted scores of every training
video when the model offers them (AI-VAD, FUVAS), otherwise a validation slice of whole videos
held out from fitting (chosen by a seeded shuffle and recorded in the model file).

Models that train in steps (their `capabilities` say so) also get training options (checkpoints
beside the model file, resume, progress callback); those that export to ONNX may score with an
onnxruntime backend instead of torch.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import VadModel
from vadctl.models.files import LoadedModel, save_model
from vadctl.models.registry import build, names_with
from vadctl.progress import Progress
from vadctl.results import VideoScores
from vadctl.scoring import DEFAULT_RULE, Calibration, events_table, frames_table, regions_table, videos_table
from vadctl.specs import FeatureSpec
from vadctl.store import FeatureStore, check_split
from vadctl.training import TrainOptions, checkpoint_dir_for
from vadctl.video_labels import VideoLabels, read_video_labels

BACKENDS = ("torch", "onnx")


@contextlib.contextmanager
def blas_threads() -> Iterator[None]:
    """BLAS on one thread unless VADCTL_BLAS_THREADS says otherwise.

    Model matrices here are small, so threads gain little; on a busy machine multi-threaded
    OpenBLAS spin-waits for cores it does not get (measured: a 320×480 SVD took 3.2 s on 2 threads
    against 0.023 s on 1, at load 6.8 on 2 cores).
    """
    text = os.environ.get("VADCTL_BLAS_THREADS", "1")
    try:
        limit = max(1, int(text))
    except ValueError:
        raise UsageError(f"VADCTL_BLAS_THREADS={text!r}: expected a whole number of threads") from None
    with threadpool_limits(limits=limit, user_api="blas"):
        yield


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
    """Videos of a split that extracted fine (failed ones are skipped, as recorded)."""
    records = {r.video_id: r for r in store.videos(check_split(split))}
    if not records:
        raise UsageError(f"split {split!r} of {store.path} has no videos; run `vadctl extract … --split {split}`")
    if videos is not None:
        missing = [v for v in videos if v not in records]
        if missing:
            raise UsageError(f"split {split!r} of {store.path} has no video(s) {', '.join(missing[:5])}")
        return [v for v in videos if records[v].status == "ok"]
    return [v for v, r in sorted(records.items()) if r.status == "ok"]


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


def check_features(loaded: LoadedModel, store: FeatureStore, split: str, videos: Sequence[str]) -> None:
    """Every video to score must hold exactly the entries the model was fitted on."""
    records = {r.video_id: r for r in store.videos(split)}
    for role, spec in loaded.features.items():
        lacking = [v for v in videos if spec.key not in records[v].features]
        if not lacking:
            continue
        others = sorted({k for v in lacking for k, s in records[v].features.items() if s["name"] == spec.name})
        hint = (
            f"it has {', '.join(others)} (other parameters): extract with the model's parameters"
            if others
            else f"run `vadctl extract … --split {split} --features {spec.name}`"
        )
        shown = ", ".join(lacking[:5]) + (" …" if len(lacking) > 5 else "")
        raise FeatureError(
            f"model was fitted on {spec.key} ({role}); {len(lacking)} video(s) of split {split!r} lack it "
            f"({shown}); {hint}"
        )


def use_backend(loaded: LoadedModel, backend: str, onnx_path: Path | None) -> None:
    """Run a neural model's network with onnxruntime from `onnx_path` when backend is "onnx"."""
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: use {' or '.join(BACKENDS)}")
    if backend == "onnx":
        from vadctl.onnx_export import OnnxBackend, require_parity

        if onnx_path is None:
            raise UsageError("the onnx backend needs the exported ONNX file (vadctl export)")
        session = OnnxBackend(onnx_path, loaded.model)
        require_parity(loaded.model, onnx_path, 2)  # an edited graph or weights is refused, not scored with
        loaded.model.use_backend(session)


def use_classes(loaded: LoadedModel, classes: Sequence[str] | None, weights: Mapping[str, Path] | None) -> None:
    """Name other classes for models with an open vocabulary (CLIP's text tower, its weights found
    as featurizers find them, or in `weights`)."""
    if classes is None:
        return
    if not loaded.model.capabilities.classes:
        named = ", ".join(names_with("classes"))
        raise UsageError(f"--classes: model {loaded.model.name} names no classes (models that do: {named})")
    loaded.model.set_classes(list(classes), weights)


@dataclass
class ScoreTables:
    """What scoring writes: frames, regions, videos and events (see `vadctl.scoring`)."""

    frames: pl.DataFrame
    regions: pl.DataFrame
    videos: pl.DataFrame
    events: pl.DataFrame


def score_model(loaded: LoadedModel, store: FeatureStore, *args, **kwargs) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(frames table, regions table) for every usable video of the split: `score_tables`'s
    arguments, its first two tables."""
    tables = score_tables(loaded, store, *args, **kwargs)
    return tables.frames, tables.regions


def score_tables(
    loaded: LoadedModel,
    store: FeatureStore,
    split: str = "test",
    videos: Sequence[str] | None = None,
    rule: str | None = None,
    backend: str = "torch",
    onnx_path: Path | None = None,
    progress: Progress | None = None,
    classes: Sequence[str] | None = None,
    weights: Mapping[str, Path] | None = None,
    workers: int = 1,
    model_path: Path | None = None,
) -> ScoreTables:
    """Every table of a scored split. backend "onnx" runs a neural model's network through
    onnxruntime from `onnx_path`; `classes` names other classes for models with an open vocabulary
    (CLIP weights found as featurizers find them, or in `weights`). `workers` > 1 scores videos
    in that many processes, each loading `model_path` once; the tables are the same as serial ones
    (videos are scored independently, then put in order)."""
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: use {' or '.join(BACKENDS)}")
    chosen = usable_videos(store, split, videos)
    check_features(loaded, store, split, chosen)
    store.require_intact(split, chosen, [spec.key for spec in loaded.features.values()])
    use_backend(loaded, backend, onnx_path)
    use_classes(loaded, classes, weights)
    progress = progress or Progress()
    progress.scoring_started(loaded.model.name, len(chosen))
    scores = []
    if workers > 1 and len(chosen) > 1:
        from vadctl.executors.scoring import score_in_workers

        if model_path is None:
            raise UsageError("scoring in worker processes needs the model file's path")
        workers = min(workers, len(chosen))
        scores = score_in_workers(
            model_path, store.path, split, chosen, backend, onnx_path, workers, progress, classes, weights
        )
    else:
        with blas_threads():
            for item in loaded.model.score(store, split, chosen):
                scores.append(item)
                progress.video_scored(item.video_id, len(item.frame_scores))
    frames = frames_table(scores, loaded.calibration, loaded.model.name, rule)
    return ScoreTables(frames, regions_table(scores), videos_table(scores, frames), events_table(scores, frames))
