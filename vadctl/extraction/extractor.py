"""Run featurizers over a catalog of videos into the store, doing only new or changed work.

Per video: compare its fingerprint with the store, decide what is missing, take the video's lock,
decode it once in windows (prefetched on a second thread), feed every needed featurizer, write
the requested ones and commit each entry. A video that cannot be decoded is recorded as failed
with its reason and the batch goes on. Videos locked by another process are deferred to the end,
then waited for, so two runs over one archive share the work instead of colliding.
"""

from __future__ import annotations

import copy
import errno
import os
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from filelock import Timeout

from vadctl import defaults
from vadctl.common.faults import fault_point
from vadctl.common.progress import Progress
from vadctl.common.specs import FeatureSpec, Fingerprint
from vadctl.common.threads import thread_cap
from vadctl.errors import StoreError, TruncatedVideoError, VideoError
from vadctl.extraction.lanes import in_lanes
from vadctl.extraction.segments import Segment, SegmentDone, SegmentedVideo, Split, plan_segments, rows_in, rows_inside
from vadctl.features.base import Featurizer, Output
from vadctl.store import FeatureStore, VideoRecord, check_split
from vadctl.video.catalog import Skipped, VideoSource
from vadctl.video.reader import VideoReader, prefetch

if TYPE_CHECKING:
    from vadctl.extraction.recipe import ExtractRecipe

EXTRACTED, UP_TO_DATE, FAILED, FAILED_EARLIER = "extracted", "up to date", "failed", "failed earlier"
PERMANENT, TRANSIENT = "permanent", "transient"
EXTRACTING = ("new", "replace", "update", "redo")  # plan actions that extract


# OS errors that say nothing about the video: a full disk or quota, failing or network storage,
# exhausted resources. A video failed by one is tried again by later runs (`defaults.TRANSIENT_ATTEMPTS`).
TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EIO", "EAGAIN", "ENOMEM", "ETIMEDOUT", "ESTALE", "EMFILE", "ENFILE", "ENOLCK")
    if hasattr(errno, name)
)


