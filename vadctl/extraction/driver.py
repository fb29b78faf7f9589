"""The driver of an extraction run: plan, hand out work, follow each video to its result.

It runs where `api.extract` is called and writes nothing to the store: whole videos are written
by the tasks that hold their locks; for a long video the driver takes the video's lock itself and
lends it to the video's prepare, segment and join tasks (several processes cannot share one lock
file), releasing it after the join's commit. Scheduling is the executor's; the driver only submits
a video's next step when the previous one has come back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from filelock import Timeout

from vadctl.common.checks import seconds_text
from vadctl.common.progress import Progress
from vadctl.executors.base import Crashed, Pool
from vadctl.extraction.extractor import (
    EXTRACTING,
    FAILED,
    FAILED_EARLIER,
    UP_TO_DATE,
    Extractor,
    ExtractReport,
    SegmentDone,
    SegmentedVideo,
    Split,
    VideoResult,
)
from vadctl.extraction.work import Join, Prepare, RecordCrash, SegmentTask, Whole, video_of
from vadctl.video.catalog import VideoSource

TRIVIAL = {"skip": UP_TO_DATE, "failed earlier": FAILED_EARLIER, "failed": FAILED}


class _Run:
    def __init__(self, extractor: Extractor, pool: Pool, progress: Progress):
        self.extractor = extractor
        self.pool = pool
        self.progress = progress
        self.results: dict[str, VideoResult] = {}
        self.locks: dict[str, object] = {}  # video → lock the driver holds for a segmented video
        self.segments: dict[str, list[SegmentDone]] = {}
        self.deferred: list = []  # plans (whole) or Split outcomes met while another process held the video
        self.waiting = False  # second pass: wait for videos other processes hold

    def finish(self, result: VideoResult) -> None:
        self.results[result.video_id] = result
        self.release(result.video_id)
        self.progress.video_finished(result)

    def release(self, video_id: str) -> None:
        lock = self.locks.pop(video_id, None)
        if lock is not None:
            lock.release()

    def locked_out(self, video_id: str) -> VideoResult:
        wait = self.extractor.wait_timeout
        return VideoResult(video_id, FAILED, error=f"video locked by another process for over {seconds_text(wait)}")

    def split(self, outcome: Split) -> None:
        """A long video: take its lock for the prepare → segments → join chain."""
        video_id = outcome.plan.source.video_id
        lock = self.extractor.store.video_lock(self.extractor.split, video_id)
        try:
            lock.acquire(timeout=self.extractor.wait_timeout if self.waiting else 0)
        except Timeout:
            if self.waiting:
                self.finish(self.locked_out(video_id))
            else:
                self.deferred.append(outcome)
            return
        self.locks[video_id] = lock
        self.pool.submit(Prepare(outcome.plan))

    def handle(self, item, outcome) -> None:
        video_id = video_of(item)
        if isinstance(outcome, Crashed):
            self.crashed(item, outcome.reason)
        elif isinstance(item, Whole) and outcome is None:
            if self.waiting:
                self.finish(self.locked_out(video_id))
            else:
                self.deferred.append(item.plan)
        elif isinstance(outcome, Split):
            self.split(outcome)
        elif isinstance(outcome, SegmentedVideo):
            self.segments[video_id] = []
            for segment in outcome.segments:
                self.pool.submit(SegmentTask(outcome, segment.index))
        elif isinstance(outcome, SegmentDone):
            done = self.segments[video_id]
            done.append(outcome)
            if len(done) == len(item.job.segments):
                self.pool.submit(Join(item.job, tuple(sorted(done, key=lambda d: d.index))))
        elif isinstance(outcome, VideoResult):
            self.finish(outcome)
        else:
            raise TypeError(f"unexpected outcome {type(outcome).__name__} of {item.key}")

    def crashed(self, item, reason: str) -> None:
        """Work whose worker died twice: a segment counts as failed (its join records the video as
        failed); anything else is recorded failed by a last small task (or here, if that dies too)."""
        if isinstance(item, SegmentTask):
            self.handle(item, SegmentDone(item.index, 0, 0.0, reason, transient=True))
        elif isinstance(item, RecordCrash):
            self.finish(VideoResult(video_of(item), FAILED, error=item.reason))
        else:
            plan = item.job.plan if hasattr(item, "job") else item.plan
            lent = video_of(item) in self.locks
            self.pool.submit(RecordCrash(plan, reason, lent, self.extractor.wait_timeout))

    def drain(self) -> None:
        while self.pool.busy:
            for item, outcome in self.pool.completed():
                self.handle(item, outcome)


def drive(extractor: Extractor, sources: Sequence[VideoSource], pool: Pool, progress: Progress) -> ExtractReport:
    """Extract `sources` with `pool`; returns the run's report (videos in the order given)."""
    started = time.perf_counter()
    run = _Run(extractor, pool, progress)
    interrupted = True
    try:
        plans = extractor.plans(sources)
        progress.planned(len(plans), sum(p.action in EXTRACTING for p in plans))
        pool.start(progress)
        for plan in plans:
            if plan.action in TRIVIAL:
                run.finish(VideoResult(plan.source.video_id, TRIVIAL[plan.action], error=plan.error))
            else:
                pool.submit(Whole(plan, 0))
        run.drain()
        run.waiting = True  # another process held these: wait for it, then see what is left
        for deferred in run.deferred:
            if isinstance(deferred, Split):
                run.split(deferred)
            else:
                pool.submit(Whole(deferred, extractor.wait_timeout))
        run.drain()
        interrupted = False
    finally:
        pool.close(interrupted=interrupted)
        for video_id in list(run.locks):
            run.release(video_id)
    ordered = [run.results[source.video_id] for source in sources]
    return extractor.report(ordered, time.perf_counter() - started)
