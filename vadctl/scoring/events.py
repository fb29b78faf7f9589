"""Events: what an operator reviews in the morning instead of frame scores.

An event is a run of anomalous frames (`is_anomaly`) of one video, runs separated by fewer than
`min_gap` normal frames merged into one, and events shorter than `min_len` frames dropped (one
flagged frame is more often noise than an incident). Each event carries its frame and time span,
its peak (highest score) and where it happened: the union of the highest-scoring box of each of its
frames (the box that drove the frame's score; other boxes of the same frames are mostly normal
traffic); for models that name classes, the event's class (mean frame probabilities over it).

This is the one events table: `vadctl score` writes it beside its scores, `vadctl run` appends it to
the results dataset and `vadctl events` reads or recomputes it, always with these columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from vadctl import defaults
from vadctl.errors import UsageError
from vadctl.models.scores import ClassScores
from vadctl.scoring.provenance import PROVENANCE_SCHEMA

# Columns copied from a video's frame rows onto its events, when the frames have them: the threshold,
# the model and every provenance column (split first, as events have always carried it).
CARRIED = ("split", "threshold", "model", *(name for name in PROVENANCE_SCHEMA if name != "split"))
SCHEMA = {
    "video": pl.String,
    "start_frame": pl.Int64,
    "end_frame": pl.Int64,
    "n_frames": pl.Int64,
    "start_s": pl.Float64,
    "end_s": pl.Float64,
    "peak_frame": pl.Int64,
    "peak_score": pl.Float64,
    "peak_score_norm": pl.Float64,
    "x1": pl.Float64,
    "y1": pl.Float64,
    "x2": pl.Float64,
    "y2": pl.Float64,
}


def anomalous_runs(frames: np.ndarray, flags: np.ndarray, min_len: int, min_gap: int) -> list[tuple[int, int]]:
    """(first, last) frame of each event: flagged frames, merged across gaps shorter than `min_gap`
    frames, kept when they span at least `min_len` frames (gaps inside included)."""
    if min_len < 1 or min_gap < 0:
        raise UsageError(f"events: min_len {min_len} must be ≥ 1 and min_gap {min_gap} ≥ 0")
    flagged = np.asarray(frames)[np.asarray(flags, dtype=bool)]
    if len(flagged) == 0:
        return []
    flagged = np.sort(flagged)
    gaps = np.diff(flagged) - 1  # normal frames between consecutive flagged frames
    cuts = np.flatnonzero(gaps >= max(min_gap, 1))
    starts = np.concatenate([[0], cuts + 1])
    ends = np.concatenate([cuts, [len(flagged) - 1]])
    runs = [(int(flagged[s]), int(flagged[e])) for s, e in zip(starts, ends, strict=True)]
    return [(first, last) for first, last in runs if last - first + 1 >= min_len]


def _fps(video_frames: pl.DataFrame, fps: Mapping[str, float] | None, video: str) -> float | None:
    if fps is not None and fps.get(video):
        return float(fps[video])
    if "time_s" in video_frames.columns:
        timed = video_frames.filter(pl.col("frame") > 0).head(1)
        if len(timed) and timed["time_s"][0]:
            return float(timed["frame"][0] / timed["time_s"][0])
    return None


def _top_boxes(regions: pl.DataFrame | None) -> dict[str, pl.DataFrame]:
    """Per video, the highest-scoring box of each frame."""
    if regions is None or len(regions) == 0:
        return {}
    top = regions.sort("score", descending=True).unique(["video", "frame"], keep="first")
    return {key[0]: group.sort("frame") for key, group in top.group_by("video")}


def find_events(
    frames: pl.DataFrame,
    regions: pl.DataFrame | None = None,
    *,
    min_len: int = defaults.EVENT_MIN_LEN,
    min_gap: int = defaults.EVENT_MIN_GAP,
    fps: Mapping[str, float] | None = None,
    classes: Mapping[str, ClassScores | None] | None = None,
) -> pl.DataFrame:
    """Events of every video in a frames table (video, frame, score, is_anomaly; score_norm, time_s
    and provenance columns are used when present). One model's rows at a time: the caller splits.
    `classes` (per video, for models that name classes) adds each event's class, its probability
    and every class's (`class_probs`), from the mean frame probabilities over the event."""
    carried = [c for c in CARRIED if c in frames.columns]
    top = _top_boxes(regions)
    rows: list[dict] = []
    named: list[tuple[Sequence[str], np.ndarray]] = []  # per event, when its video names classes
    for (video,), group in frames.sort("video", "frame").group_by("video", maintain_order=True):
        frame_numbers = group["frame"].to_numpy()
        runs = anomalous_runs(frame_numbers, group["is_anomaly"].to_numpy(), min_len, min_gap)
        if not runs:
            continue
        rate = _fps(group, fps, video)
        scores = group["score"].to_numpy()
        norms = group["score_norm"].to_numpy() if "score_norm" in group.columns else None
        first = group.row(0, named=True)
        boxes = top.get(video)
        for start, end in runs:
            inside = np.flatnonzero((frame_numbers >= start) & (frame_numbers <= end))
            peak = inside[int(np.argmax(scores[inside]))]
            row = {
                "video": video,
                "start_frame": start,
                "end_frame": end,
                "n_frames": end - start + 1,
                "start_s": start / rate if rate else None,
                "end_s": (end + 1) / rate if rate else None,
                "peak_frame": int(frame_numbers[peak]),
                "peak_score": float(scores[peak]),
                "peak_score_norm": float(norms[peak]) if norms is not None else None,
                "x1": None,
                "y1": None,
                "x2": None,
                "y2": None,
            }
            if boxes is not None:
                within = boxes.filter(pl.col("frame").is_between(start, end))
                if len(within):
                    row |= {
                        "x1": float(within["x1"].min()),
                        "y1": float(within["y1"].min()),
                        "x2": float(within["x2"].max()),
                        "y2": float(within["y2"].max()),
                    }
            rows.append(row | {c: first[c] for c in carried})
            known = (classes or {}).get(video)
            if known is not None:
                named.append((known.names, known.frame_probs[inside].mean(axis=0)))  # rows are frames in order
    schema = SCHEMA | {c: frames.schema[c] for c in carried}
    table = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    if not named or len(named) != len(table):
        return table
    return table.with_columns(class_columns(named[0][0], np.stack([probs for _, probs in named])))


