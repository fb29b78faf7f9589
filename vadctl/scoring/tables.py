"""From model scores to what users read: the tables, with provenance, written atomically.

Tables: frames (one row per decoded frame), regions (one row per box), videos (one row per video:
is any frame flagged, and for models that name classes the video's class with its probabilities)
and events (one row per run of consecutive flagged frames, with the event's class where named).
Thresholds come from the model's calibration (`models.calibration`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from vadctl import defaults
from vadctl.common.atomic import write_atomic
from vadctl.common.specs import PathLike
from vadctl.errors import ModelFileError, UsageError
from vadctl.models.calibration import (
    Calibration,
)
from vadctl.models.scores import ClassScores, VideoScores
from vadctl.scoring.events import class_columns, find_events
from vadctl.scoring.provenance import Provenance, with_provenance_frames, with_provenance_regions
from vadctl.store import FeatureStore, VideoRecord


def frames_table(
    scores: Iterable[VideoScores],
    calibration: Calibration,
    model: str,
    rule: str | None = None,
    model_file: str | Path | None = None,
) -> pl.DataFrame:
    """One row per decoded frame: video, frame, score, score_norm, is_anomaly, threshold, model (+ extras).
    Scores that are not finite are refused (`ModelFileError` naming `model_file`), never written."""
    threshold = calibration.threshold(rule)
    parts = []
    for item in scores:
        n = len(item.frame_scores)
        refuse_non_finite(item, calibration, model_file or model)
        columns = {
            "video": pl.Series([item.video_id] * n, dtype=pl.String),
            "frame": pl.Series(np.arange(n), dtype=pl.Int64),
            "score": pl.Series(item.frame_scores, dtype=pl.Float64),
            "score_norm": pl.Series(calibration.normalize(item.frame_scores), dtype=pl.Float64),
            "is_anomaly": pl.Series(item.frame_scores > threshold, dtype=pl.Boolean),
            "threshold": pl.Series([threshold] * n, dtype=pl.Float64),
            "model": pl.Series([model] * n, dtype=pl.String),
        }
        for name, values in item.extra.items():
            columns[name] = pl.Series(np.asarray(values, dtype=np.float64), dtype=pl.Float64)
        if item.classes is not None:
            columns |= _class_columns(item.classes, n)
        if item.video_score is not None:
            columns["video_score"] = pl.Series([float(item.video_score)] * n, dtype=pl.Float64)
            columns["video_is_anomaly"] = pl.Series([item.video_score > 0] * n, dtype=pl.Boolean)
        parts.append(pl.DataFrame(columns))
    if not parts:
        raise UsageError("nothing to score: the split has no videos with the model's features")
    return pl.concat(parts, how="diagonal")


def refuse_non_finite(item: VideoScores, calibration: Calibration, model_file: str | Path) -> None:
    """NaN or infinite scores come from statistics a model file should not hold (a scale near 0, a
    σ that overflows): an error naming the file and the statistic, never rows of data."""
    scores = np.asarray(item.frame_scores, dtype=np.float64)
    with np.errstate(all="ignore"):
        norms = calibration.normalize(scores)
    for what, values in (("score", scores), ("score_norm (calibration μ, σ)", norms)):
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ModelFileError(
                f"{model_file}: {bad} of {len(values)} frame scores of video {item.video_id} are not finite "
                f"({what}): the file's statistics overflow; nothing was written"
            )


def _class_columns(classes: ClassScores, n: int) -> dict[str, pl.Series]:
    """Per frame: the likeliest class and its probability; the video's class and probability."""
    names = np.asarray(classes.names, dtype=object)
    best = classes.frame_probs.argmax(axis=1)
    video_best = int(np.argmax(classes.video_probs))
    return {
        "class": pl.Series(names[best].tolist(), dtype=pl.String),
        "class_prob": pl.Series(classes.frame_probs[np.arange(n), best], dtype=pl.Float64),
        "video_class": pl.Series([str(names[video_best])] * n, dtype=pl.String),
        "video_class_prob": pl.Series([float(classes.video_probs[video_best])] * n, dtype=pl.Float64),
    }


def videos_table(scores: Sequence[VideoScores], frames: pl.DataFrame) -> pl.DataFrame:
    """One row per video: frames, peak score, flagged frames, is_anomaly (the model's own video-level
    decision when it has one, else: any frame flagged), and for models that name classes its class,
    that class's probability and every class's (`class_probs`)."""
    own = "video_is_anomaly" in frames.columns
    flagged = pl.col("is_anomaly").any()
    decision = pl.coalesce(pl.col("video_is_anomaly").first(), flagged) if own else flagged
    aggregations = [
        pl.len().alias("frames"),
        pl.col("score").max().alias("peak_score"),
        pl.col("is_anomaly").sum().cast(pl.Int64).alias("flagged_frames"),
        decision.alias("is_anomaly"),
        pl.col("model").first(),
    ]
    if own:
        aggregations.insert(1, pl.col("video_score").first())
    summary = frames.group_by("video", maintain_order=True).agg(aggregations).sort("video")
    named = [s for s in scores if s.classes is not None]
    if not named:
        return summary
    probs = np.stack([s.classes.video_probs for s in named])
    classes = pl.DataFrame({"video": [s.video_id for s in named]}).with_columns(
        class_columns(named[0].classes.names, probs)
    )
    return summary.join(classes, on="video", how="left")


