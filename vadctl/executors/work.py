"""The units of extraction work, and how a worker performs one with its extractor.

A video is one `Whole` task, unless it is long: then `Prepare` (the new version's entries for the
whole video, beside the committed one), one `SegmentTask` per chunk-aligned segment (any worker,
in parallel), and `Join` after the last one (ragged parts joined, then the video's one commit).
The video's lock is held by the driver from `Prepare` to `Join`; `Whole` tasks take it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vadctl.extract import Extractor, SegmentDone, SegmentedVideo, _Plan
from vadctl.progress import Progress


@dataclass(frozen=True)
class Whole:
    plan: _Plan
    timeout: float  # seconds to wait for the video's lock (0 on the first pass)

    @property
    def key(self) -> str:
        return f"whole:{self.plan.source.video_id}"


@dataclass(frozen=True)
class Prepare:
    plan: _Plan

    @property
    def key(self) -> str:
        return f"prepare:{self.plan.source.video_id}"


@dataclass(frozen=True)
class SegmentTask:
    job: SegmentedVideo
    index: int

    @property
    def key(self) -> str:
        return f"segment:{self.job.plan.source.video_id}:{self.index}"


@dataclass(frozen=True)
class Join:
    job: SegmentedVideo
    done: tuple[SegmentDone, ...]

    @property
    def key(self) -> str:
        return f"join:{self.job.plan.source.video_id}"


@dataclass(frozen=True)
class RecordCrash:
    plan: _Plan
    reason: str
    lent: bool  # the driver holds the video's lock for this work (segmented videos)
    timeout: float

    @property
    def key(self) -> str:
        return f"crash:{self.plan.source.video_id}"


def video_of(item: Any) -> str:
    return item.job.plan.source.video_id if hasattr(item, "job") else item.plan.source.video_id


def perform(extractor: Extractor, item: Any, progress: Progress) -> Any:
    """Run one unit of work with this worker's extractor; the outcome goes back to the driver."""
    if isinstance(item, Whole):
        return extractor.extract_whole(item.plan, item.timeout, progress)
    if isinstance(item, Prepare):
        return extractor.prepare_segments(item.plan, progress)
    if isinstance(item, SegmentTask):
        return extractor.extract_segment(item.job, item.index, progress)
    if isinstance(item, Join):
        return extractor.join_segments(item.job, item.done)
    if isinstance(item, RecordCrash):
        return extractor.record_crash(item.plan, item.reason, None if item.lent else item.timeout)
    raise TypeError(f"not a unit of extraction work: {type(item).__name__}")
