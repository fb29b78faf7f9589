"""Events to review, read from a results dataset or computed from a one-off scores file, with a
thumbnail of each event's peak frame on request (`vadctl events`, `api.events`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from vadctl import defaults
from vadctl.common.progress import Progress
from vadctl.errors import UsageError
from vadctl.nightly.results import ResultsDataset
from vadctl.scoring.events import SCHEMA, find_events, order, parse_since
from vadctl.scoring.provenance import read_metadata


def read_events(
    results: Path,
    *,
    since: str | date | None = None,
    model: str | None = None,
    min_len: int | None = None,
    min_gap: int | None = None,
    thumbs: Path | None = None,
    store: Path | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    progress = progress or Progress()
    day = parse_since(since)
    if results.is_dir():
        if min_len is not None or min_gap is not None:
            raise UsageError(
                f"{results}: a results dataset holds the events `vadctl run` found with the job's [events] "
                "settings; --min-len and --min-gap apply to a scores file of `vadctl score`"
            )
        events, regions = _from_dataset(ResultsDataset(results), day, model)
    elif results.is_file():
        events, regions = _from_scores_file(results, day, model, min_len, min_gap)
    else:
        raise UsageError(f"{results}: no such results dataset or scores file")
    events = order(events)
    if thumbs is not None:
        if store is not None:
            events = events.with_columns(pl.lit(str(store)).alias("store"))
        from vadctl.review.thumbs import write_thumbnails

        paths, notes = write_thumbnails(events, regions, thumbs, {s: s for s in events["store"].unique().to_list()})
        for note in notes:
            progress.note(note)
        events = events.with_columns(pl.Series("thumbnail", paths, dtype=pl.String))
    return events


def _from_dataset(dataset: ResultsDataset, day: date | None, model: str | None):
    scan = dataset.scan("events", since=day, model=model)
    if scan is None:
        return pl.DataFrame(schema=SCHEMA | {"model": pl.String, "date": pl.Date, "store": pl.String}), None
    events = scan.collect()
    stores = {part: read_metadata(Path(part)).get("store", "") for part in events["part"].unique().to_list()}
    events = events.with_columns(pl.col("part").replace_strict(stores, return_dtype=pl.String).alias("store")).drop(
        "part"
    )
    regions = dataset.scan("regions", since=day, model=model)
    if regions is not None and len(events):
        peaks = events.select("run_id", "video", pl.col("peak_frame").alias("frame")).unique()
        regions = regions.join(peaks.lazy(), on=["run_id", "video", "frame"], how="semi").collect()
    else:
        regions = None
    return events, regions


def _from_scores_file(path: Path, day: date | None, model: str | None, min_len: int | None, min_gap: int | None):
    try:
        frames = pl.read_parquet(path)
    except Exception as error:
        raise UsageError(f"{path}: cannot read as Parquet: {error}") from None
    missing = {"video", "frame", "score", "is_anomaly"} - set(frames.columns)
    if missing:
        raise UsageError(f"{path}: not a frame-scores file of `vadctl score` (no column {', '.join(sorted(missing))})")
    if day is not None and "scored_at" in frames.columns:
        frames = frames.filter(pl.col("scored_at").dt.date() >= day)
    if model is not None and "model" in frames.columns:
        frames = frames.filter(pl.col("model") == model)
    regions_file = path.with_name(path.stem + ".regions.parquet")
    regions = pl.read_parquet(regions_file) if regions_file.is_file() else None
    events = find_events(
        frames,
        regions,
        min_len=defaults.EVENT_MIN_LEN if min_len is None else min_len,
        min_gap=defaults.EVENT_MIN_GAP if min_gap is None else min_gap,
    )
    store = read_metadata(path).get("store", "")
    return events.with_columns(pl.lit(store).alias("store")), regions