def regions_table(scores: Iterable[VideoScores], calibration: Calibration | None = None) -> pl.DataFrame:
    """One row per scored box: video, frame, x1, y1, x2, y2, score."""
    parts = []
    for item in scores:
        regions = item.regions
        if regions is None or len(regions.frame) == 0:
            continue
        boxes = np.asarray(regions.boxes, dtype=np.float32)
        parts.append(
            pl.DataFrame(
                {
                    "video": pl.Series([item.video_id] * len(regions.frame), dtype=pl.String),
                    "frame": pl.Series(regions.frame, dtype=pl.Int64),
                    "x1": boxes[:, 0],
                    "y1": boxes[:, 1],
                    "x2": boxes[:, 2],
                    "y2": boxes[:, 3],
                    "score": pl.Series(regions.score, dtype=pl.Float64),
                }
            )
        )
    if not parts:
        schema = {"video": pl.String, "frame": pl.Int64, "x1": pl.Float32, "y1": pl.Float32, "x2": pl.Float32}
        schema |= {"y2": pl.Float32, "score": pl.Float64}
        return pl.DataFrame(schema=schema)
    return pl.concat(parts)


def write_parquet_atomic(table: pl.DataFrame, path: Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write beside the target, then rename: a killed run never leaves half a file at `path`.

    `metadata` becomes the file's Parquet key-value metadata (provenance)."""
    return write_atomic(path, lambda tmp: table.write_parquet(tmp, metadata=dict(metadata) if metadata else None))


def regions_path(scores_path: PathLike) -> Path:
    """Where region scores go beside a frame-scores file: <name>.regions.parquet."""
    return beside(scores_path, "regions")


def beside(scores_path: PathLike, table: str) -> Path:
    """Where another table goes beside a frame-scores file: <name>.<table>.parquet (regions,
    videos, events)."""
    path = Path(scores_path)
    return path.with_name(f"{path.stem}.{table}.parquet")


@dataclass
class Published:
    """The tables of one scoring run as they leave vadctl: frames and regions with their provenance
    columns, the videos summary, and the events (one definition: `scoring.events`)."""

    frames: pl.DataFrame
    regions: pl.DataFrame
    videos: pl.DataFrame
    events: pl.DataFrame

    def with_metadata(self, provenance: Provenance, **events_meta) -> dict[str, tuple[pl.DataFrame, dict]]:
        """{kind: (table, Parquet key-value metadata)}: what a writer stores."""
        return {
            "frames": (self.frames, provenance.metadata("frames")),
            "regions": (self.regions, provenance.metadata("regions")),
            "videos": (self.videos, provenance.metadata("videos")),
            "events": (self.events, provenance.metadata("events", **events_meta)),
        }


def publish(
    scores: Sequence[VideoScores],
    calibration: Calibration,
    model_name: str,
    provenance: Provenance,
    records: Mapping[str, VideoRecord],
    *,
    model_column: bool = True,
    min_len: int = defaults.EVENT_MIN_LEN,
    min_gap: int = defaults.EVENT_MIN_GAP,
) -> Published:
    """Every results table of scored videos, stamped with their provenance: the one path that both
    `vadctl score` (files) and `vadctl run` (the results dataset, where `model` is the partition, so
    `model_column=False`) write through. A new column is added once, here or in `PROVENANCE_SCHEMA`."""
    frames = frames_table(scores, calibration, model_name, provenance.threshold_rule, provenance.model_path)
    videos = videos_table(scores, frames)
    frames = with_provenance_frames(frames, provenance, records, model_column=model_column)
    regions = with_provenance_regions(regions_table(scores), provenance, records, model_column=model_column)
    fps = {s.video_id: records[s.video_id].fps for s in scores}
    classes = {s.video_id: s.classes for s in scores}
    events = find_events(frames, regions, min_len=min_len, min_gap=min_gap, fps=fps, classes=classes)
    return Published(frames, regions, videos, events)


def write_tables(
    scores: Sequence[VideoScores],
    loaded,
    model_path: Path,
    store: FeatureStore,
    split: str,
    rule,
    out,
    regions_out=None,
) -> Path:
    """Frames to `out`, the other tables beside it (regions to `regions_out` when given), each
    with its provenance (columns and Parquet metadata) and written atomically."""
    provenance = Provenance.of(loaded, model_path, store.path, split, rule=rule)
    records = {r.video_id: r for r in store.videos(split)}
    published = publish(scores, loaded.calibration, loaded.model.name, provenance, records)
    places = {
        "frames": Path(out),
        "regions": Path(regions_out) if regions_out is not None else regions_path(out),
        "videos": beside(out, "videos"),
        "events": beside(out, "events"),
    }
    metadata = {"min_len": defaults.EVENT_MIN_LEN, "min_gap": defaults.EVENT_MIN_GAP}
    for kind, (table, meta) in published.with_metadata(provenance, **metadata).items():
        write_parquet_atomic(table, places[kind], meta)
    return Path(out)
