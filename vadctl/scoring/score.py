"""Scoring a store with a fitted model: the library call behind `vadctl score` and `vadctl infer`.

Every usable video of a split is checked for the entries the model was fitted on (and for damage)
before any is scored; scores come back as the frames, regions, videos and events tables
(`scoring.tables`), serially or from worker processes (`scoring.parallel`), the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

from vadctl.common.progress import Progress
from vadctl.common.threads import blas_threads
from vadctl.errors import FeatureError, UsageError
from vadctl.models.calibration import Calibration
from vadctl.models.files import LoadedModel
from vadctl.models.fit import usable_videos
from vadctl.models.scores import VideoScores
from vadctl.scoring.backends import BACKENDS, use_backend, use_classes
from vadctl.scoring.events import find_events
from vadctl.scoring.parallel import score_in_workers
from vadctl.scoring.tables import frames_table, regions_table, videos_table
from vadctl.store import FeatureStore


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


@dataclass
class ScoreTables:
    """Scores of a split (per video, as the model gave them) and the tables read from them, without
    provenance: frames, regions, videos and events, each built when first asked for (`vadctl score`
    writes through `scoring.tables.publish`, which builds its own stamped ones from `scores`)."""

    scores: list[VideoScores]
    calibration: Calibration
    model: str
    rule: str | None
    model_file: str | Path
    fps: dict[str, float]

    @cached_property
    def frames(self) -> pl.DataFrame:
        return frames_table(self.scores, self.calibration, self.model, self.rule, self.model_file)

    @cached_property
    def regions(self) -> pl.DataFrame:
        return regions_table(self.scores)

    @cached_property
    def videos(self) -> pl.DataFrame:
        return videos_table(self.scores, self.frames)

    @cached_property
    def events(self) -> pl.DataFrame:
        classes = {s.video_id: s.classes for s in self.scores}
        return find_events(self.frames, self.regions, fps=self.fps, classes=classes)


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
    records = {r.video_id: r for r in store.videos(split)}
    fps = {s.video_id: records[s.video_id].fps for s in scores}
    name = loaded.model.name
    return ScoreTables(scores, loaded.calibration, name, rule, model_path or name, fps)
