"""Run featurizers over a catalog of videos into the store, doing only new or changed work.

Per video: compare its fingerprint with the store, decide what is missing, take the video's lock,
decode it once in windows (prefetched on a second thread), feed every needed featurizer, write
the requested ones and commit each entry. A video that cannot be decoded is recorded as failed
with its reason and the batch goes on. Videos locked by another process are deferred to the end,
then waited for, so two runs over one archive share the work instead of colliding.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from filelock import Timeout

from vadctl import defaults
from vadctl.catalog import Skipped, VideoSource
from vadctl.checks import seconds_text
from vadctl.errors import StoreError, VideoError
from vadctl.faults import fault_point
from vadctl.features.base import Featurizer, Output
from vadctl.progress import Progress
from vadctl.specs import ClipSpec, DecodeSpec, FeatureSpec, Fingerprint
from vadctl.store import FeatureStore, VideoRecord, check_split
from vadctl.video import VideoReader, prefetch

EXTRACTED, UP_TO_DATE, FAILED, FAILED_EARLIER = "extracted", "up to date", "failed", "failed earlier"


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
                    "error": r.error,
                }
                for r in self.results
            ],
            "skipped": [s.to_dict() for s in self.skipped],
        }


@dataclass
class _Plan:
    source: VideoSource
    action: str  # "new", "replace", "update", "refresh", "skip", "failed earlier"
    fingerprint: Fingerprint | None
    pending: list[FeatureSpec]
    error: str | None = None


class Extractor:
    """Extract `requested` features (built with their dependencies in `featurizers`) into a split."""

    def __init__(
        self,
        store: FeatureStore,
        featurizers: Sequence[Featurizer],
        requested: Iterable[str],
        split: str,
        *,
        scene: str | None = None,
        decode: DecodeSpec | None = None,
        clips: ClipSpec | None = None,
        window: int = defaults.WINDOW,
        force: bool = False,
        retry_failed: bool = False,
        wait_timeout: float = defaults.WAIT_SECONDS,
        debug: bool = False,
    ):
        self.store = store
        self.featurizers = list(featurizers)
        self.by_name = {f.name: f for f in self.featurizers}
        self.split = check_split(split)
        self.scene = scene
        self.decode = decode or DecodeSpec()
        self.clips = clips or ClipSpec()
        self.window = window
        self.force = force
        self.retry_failed = retry_failed
        self.wait_timeout = wait_timeout
        self.debug = debug
        self.specs: dict[str, FeatureSpec] = {}
        for featurizer in self.featurizers:
            self.specs[featurizer.name] = featurizer.spec(self.decode, self.specs, self.clips)
        self.requested = [self.specs[name] for name in requested]

    # ----- planning ----------------------------------------------------------------------------
    def _plan(self, source: VideoSource, record: VideoRecord | None) -> _Plan:
        try:
            state, fingerprint = source.status_against(record.fingerprint if record else None)
        except OSError as error:
            return _Plan(source, "failed", None, [], f"{source.path}: cannot read: {error.strerror or error}")
        if record is None or state == "new":
            return _Plan(source, "new", fingerprint, list(self.requested))
        if state == "changed" or self.force:
            return _Plan(source, "replace", fingerprint, list(self.requested))
        if record.status == "failed":
            if self.retry_failed:
                return _Plan(source, "replace", fingerprint, list(self.requested))
            return _Plan(source, "failed earlier", fingerprint, [], record.error)
        if self.store.clips_problem(record):
            return _Plan(source, "replace", fingerprint, list(self.requested))
        pending = [
            spec for spec in self.requested if not record.has(spec) or self.store.entry_problem(record, spec.key)
        ]
        if pending:
            return _Plan(source, "update", fingerprint, pending)
        return _Plan(source, "refresh" if state == "touched" else "skip", fingerprint, [])

    def _intact(self, record: VideoRecord, spec: FeatureSpec) -> bool:
        """Committed and passing the cheap integrity check (damaged entries are redone)."""
        return record.has(spec) and self.store.entry_problem(record, spec.key) is None

    def run(self, sources: Sequence[VideoSource], progress: Progress | None = None) -> ExtractReport:
        progress = progress or Progress()
        started = time.perf_counter()
        records = {r.video_id: r for r in self.store.videos(self.split, damaged_ok=True)}
        plans = [self._plan(source, records.get(source.video_id)) for source in sources]
        progress.planned(len(plans), sum(p.action in ("new", "replace", "update") for p in plans))
        results: dict[str, VideoResult] = {}
        deferred: list[_Plan] = []
        for plan in plans:
            if plan.action in ("skip", "failed earlier", "failed"):
                status = {"skip": UP_TO_DATE, "failed earlier": FAILED_EARLIER, "failed": FAILED}[plan.action]
                results[plan.source.video_id] = VideoResult(plan.source.video_id, status, error=plan.error)
                progress.video_finished(results[plan.source.video_id])
                continue
            result = self._locked(plan, timeout=0, progress=progress)
            if result is None:
                deferred.append(plan)
            else:
                results[plan.source.video_id] = result
        for plan in deferred:  # another process held these: wait for it, then see what is left
            result = self._locked(plan, timeout=self.wait_timeout, progress=progress)
            if result is None:
                result = VideoResult(
                    plan.source.video_id,
                    FAILED,
                    error=f"video locked by another process for over {seconds_text(self.wait_timeout)}",
                )
                progress.video_finished(result)
            results[plan.source.video_id] = result
        ordered = [results[source.video_id] for source in sources]
        return ExtractReport(self.split, ordered, time.perf_counter() - started, list(self.requested))

    def _locked(self, plan: _Plan, timeout: float, progress: Progress) -> VideoResult | None:
        lock = self.store.video_lock(self.split, plan.source.video_id)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            return None
        try:
            # Re-plan under the lock: another process may have done (part of) the work meanwhile.
            plan = self._plan(plan.source, self._current(plan.source.video_id))
            if plan.action in ("skip", "failed earlier", "failed", "refresh"):
                if plan.action == "refresh":
                    self._refresh(plan)
                status = {"failed earlier": FAILED_EARLIER, "failed": FAILED}.get(plan.action, UP_TO_DATE)
                result = VideoResult(plan.source.video_id, status, error=plan.error)
            else:
                result = self._extract(plan, progress)
        finally:
            lock.release()
        progress.video_finished(result)
        return result

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
    def _run_plan(self, pending: Sequence[FeatureSpec], record: VideoRecord) -> tuple[list[Featurizer], list[str]]:
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

    def _extract(self, plan: _Plan, progress: Progress) -> VideoResult:
        """Write the new version of a video beside whatever is committed, then switch to it in one
        record update (`FeatureStore.commit_video`); caller holds the video's lock."""
        video_id = plan.source.video_id
        started = time.perf_counter()
        self.store.clean_video(self.split, video_id)  # leftovers of a killed or failed run
        previous = self.store.video(self.split, video_id)
        try:
            reader = VideoReader(plan.source, self.decode)
        except VideoError as error:
            return self._fail(plan, previous, str(error), started)
        info = reader.info
        if plan.action == "update" and previous is not None:
            record = VideoRecord.from_attrs(previous.to_attrs())
            record.scene = self.scene if self.scene is not None else record.scene
        else:  # a new video, or a new version of one: new facts, new clip table
            self.store.prepare_video(self.split, video_id)
            record = VideoRecord(
                self.split,
                video_id,
                str(plan.source.path.resolve()),
                plan.fingerprint,
                n_frames=info.n_frames,
                fps=info.fps,
                height=info.source_height,
                width=info.source_width,
                scene=self.scene,
                clip_spec=self.clips.to_dict(),
            )
            self.store.write_clips(record, self.clips.table(info.n_frames))
        progress.video_started(video_id, info.n_frames)
        pending_names = {spec.name for spec in plan.pending}
        running, loaded = self._run_plan(plan.pending, previous or record)
        stored_outputs = self._stored_outputs(previous or record, loaded)
        writers = {}
        frames_done = 0
        try:
            for featurizer in running:
                featurizer.begin(info, self.clips)
                if featurizer.name in pending_names:
                    writers[featurizer.name] = self.store.entry_writer(
                        record,
                        self.specs[featurizer.name],
                        featurizer.arrays(info),
                        featurizer.n_index(info, self.clips),
                    )
            for window in prefetch(reader.windows(self.window)):
                outputs = stored_outputs(window.start, window.stop)
                for featurizer in running:
                    out = featurizer.process(window, {d: outputs[d] for d in featurizer.requires})
                    out.params = self.specs[featurizer.name].params
                    outputs[featurizer.name] = out
                    if featurizer.name in writers:
                        writers[featurizer.name].write(out.dense, out.ragged, out.counts)
                frames_done += len(window)
                progress.frames_done(len(window))
            written = {}
            for featurizer in running:
                if featurizer.name not in writers:
                    continue
                tail = featurizer.finish()
                writer = writers[featurizer.name]
                if tail is not None:
                    writer.write(tail.dense, tail.ragged, tail.counts)
                extra = featurizer.extra_arrays()
                if featurizer.axis == "clip":  # clip-level entries carry the clip table they index
                    extra = {"clips": self.clips.table(info.n_frames), **extra}
                summary = writer.finish(extra)
                summary["frame_size"] = [info.width, info.height]  # what pixel coordinates refer to
                spec = self.specs[featurizer.name]
                written[spec.key] = (spec, summary, writer.group_name)
            fault_point("extract.written")
            self.store.commit_video(record, written, previous)
        except VideoError as error:
            return self._fail(plan, previous, str(error), started, frames_done)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # a featurizer bug or odd input must not sink the whole batch
            detail = traceback.format_exc() if self.debug else f"{type(error).__name__}: {error}"
            return self._fail(plan, previous, f"{plan.source.path}: {detail}", started, frames_done)
        finally:
            reader.close()
        result = VideoResult(video_id, EXTRACTED, list(written), frames_done, time.perf_counter() - started)
        result.computed = [f.name for f in running]
        result.read = [self.specs[name].key for name in loaded]
        return result

    def _fail(
        self, plan: _Plan, previous: VideoRecord | None, message: str, started: float, frames: int = 0
    ) -> VideoResult:
        """Record the failure. Committed entries of an earlier version stay (kept, not read by
        models while the video is failed); uncommitted data of this attempt is removed."""
        if previous is not None:
            record = VideoRecord.from_attrs(previous.to_attrs())
            record.fingerprint = plan.fingerprint
        else:
            self.store.prepare_video(self.split, plan.source.video_id)
            source = str(plan.source.path.resolve())
            record = VideoRecord(self.split, plan.source.video_id, source, plan.fingerprint, scene=self.scene)
        record.status, record.error = "failed", message
        self.store.save_video(record)
        self.store.clean_video(self.split, plan.source.video_id)
        return VideoResult(plan.source.video_id, FAILED, [], frames, time.perf_counter() - started, message)
