"""What the review page shows, read from where `vadctl run` or `vadctl score` left it.

A review reads a results dataset folder, one frame-scores file of `vadctl score`, or a folder of
them (the demo's `scores/`). Anything else is refused with one line naming the path, so a typo
never yields an empty page that reads as a quiet night. Each event gets a stable key (its model
file, run, video content and span): the page's entry for it is rendered once and kept.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from vadctl.errors import UsageError
from vadctl.nightly.results import KINDS, META_DIR, ResultsDataset
from vadctl.scoring.provenance import read_metadata

SCORING = ("model", "model_sha256", "run_id", "split", "video", "video_fingerprint")  # one video scored once
TIMELINE = ["video", "frame", "score", "threshold", "is_anomaly"]


def _key(values) -> str:
    return hashlib.sha256("\x1f".join("" if v is None else str(v) for v in values).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Origin:
    """One place events came from: a results dataset or a scores file; reads their frames and boxes."""

    path: Path
    is_dataset: bool

    def _scan(self, kind: str, models: list[str]) -> pl.LazyFrame | None:
        if self.is_dataset:
            scan = ResultsDataset(self.path).scan(kind)
            return None if scan is None else scan.filter(pl.col("model").is_in(models))
        path = self.path if kind == "frames" else self.path.with_name(f"{self.path.stem}.{kind}.parquet")
        return pl.scan_parquet(path) if path.is_file() else None

    def rows(self, kind: str, scorings: pl.DataFrame) -> pl.DataFrame | None:
        """Frames (or regions) of the given scorings (rows of model, run_id, video), with those columns
        where the origin has them."""
        scan = self._scan(kind, scorings["model"].unique().to_list())
        if scan is None:
            return None
        names = scan.collect_schema().names()
        on = [c for c in ("model", "run_id", "video") if c in names]
        table = scan.join(scorings.lazy().select(on).unique(), on=on, how="semi")
        keep = [c for c in dict.fromkeys((*TIMELINE, "x1", "y1", "x2", "y2", *on)) if c in names]
        if kind == "frames":
            keep = [c for c in keep if c not in ("x1", "y1", "x2", "y2")]
        return table.select(keep).collect()


@dataclass
class ReviewInput:
    """The events to review (one row each, with `key`, `scoring`, `night`, `origin`), those the page
    shows in full (the `top` highest peaks, or all), and where they came from."""

    events: pl.DataFrame
    shown: pl.DataFrame
    origins: dict[str, Origin]


def _has_frames(path: Path) -> bool:
    """A frame-scores file of `vadctl score` (anything else, Parquet or not, is not one)."""
    try:
        return {"video", "frame", "score", "is_anomaly"} <= set(pl.read_parquet_schema(path))
    except Exception:
        return False


def origins_of(results: Path) -> list[Origin]:
    """Where the events are, or a one-line `UsageError` saying why `results` is none of the three."""
    if results.is_file():
        if not _has_frames(results):
            raise UsageError(f"{results}: not a results dataset folder nor a frame-scores file of `vadctl score`")
        return [Origin(results, False)]
    if not results.is_dir():
        raise UsageError(f"{results}: no such results dataset or scores file")
    names = {p.name for p in results.iterdir()}
    if names & {*KINDS, META_DIR}:
        if not ResultsDataset(results).part_files("frames"):
            raise UsageError(f"{results}: empty results dataset: nothing scored yet (run `vadctl run` first)")
        return [Origin(results, True)]
    if not names:
        raise UsageError(f"{results}: empty folder, not a vadctl results dataset (no frames/ or events/ in it)")
    files = sorted(p for p in results.glob("*.parquet") if p.name.count(".") == 1 and _has_frames(p))
    if not files:
        raise UsageError(
            f"{results}: not a vadctl results dataset (no frames/, events/ or _vadctl/ in it) "
            "nor a folder of `vadctl score` files"
        )
    return [Origin(p, False) for p in files]


def _dataset_events(results: Path, since: str | date | None, model: str | None) -> pl.DataFrame:
    """The events parts as `vadctl events` reads them, without importing the scoring stage (a rerun
    with nothing new should cost little more than reading them)."""
    if since is not None:
        from vadctl.scoring.events import parse_since

        since = parse_since(since)
    scan = ResultsDataset(results).scan("events", since=since, model=model)
    if scan is None:
        return pl.DataFrame(schema={"video": pl.String, "start_frame": pl.Int64, "end_frame": pl.Int64})
    events = scan.collect()
    stores = {part: read_metadata(Path(part)).get("store", "") for part in events["part"].unique().to_list()}
    return events.with_columns(pl.col("part").replace_strict(stores, return_dtype=pl.String).alias("store")).drop(
        "part"
    )


def _file_events(path: Path, since: str | date | None, model: str | None) -> pl.DataFrame:
    from vadctl.review.event_reader import read_events

    return read_events(path, since=since, model=model)


def load(
    results: Path,
    *,
    since: str | date | None = None,
    model: str | None = None,
    video: str | None = None,
    top: int | None = None,
    store: Path | None = None,
) -> ReviewInput:
    """The events of `results` to review (highest peak first), each with its keys."""
    origins = origins_of(Path(results))
    tables = []
    for origin in origins:
        events = (
            _dataset_events(origin.path, since, model) if origin.is_dataset else _file_events(origin.path, since, model)
        )
        if store is not None:
            events = events.with_columns(pl.lit(str(store)).alias("store"))
        tables.append(events.with_columns(pl.lit(str(origin.path)).alias("origin")))
    events = pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame()
    if video is not None and len(events):
        chosen = [v for v in events["video"].unique().to_list() if v == video or fnmatch.fnmatchcase(v, video)]
        events = events.filter(pl.col("video").is_in(chosen))
    wanted = {c: pl.String for c in (*SCORING, "class", "store")} | {
        "date": pl.Date,
        "scored_at": pl.Datetime("us", "UTC"),
    }
    for column, dtype in wanted.items():
        if column not in events.columns:
            events = events.with_columns(pl.lit(None, dtype=dtype).alias(column))
    events = events.with_columns(pl.coalesce(pl.col("date"), pl.col("scored_at").dt.date()).alias("night"))
    rows = events.to_dicts()
    keys = [_key([r.get(c) for c in SCORING] + [r["start_frame"], r["end_frame"]]) for r in rows]
    scorings = [_key([r.get(c) for c in SCORING]) for r in rows]
    events = events.with_columns(
        pl.Series("key", keys, dtype=pl.String), pl.Series("scoring", scorings, dtype=pl.String)
    ).unique("key", keep="first", maintain_order=True)
    events = events.sort(["peak_score", "key"], descending=[True, False], nulls_last=True)
    shown = events.head(top) if top is not None else events
    return ReviewInput(events, shown, {str(o.path): o for o in origins})