def is_transient(error: BaseException) -> bool:
    """Whether a failure comes from the machine rather than the video (an OS error such as ENOSPC
    or EIO, a timeout, memory), looking through the exceptions that wrapped it."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, TimeoutError | MemoryError):
            return True
        if isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS:
            return True
        error = error.__cause__ or error.__context__
    return False


@dataclass
class VideoResult:
    """What happened to one video. `computed`: featurizers that ran (written or needed in memory);
    `read`: upstream entries read back from the store instead of being computed again."""

    video_id: str
    status: str
    written: list[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    computed: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    segments: int = 0  # a long video extracted in this many segments (0: in one piece)
    failure: str | None = None  # a failed video's kind: "permanent", or "transient" (retried by later runs)
    attempts: int = 0  # failed attempts in a row, this one included
    truncated: str | None = None  # extracted from a file cut short, its frames kept: what is missing


@dataclass
class ExtractReport:
    split: str
    results: list[VideoResult]
    seconds: float
    specs: list[FeatureSpec]
    skipped: list[Skipped] = field(default_factory=list)  # found under the roots, not videos (FIFOs, ...)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[VideoResult]:
        return [r for r in self.results if r.status in (FAILED, FAILED_EARLIER)]

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results)

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "seconds": round(self.seconds, 3),
            "frames": self.frames,
            "extracted": self.count(EXTRACTED),
            "up_to_date": self.count(UP_TO_DATE),
            "failed": len(self.failed),
            "features": [spec.key for spec in self.specs],
            "videos": [
                {
                    "video": r.video_id,
                    "status": r.status,
                    "frames": r.frames,
                    "seconds": round(r.seconds, 3),
                    "written": r.written,
                    "computed": r.computed,
                    "read": r.read,
                    "segments": r.segments,
                    "error": r.error,
                    "failure": r.failure,
                    "attempts": r.attempts,
                    "truncated": r.truncated,
                }
                for r in self.results
            ],
            "skipped": [s.to_dict() for s in self.skipped],
        }


@dataclass
class PlannedVideo:
    """What a run would do with one video: action is new, replace (changed), update (features
    missing), redo (forced: this run's entries again, the others kept), refresh (touched, same
    content), skip (up to date), failed earlier or failed."""

    video_id: str
    action: str
    pending: list[str]
    error: str | None = None

    @property
    def extracts(self) -> bool:
        return self.action in EXTRACTING


@dataclass
class _Plan:
    source: VideoSource
    action: str  # "new", "replace", "update", "redo", "refresh", "skip", "failed earlier"
    fingerprint: Fingerprint | None
    pending: list[FeatureSpec]
    error: str | None = None


class Extractor:
    """Extract `requested` features (built with their dependencies in `featurizers`) into a split."""

    lanes = True  # featurizers side by side in threads where cores allow (`lanes`); False: one after the other

    def __init__(self, store: FeatureStore | None, featurizers: Sequence[Featurizer], recipe: ExtractRecipe):
        self.store = store  # None for a dry run against no store yet
        self.recipe = recipe
        self.featurizers = list(featurizers)
        self.by_name = {f.name: f for f in self.featurizers}
        self.split = check_split(recipe.split)
        self.scene = recipe.scene
        self.decode = recipe.decode
        self.clips = recipe.clips
        self.window = recipe.window
        self.force = recipe.force
        self.retry_failed = recipe.retry_failed
        self.keep_truncated = recipe.keep_truncated
        self.wait_timeout = recipe.wait
        self.debug = recipe.debug
        self.segment_frames = recipe.segment_frames or None  # split videos longer than this (None: never)
        self.specs: dict[str, FeatureSpec] = {}
        for featurizer in self.featurizers:
            self.specs[featurizer.name] = featurizer.spec(self.decode, self.specs, self.clips)
        self.requested = [self.specs[name] for name in recipe.features]
        self.requested_keys = [spec.key for spec in self.requested]  # once: a key is a hash of the spec

    # ----- planning ----------------------------------------------------------------------------
    def _plan(self, source: VideoSource, record: VideoRecord | None) -> _Plan:
        try:
            state, fingerprint = source.status_against(record.fingerprint if record else None)
        except OSError as error:
            return _Plan(source, "failed", None, [], f"{source.path}: cannot read: {error.strerror or error}")
        if record is None or state == "new":
            return _Plan(source, "new", fingerprint, list(self.requested))
        if state == "changed" or (self.force and record.status == "failed"):
            return _Plan(source, "replace", fingerprint, list(self.requested))
        if record.status == "failed":
            if self.retry_failed or self._retries(record):
                return _Plan(source, "replace", fingerprint, list(self.requested))
            return _Plan(source, "failed earlier", fingerprint, [], self._earlier(record))
        if record.source_changed or self.store.clips_problem(record):
            return _Plan(source, "replace", fingerprint, list(self.requested))
        if self.force:  # this run's entries again; the video's other entries stay as they are
            return _Plan(source, "redo", fingerprint, list(self.requested))
        pending = [
            spec
            for spec, key in zip(self.requested, self.requested_keys, strict=True)
            if key not in record.features or self.store.entry_problem(record, key)
        ]
        if pending:
            return _Plan(source, "update", fingerprint, pending)
        return _Plan(source, "refresh" if state == "touched" else "skip", fingerprint, [])

    @staticmethod
    def _retries(record: VideoRecord) -> bool:
        """A transient failure (full disk, I/O error, lost worker or node) is tried again by the
        next run, up to `defaults.TRANSIENT_ATTEMPTS` attempts in a row; then it counts as
        permanent until `--retry-failed`. Records without a kind (older stores) are permanent."""
        return record.failure_kind == TRANSIENT and record.attempts < defaults.TRANSIENT_ATTEMPTS

    @staticmethod
    def _earlier(record: VideoRecord) -> str | None:
        if record.failure_kind != TRANSIENT:
            return record.error
        return f"{record.error} (a transient failure, {record.attempts} attempts: no more without --retry-failed)"

    def plan(
        self, sources: Sequence[VideoSource], records: Mapping[str, VideoRecord] | None = None
    ) -> list[PlannedVideo]:
        """What `run` would do with each video, doing none of it (dry runs); `records` stand in for
        the store's (e.g. {} when there is no store yet)."""
        if records is None:
            records = {r.video_id: r for r in self.store.videos(self.split, damaged_ok=True)}
        plans = (self._plan(source, records.get(source.video_id)) for source in sources)
        return [PlannedVideo(p.source.video_id, p.action, [s.key for s in p.pending], p.error) for p in plans]

    def _intact(self, record: VideoRecord | None, spec: FeatureSpec) -> bool:
        """Committed and passing the cheap integrity check (damaged entries are redone)."""
        return record is not None and record.has(spec) and self.store.entry_problem(record, spec.key) is None

    def plans(self, sources: Sequence[VideoSource]) -> list[_Plan]:
        """What each video needs, against the store as it is now (re-planned under each video's lock)."""
        records = {r.video_id: r for r in self.store.videos(self.split, damaged_ok=True)}
        return [self._plan(source, records.get(source.video_id)) for source in sources]

    def report(self, results: list[VideoResult], seconds: float) -> ExtractReport:
        return ExtractReport(self.split, results, seconds, list(self.requested))

    # ----- units of work (run wherever an executor puts them) ----------------------------------
    def extract_whole(self, plan: _Plan, timeout: float, progress: Progress) -> VideoResult | Split | None:
        """Extract one video under its lock. None: another process holds it (try again later);
        `Split`: the video is long, extract it in segments instead (nothing written)."""
        lock = self.store.video_lock(self.split, plan.source.video_id)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            return None
        try:
            # Re-plan under the lock: another process may have done (part of) the work meanwhile.
            plan = self._plan(plan.source, self._current(plan.source.video_id))
            if plan.action in ("skip", "failed earlier", "failed", "refresh"):
                return self._nothing_to_do(plan)
            fault_point("extract.started", plan.source.video_id)
            return self._extract(plan, progress)
        finally:
            lock.release()

    def _nothing_to_do(self, plan: _Plan) -> VideoResult:
        if plan.action == "refresh":
            self._refresh(plan)
        status = {"failed earlier": FAILED_EARLIER, "failed": FAILED}.get(plan.action, UP_TO_DATE)
        return VideoResult(plan.source.video_id, status, error=plan.error)

    def record_crash(self, plan: _Plan, reason: str, timeout: float | None) -> VideoResult:
        """A video whose extraction kept killing its worker (or whose Ray node was lost): recorded
        as failed, with the reason, as a transient failure: later runs try it again, a bounded
        number of times (`--retry-failed` after that). `timeout` None: the caller's driver holds
        the video's lock already."""
        lock = self.store.video_lock(self.split, plan.source.video_id)
        if timeout is not None:
            try:
                lock.acquire(timeout=timeout)
            except Timeout:
                return VideoResult(plan.source.video_id, FAILED, error=reason)
        try:
            self.store.clean_video(self.split, plan.source.video_id)
            previous = self.store.video(self.split, plan.source.video_id)
            return self._fail(plan, previous, reason, time.perf_counter(), transient=True)
        finally:
            if timeout is not None:
                lock.release()

    def _current(self, video_id: str) -> VideoRecord | None:
        """The video's record (caller holds its lock); an unreadable one is moved out of the store
        (kept in the sidecar's quarantine) and the video is extracted anew."""
        try:
            return self.store.video(self.split, video_id)
        except StoreError:
            self.store.quarantine(self.split, self.store.key(self.split, video_id))
            return None

    def _refresh(self, plan: _Plan) -> None:
        record = self.store.video(self.split, plan.source.video_id)
        if record is not None and plan.fingerprint is not None:
            record.fingerprint = plan.fingerprint
            self.store.save_video(record)

    # ----- extraction --------------------------------------------------------------------------
    def _run_plan(
        self, pending: Sequence[FeatureSpec], record: VideoRecord | None
    ) -> tuple[list[Featurizer], list[str]]:
        """(featurizers to compute, upstream entries to read from the store instead).

        Pending features are computed. An upstream is read from the store when it is committed,
        frame-level, and every consumer in this run takes only its stored form; otherwise it is
        computed too (with its own upstreams).
        """
        pending_names = {spec.name for spec in pending}
        compute: set[str] = set()
        load: set[str] = set()

        def need(name: str, stored_form_ok: bool) -> None:
            if name in compute:
                return
            spec = self.specs[name]
            if stored_form_ok and name not in pending_names and self._intact(record, spec) and spec.axis == "frame":
                load.add(name)
                return
            compute.add(name)
            load.discard(name)
            featurizer = self.by_name[name]
            for dep in featurizer.requires:
                need(dep, dep in featurizer.stored_inputs)

        for spec in pending:
            need(spec.name, False)
        return [f for f in self.featurizers if f.name in compute], sorted(load)

    def _stored_outputs(self, record: VideoRecord, names: Sequence[str]):
        """Per window, the stored dense arrays of committed upstream entries, as featurizer outputs."""
        entries = {name: self.store.entry(record, self.specs[name]) for name in names}
        arrays = {name: [a for a in entry.array_names if a != "clips"] for name, entry in entries.items()}

        def window_outputs(start: int, stop: int) -> dict[str, Output]:
            return {
                name: Output(
                    dense={a: entries[name].read(a, start, stop) for a in arrays[name]}, params=self.specs[name].params
                )
                for name in names
            }

        return window_outputs

    def _new_record(self, plan: _Plan, previous: VideoRecord | None, info) -> VideoRecord:
        """The record the new version will commit: the committed one with pending entries added or
        replaced (an update; a forced redo, unless the video decodes differently from its record:
        then its other entries describe other frames and go too), or new facts and a new clip table
        (a new video or a new version of one), with the sha256 of the source's whole content."""
        same = previous is not None and (previous.n_frames, previous.width, previous.height) == (
            info.n_frames,
            info.source_width,
            info.source_height,
        )
        if previous is not None and (plan.action == "update" or (plan.action == "redo" and same)):
            record = VideoRecord.from_attrs(copy.deepcopy(previous.to_attrs()))  # `previous` stays as it was
            record.scene = self.scene if self.scene is not None else record.scene
            if plan.action == "redo" and plan.fingerprint is not None:
                record.fingerprint = plan.fingerprint
            record.decoder = info.decoder
            return record
        self.store.prepare_video(self.split, plan.source.video_id)
        record = VideoRecord(
            self.split,
            plan.source.video_id,
            str(plan.source.path.resolve()),
            plan.fingerprint,
            n_frames=info.n_frames,
            fps=info.fps,
            height=info.source_height,
            width=info.source_width,
            scene=self.scene,
            clip_spec=self.clips.to_dict(),
            source_sha256=plan.source.content_sha256(),
            source_sha256_from="extract",
            decoder=info.decoder,
        )
        self.store.write_clips(record, self.clips.table(info.n_frames))
        return record

    def _reader(self, plan: _Plan, previous: VideoRecord | None, limit: int | None = None) -> VideoReader:
        """The video's reader. A file cut short raises `TruncatedVideoError` unless this run keeps
        truncated videos; one kept truncated earlier is read as it was kept (its recorded frames),
        whatever this run's option, when its new entries join the kept ones."""
        keep = self.keep_truncated
        if previous is not None and previous.status == "truncated" and plan.action not in ("new", "replace"):
            keep, limit = True, previous.n_frames if limit is None else limit
        return VideoReader(plan.source, self.decode, keep_truncated=keep, limit=limit)

    @staticmethod
    def _keep_part(error: VideoError, reader: VideoReader) -> bool:
        """A file kept truncated whose decoding stopped before the frames it seemed to hold: extract
        again up to where it stopped (always fewer frames than before, so this ends)."""
        return (
            isinstance(error, TruncatedVideoError) and reader.keep_truncated and 0 < error.frames < reader.info.n_frames
        )

    def _extract(
        self, plan: _Plan, progress: Progress, limit: int | None = None, again: bool = False
    ) -> VideoResult | Split:
        """Write the new version of a video beside whatever is committed, then switch to it in one
        record update (`FeatureStore.commit_video`); caller holds the video's lock. `limit`: read
        at most this many frames (`again`: a second pass over a file kept truncated)."""
        video_id = plan.source.video_id
        started = time.perf_counter()
        self.store.clean_video(self.split, video_id)  # leftovers of a killed or failed run
        previous = self.store.video(self.split, video_id)
        try:
            reader = self._reader(plan, previous, limit)
        except VideoError as error:
            return self._fail(plan, previous, str(error), started)
        info = reader.info
        running, loaded = self._run_plan(plan.pending, previous)
        if reader.truncated is None and self._plan_segments(info, running, plan.pending) is not None:
            reader.close()
            return Split(plan, info.n_frames)
        pending_names = {spec.name for spec in plan.pending}
        frames_done = 0
        try:
            record = self._new_record(plan, previous, info)
            if reader.truncated is not None:
                record.status, record.error = "truncated", reader.truncated
            if not again:
                progress.video_started(video_id, info.n_frames)
            stored_outputs = self._stored_outputs(previous or record, loaded)
            writers = {}
            for featurizer in running:
                featurizer.begin(info, self.clips)
                if featurizer.name in pending_names:
                    writers[featurizer.name] = self.store.entry_writer(
                        record,
                        self.specs[featurizer.name],
                        featurizer.arrays(info),
                        featurizer.n_index(info, self.clips),
                    )
            n_clips = len(self.clips.table(info.n_frames))
            whole = Segment(0, (0, info.n_frames), (0, n_clips), (0, info.n_frames))
            frames_done = self._featurize(reader, whole, running, writers, stored_outputs, progress)
            written = {}
            for featurizer in running:
                if featurizer.name not in writers:
                    continue
                writer = writers[featurizer.name]
                summary = writer.finish(self._extra_arrays(featurizer, info))
                summary["frame_size"] = [info.width, info.height]  # what pixel coordinates refer to
                spec = self.specs[featurizer.name]
                written[spec.key] = (spec, summary, writer.group_name)
            fault_point("extract.written")
            self.store.commit_video(record, written, previous)
        except VideoError as error:
            if self._keep_part(error, reader):
                reader.close()
                return self._extract(plan, progress, limit=error.frames, again=True)
            return self._fail(plan, previous, str(error), started, frames_done)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # a featurizer bug or odd input must not sink the whole batch
            return self._fail(plan, previous, self._reason(plan, error), started, frames_done, is_transient(error))
        finally:
            reader.close()
        result = VideoResult(video_id, EXTRACTED, list(written), frames_done, time.perf_counter() - started)
        result.computed = [f.name for f in running]
        result.read = [self.specs[name].key for name in loaded]
        result.truncated = reader.truncated
        return result

    def _reason(self, plan: _Plan, error: Exception) -> str:
        detail = traceback.format_exc() if self.debug else f"{type(error).__name__}: {error}"
        return f"{plan.source.path}: {detail}"

    def _extra_arrays(self, featurizer: Featurizer, info) -> dict:
        extra = featurizer.extra_arrays()
        if featurizer.axis == "clip":  # clip-level entries carry the clip table they index
            extra = {"clips": self.clips.table(info.n_frames), **extra}
        return extra

    def _featurize(self, reader, segment: Segment, running, writers, stored_outputs, progress: Progress) -> int:
        """Feed the segment's frames (with their context) to every running featurizer, write the
        rows that belong to the segment; returns the segment's frames done."""
        for featurizer in running:
            featurizer.start_at(segment.decode[0], segment.clips[0])
        emitted = dict.fromkeys(writers, 0)  # clip rows written so far, per clip-level entry
        frames_done = 0

        def step(featurizer: Featurizer, window, upstream) -> Output:
            out = featurizer.process(window, upstream)
            out.params = self.specs[featurizer.name].params
            if featurizer.name in writers:
                self._write_rows(writers[featurizer.name], featurizer, out, window.start, segment, emitted)
            return out

        def stored(window) -> dict[str, Output]:
            window.gray, window.previous_gray  # noqa: B018 - made once here, not raced for by the lanes
            return stored_outputs(window.start, window.stop)

        windows = prefetch(reader.windows(self.window, *segment.decode))
        for window, _ in self._windows_featurized(windows, running, step, stored):
            inside = min(window.stop, segment.frames[1]) - max(window.start, segment.frames[0])
            if inside > 0:
                frames_done += inside
                progress.frames_done(inside)
        for featurizer in running:
            if featurizer.name in writers:
                tail = featurizer.finish()
                if tail is not None:
                    self._write_rows(writers[featurizer.name], featurizer, tail, None, segment, emitted)
        return frames_done

    def _windows_featurized(self, windows, running, step, stored):
        """(window, outputs) in order: in lanes (`lanes.in_lanes`) when this process may use more
        than one core and more than one featurizer runs, else one featurizer after the other."""
        if self.lanes and len(running) > 1 and thread_cap(os.cpu_count() or 1) > 1:
            yield from in_lanes(windows, running, step, stored)
            return
        for window in windows:
            outputs = stored(window)
            for featurizer in running:
                outputs[featurizer.name] = step(featurizer, window, {d: outputs[d] for d in featurizer.requires})
            yield window, outputs

    def _write_rows(self, writer, featurizer: Featurizer, out: Output, start: int | None, segment, emitted) -> None:
        """Write the rows of `out` that fall inside the segment (all of them for a whole video)."""
        if featurizer.axis == "clip":  # clip rows come in order from the segment's first clip
            n = rows_in(out)
            start = segment.clips[0] + emitted[featurizer.name]
            emitted[featurizer.name] += n
        elif start is None:  # a frame-level featurizer's own tail rows: it places them itself
            writer.write(out.dense, out.ragged, out.counts)
            return
        writer.write(*rows_inside(out, start, segment.clips if featurizer.axis == "clip" else segment.frames))

    # ----- long videos in segments -------------------------------------------------------------
    def _plan_segments(self, info, running, pending) -> list[Segment] | None:
        if not self.segment_frames:
            return None
        names = {spec.name for spec in pending}
        return plan_segments(info, running, names, self.clips, self.window, self.segment_frames)

    def prepare_segments(self, plan: _Plan, progress: Progress) -> SegmentedVideo | VideoResult:
        """Re-plan, then create the new version's entries for the whole video beside what is
        committed, for segments to fill. The video's lock is held by the caller's driver."""
        plan = self._plan(plan.source, self._current(plan.source.video_id))
        if plan.action in ("skip", "failed earlier", "failed", "refresh"):
            return self._nothing_to_do(plan)
        video_id = plan.source.video_id
        started = time.perf_counter()
        self.store.clean_video(self.split, video_id)
        previous = self.store.video(self.split, video_id)
        try:
            reader = self._reader(plan, previous)
        except VideoError as error:
            return self._fail(plan, previous, str(error), started)
        try:
            info = reader.info
            running, loaded = self._run_plan(plan.pending, previous)
            segments = self._plan_segments(info, running, plan.pending)
            if segments is None or reader.truncated is not None:  # nothing worth splitting, or a
                # file kept truncated (rare; read whole, where decoding that stops early is kept too)
                reader.close()
                return self._extract(plan, progress)
            record = self._new_record(plan, previous, info)
            tag = uuid.uuid4().hex[:8]
            groups = {}
            pending = {spec.key for spec in plan.pending}
            for featurizer in running:
                spec = self.specs[featurizer.name]
                if spec.key in pending:
                    arrays = featurizer.arrays(info)
                    groups[spec.key] = self.store.prepare_entry(
                        record, spec, arrays, featurizer.n_index(info, self.clips), tag
                    )
            fault_point("extract.segments.prepared")
        except VideoError as error:
            return self._fail(plan, previous, str(error), started)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            return self._fail(plan, previous, self._reason(plan, error), started, transient=is_transient(error))
        finally:
            reader.close()
        progress.video_started(video_id, info.n_frames)
        return SegmentedVideo(
            plan, record.to_attrs(), info, segments, groups, tag, [f.name for f in running], loaded, time.time()
        )

    def extract_segment(self, job: SegmentedVideo, index: int, progress: Progress) -> SegmentDone:
        """Featurize one segment: dense rows into the prepared arrays, ragged rows into its part."""
        segment = job.segments[index]
        started = time.perf_counter()
        record = VideoRecord.from_attrs(job.record)
        previous = self.store.video(self.split, record.video_id)
        running = [self.by_name[name] for name in job.running]
        frames = 0
        try:
            with VideoReader(job.plan.source, self.decode) as reader:
                info = job.info
                if reader.info != info:
                    raise VideoError(job.plan.source.path, "the video changed while it was extracted")
                stored_outputs = self._stored_outputs(previous or record, job.loaded)
                writers = {}
                for featurizer in running:
                    featurizer.begin(info, self.clips)
                    spec = self.specs[featurizer.name]
                    if spec.key in job.groups:
                        rows = segment.clips if featurizer.axis == "clip" else segment.frames
                        writers[featurizer.name] = self.store.segment_writer(
                            record,
                            spec,
                            featurizer.arrays(info),
                            featurizer.n_index(info, self.clips),
                            job.groups[spec.key],
                            rows,
                            job.part(spec.key, index),
                        )
                frames = self._featurize(reader, segment, running, writers, stored_outputs, progress)
                for writer in writers.values():
                    writer.finish_part()
            fault_point("extract.segment.written")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            reason = str(error) if isinstance(error, VideoError) else self._reason(job.plan, error)
            return SegmentDone(index, frames, time.perf_counter() - started, reason, is_transient(error))
        return SegmentDone(index, frames, time.perf_counter() - started)

    def join_segments(self, job: SegmentedVideo, done: Sequence[SegmentDone]) -> VideoResult:
        """After the last segment: ragged parts joined, then the one commit of the whole video
        (or, when a segment failed, the failure recorded and this version's data removed)."""
        record = VideoRecord.from_attrs(job.record)
        video_id = record.video_id
        previous = self.store.video(self.split, video_id)
        frames = sum(d.frames for d in done)
        started = time.perf_counter() - (time.time() - job.started)  # the video's wall time, all segments
        failed = [d for d in sorted(done, key=lambda d: d.index) if d.error]
        if failed or len(done) != len(job.segments):
            reason = failed[0].error if failed else "not every segment was extracted"
            transient = failed[0].transient if failed else True
            return self._fail(job.plan, previous, reason, started, frames, transient)
        try:
            info = job.info
            written = {}
            for name in job.running:
                featurizer, spec = self.by_name[name], self.specs[name]
                if spec.key not in job.groups:
                    continue
                parts = [job.part(spec.key, segment.index) for segment in job.segments]
                summary = self.store.join_entry(
                    record,
                    spec,
                    featurizer.arrays(info),
                    featurizer.n_index(info, self.clips),
                    job.groups[spec.key],
                    parts,
                    self._extra_arrays(featurizer, info),
                )
                summary["frame_size"] = [info.width, info.height]
                written[spec.key] = (spec, summary, job.groups[spec.key])
            fault_point("extract.segments.joined")
            self.store.commit_video(record, written, previous)
            fault_point("extract.segments.committed")
            self.store.discard_nodes(self.split, video_id, job.all_parts())
        except VideoError as error:
            return self._fail(job.plan, previous, str(error), started, frames)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            reason = self._reason(job.plan, error)
            return self._fail(job.plan, previous, reason, started, frames, is_transient(error))
        result = VideoResult(video_id, EXTRACTED, list(written), frames, time.perf_counter() - started)
        result.computed = list(job.running)
        result.read = [self.specs[name].key for name in job.loaded]
        result.segments = len(job.segments)
        return result

    def _fail(
        self,
        plan: _Plan,
        previous: VideoRecord | None,
        message: str,
        started: float,
        frames: int = 0,
        transient: bool = False,
    ) -> VideoResult:
        """Record the failure, permanent (the video: it cannot be decoded, is not a video, is
        truncated) or transient (the machine: later runs try again), with the attempts in a row
        (counted afresh when `--retry-failed` asked for this one). Committed entries of an earlier
        version stay (kept, not read by models while the video is failed); uncommitted data of
        this attempt is removed. When even the record cannot be written (a full disk), the store
        keeps what it held, and the next run tries the video again."""
        kind = TRANSIENT if transient else PERMANENT
        again = previous is not None and previous.failure_kind == kind and not self.retry_failed
        attempts = previous.attempts + 1 if again else 1
        result = VideoResult(plan.source.video_id, FAILED, [], frames, time.perf_counter() - started, message)
        result.failure, result.attempts = kind, attempts
        try:
            if previous is not None:
                record = VideoRecord.from_attrs(previous.to_attrs())
                record.fingerprint = plan.fingerprint
            else:
                self.store.prepare_video(self.split, plan.source.video_id)
                source = str(plan.source.path.resolve())
                record = VideoRecord(self.split, plan.source.video_id, source, plan.fingerprint, scene=self.scene)
            record.status, record.error, record.failure, record.attempts = "failed", message, kind, attempts
            self.store.save_video(record)
            self.store.clean_video(self.split, plan.source.video_id)
        except OSError as error:
            result.error = f"{message} (not recorded: {error.strerror or error})"
            result.failure = TRANSIENT
        return result