def class_columns(names: Sequence[str], probs: np.ndarray) -> list[pl.Series]:
    """class, class_prob and class_probs (a struct: every class's probability) for rows of `probs`."""
    best = probs.argmax(axis=1)
    return [
        pl.Series("class", [names[i] for i in best], dtype=pl.String),
        pl.Series("class_prob", probs[np.arange(len(best)), best], dtype=pl.Float64),
        pl.DataFrame({name: np.asarray(probs[:, i], np.float64) for i, name in enumerate(names)}).to_struct(
            "class_probs"
        ),
    ]


def parse_since(text: str | date | None, today: date | None = None) -> date | None:
    """`--since`: a date (YYYY-MM-DD), `today`, `yesterday` or N days back as `Nd` (UTC)."""
    if text is None or isinstance(text, date):
        return text
    today = today or datetime.now(UTC).date()
    value = text.strip().lower()
    if value in ("today", "yesterday"):
        return today - timedelta(days=value == "yesterday")
    if value.endswith("d") and value[:-1].isdigit():
        return today - timedelta(days=int(value[:-1]))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a date YYYY-MM-DD, today, yesterday, or a number of days back (e.g. 1d)"
        ) from None


def order(events: pl.DataFrame, keys: Sequence[str] = ("date", "model", "video", "start_frame")) -> pl.DataFrame:
    present = [k for k in keys if k in events.columns]
    return events.sort(present) if present else events
