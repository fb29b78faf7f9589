"""`vadctl review`: the morning's static review site, written incrementally and crash-safe.

    OUT/index.html                 the page (written last, by rename)
    OUT/assets/review.{css,js}     its style and script (vendored here: no network)
    OUT/events/<key>/              one folder per event: strip.png, clip.webp, timeline.svg, entry.json
    OUT/videos/<scoring>.svg       the whole score timeline of one scored video, every event marked
    OUT/.vadctl-review/            not part of the page: lock, cached store facts

An event's folder is built under a hidden temporary name and renamed into place complete, so the
page never points at a half-written entry and a killed run leaves nothing a rerun trusts. An event
(model file, run, video content, span) never changes once scored, so a rerun renders only events it
has no folder for and rewrites the index: after a night with nothing new it decodes and plots
nothing. Old folders are never removed (an event outside today's filters keeps its folder).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import polars as pl
from filelock import FileLock, Timeout

from vadctl.common.atomic import write_atomic
from vadctl.common.progress import Progress
from vadctl.errors import StoreBusyError, UsageError, VadctlError
from vadctl.review import site_html
from vadctl.review.site_input import Origin, ReviewInput, load

META = ".vadctl-review"
TMP = ".tmp-"
ASSETS = ("review.css", "review.js")
LOCK_WAIT_S = 600


@dataclass
class SiteReport:
    """What a review wrote: the page, events selected and shown, entries rendered now or kept."""

    index: Path
    events: int
    shown: int
    rendered: int
    kept: int
    notes: list[str] = field(default_factory=list)


def _write_text(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _facts(out: Path, events: pl.DataFrame, sources) -> dict[str, dict]:
    """Source path and camera per scored video, cached in OUT (the store is opened only for new ones)."""
    cache = out / META / "facts.json"
    known: dict[str, dict] = {}
    if cache.is_file():
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
    missing = events.filter(~pl.col("scoring").is_in(list(known))).unique("scoring", keep="first")
    for event in missing.iter_rows(named=True):
        found = sources.video(event)
        known[event["scoring"]] = {"source": found.source, "camera": found.camera}
    if len(missing):
        _write_text(cache, json.dumps(known, indent=0, sort_keys=True))
    return known


def _per_scoring(origins: dict[str, Origin], wanted: pl.DataFrame, kind: str) -> dict[str, pl.DataFrame]:
    """Rows of `kind` (frames, regions) for each wanted scoring (rows of scoring, origin, model, run_id, video)."""
    found: dict[str, pl.DataFrame] = {}
    for (origin,), group in wanted.group_by("origin"):
        rows = origins[origin].rows(kind, group)
        if rows is None or not len(rows):
            continue
        on = [c for c in ("model", "run_id", "video") if c in rows.columns]
        tagged = rows.join(group.select("scoring", *on).unique(), on=on, how="inner")
        for (scoring,), part in tagged.group_by("scoring"):
            found[scoring] = part
    return found


def _render_entry(out: Path, event: dict, frames, regions, sources, notes: list[str]) -> None:
    from vadctl.review.site_media import boxes_by_frame, decode_span, write_media
    from vadctl.review.site_plots import timeline

    key = event["key"]
    folder = out / "events" / f"{TMP}{key}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rendered: dict = {"media": False, "timeline": False, "note": None}
    span = (int(event["start_frame"]), int(event["end_frame"]), int(event["peak_frame"]))
    if frames is not None:
        timeline(frames, [span], folder / "timeline.svg", highlight=True)
        rendered["timeline"] = True
    facts = sources.video(event)
    problem = facts.problem
    if problem is None:
        try:
            clip, fps = decode_span(facts.source, event["video"], span[0], span[1] + 1)
            write_media(event, clip, boxes_by_frame(regions), folder, fps)
            rendered["media"] = True
        except VadctlError as error:
            problem = f"cannot decode: {error}"
    if problem is not None:
        rendered["note"] = problem
        notes.append(f"{event['video']} frames {span[0]}–{span[1]}: {problem}")
    (folder / "entry.json").write_text(json.dumps(rendered), encoding="utf-8")
    try:
        os.rename(folder, out / "events" / key)
    except OSError:  # another complete version is in place already
        shutil.rmtree(folder, ignore_errors=True)


def _entry_info(out: Path, key: str) -> dict:
    try:
        return json.loads((out / "events" / key / "entry.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"note": "this event's entry is unreadable"}


def _clean_leftovers(out: Path) -> None:
    """Temporary folders a killed review left (we hold the lock: no live writer owns them)."""
    events = out / "events"
    if events.is_dir():
        for name in os.listdir(events):
            if name.startswith(TMP):
                shutil.rmtree(events / name, ignore_errors=True)


class _Sources:
    """`site_media.Sources`, imported on first use: a rerun with nothing new opens no store and
    imports neither zarr nor a decoder."""

    def __init__(self):
        self._sources = None

    def video(self, event: dict):
        if self._sources is None:
            from vadctl.review.site_media import Sources

            self._sources = Sources()
        return self._sources.video(event)


def _build(out: Path, data: ReviewInput, title: str, progress: Progress) -> SiteReport:
    sources = _Sources()
    notes: list[str] = []
    _clean_leftovers(out)
    facts = _facts(out, data.events, sources)
    shown = data.shown
    new = shown.filter(~pl.col("key").map_elements(lambda k: (out / "events" / k).is_dir(), return_dtype=pl.Boolean))
    scorings = shown.unique("scoring", keep="first", maintain_order=True)
    plot_videos = scorings.filter(
        ~pl.col("scoring").map_elements(lambda s: (out / "videos" / f"{s}.svg").is_file(), return_dtype=pl.Boolean)
    )
    wanted = pl.concat([new, plot_videos], how="diagonal_relaxed").unique("scoring")
    wanted = wanted.select("scoring", "origin", "model", "run_id", "video")
    frames = _per_scoring(data.origins, wanted, "frames") if len(wanted) else {}
    regions = _per_scoring(data.origins, wanted.filter(pl.col("scoring").is_in(new["scoring"].to_list())), "regions")
    if len(plot_videos):
        from vadctl.review.site_plots import timeline

        for scoring in plot_videos["scoring"].to_list():
            if scoring in frames:
                spans = data.events.filter(pl.col("scoring") == scoring).select(
                    "start_frame", "end_frame", "peak_frame"
                )
                path = out / "videos" / f"{scoring}.svg"
                write_atomic(path, lambda tmp, s=scoring, sp=spans.rows(): timeline(frames[s], sp, Path(tmp), False))
    for event in new.iter_rows(named=True):
        frames_of = frames.get(event["scoring"])
        boxes = regions.get(event["scoring"])
        if boxes is not None:
            boxes = boxes.filter(pl.col("frame").is_between(event["start_frame"], event["end_frame"]))
        _render_entry(out, event, frames_of, boxes, sources, notes)
    for note in dict.fromkeys(notes):
        progress.note(note)
    rows = shown.to_dicts()
    cameras = {s: f.get("camera", "") for s, f in facts.items()}
    entries = "".join(site_html.entry(e, facts.get(e["scoring"], {}), _entry_info(out, e["key"])) for e in rows)
    timelines = {s for s in scorings["scoring"].to_list() if (out / "videos" / f"{s}.svg").is_file()}
    body = (
        site_html.overview(data.events, cameras)
        + site_html.top_table(rows, cameras)
        + '<section id="entries"><h2>Events</h2>'
        + (entries or '<p id="no-events">No events: nothing was flagged.</p>')
        + "</section>"
        + site_html.video_section(scorings.to_dicts(), data.events, timelines)
    )
    for name in ASSETS:
        _write_text(out / "assets" / name, resources.files("vadctl.review").joinpath("assets", name).read_text())
    index = out / "index.html"
    _write_text(index, site_html.page(title, body))
    return SiteReport(index, len(data.events), len(shown), len(new), len(shown) - len(new), list(dict.fromkeys(notes)))


def write_site(
    results: Path,
    out: Path,
    *,
    since: str | date | None = None,
    model: str | None = None,
    video: str | None = None,
    top: int | None = None,
    store: Path | None = None,
    progress: Progress | None = None,
) -> SiteReport:
    """Write (or bring up to date) the review site of `results` in `out`; see the module docstring."""
    if top is not None and top < 1:
        raise UsageError(f"--top {top}: must be at least 1")
    results, out = Path(results), Path(out)
    data = load(results, since=since, model=model, video=video, top=top, store=store)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.resolve() == results.resolve() or results.resolve() in out.resolve().parents:
        raise UsageError(f"{out}: inside the results dataset {results}; write the review beside it")
    (out / META).mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / META / "lock")
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except Timeout:
        raise StoreBusyError(f"{out}: another `vadctl review` has been writing here for {LOCK_WAIT_S} s") from None
    try:
        return _build(out, data, f"vadctl review: {results.name or results}", progress or Progress())
    finally:
        lock.release()
