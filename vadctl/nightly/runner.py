"""`vadctl run`: a whole nightly job in one call, from a job file (vadctl.nightly.jobfile).

One run: take the results dataset's run lock (a second run exits at once, or waits); finish or undo
what a killed run left there; load every model file (a broken one stops the run before any work);
extract new and changed videos of every source; score, with every model, each video the ledger has
not seen with its current fingerprint, feature entries and model digest; append frames, regions
and events to the results dataset; log each step as JSON lines. A dry run does none of it and says
what a run would extract and score.

The report's exit code: 0 all done, 1 some videos failed (listed). Errors that stop the job
(a bad job file, a broken model, a busy lock) are raised as `VadctlError` (exit 2 in the CLI).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadctl.common.faults import fault_point
from vadctl.common.progress import Progress, Tee
from vadctl.errors import StoreBusyError, UsageError, VadctlError
from vadctl.extraction.extractor import EXTRACTED, UP_TO_DATE
from vadctl.extraction.recipe import ExtractRecipe
from vadctl.extraction.run import RUN_OPTIONS, extract, plan_extract
from vadctl.nightly.incremental import ModelOutcome, ModelScorer, RunClock
from vadctl.nightly.jobfile import Job, Source
from vadctl.nightly.joblog import JobLog
from vadctl.nightly.results import ResultsDataset
from vadctl.store import FeatureStore, VideoRecord
from vadctl.store.opening import open_store
from vadctl.video import catalog

EXIT_OK, EXIT_PARTIAL = 0, 1


@dataclass
class SourceOutcome:
    root: str
    split: str
    scene: str | None
    videos: int = 0
    extracted: int = 0
    up_to_date: int = 0
    to_extract: list[str] = field(default_factory=list)  # dry run: what would be extracted
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "split": self.split,
            "scene": self.scene,
            "videos": self.videos,
            "extracted": self.extracted,
            "up_to_date": self.up_to_date,
            "to_extract": self.to_extract,
            "failed": [{"video": v, "error": e} for v, e in self.failed.items()],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RunReport:
    job: str
    name: str
    run_id: str
    dry_run: bool
    started_at: str
    store: str
    results: str
    sources: list[SourceOutcome] = field(default_factory=list)
    models: list[ModelOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    review: str | None = None  # the review page the run updated ([review] out), when it did
    review_error: str | None = None  # why the review page could not be written

    @property
    def failed(self) -> list[dict[str, str]]:
        """Every video that failed, with the stage and reason."""
        found = [
            {"stage": "extract", "split": s.split, "video": v, "error": e}
            for s in self.sources
            for v, e in s.failed.items()
        ]
        for model in self.models:
            for label, error in model.failed.items():
                split, _, video = label.partition("/")
                found.append({"stage": f"score {model.name}", "split": split, "video": video, "error": error})
        return found

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed or self.review_error else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "name": self.name,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "store": self.store,
            "results": self.results,
            "exit_code": self.exit_code,
            "sources": [s.to_dict() for s in self.sources],
            "models": [m.to_dict() for m in self.models],
            "failed": self.failed,
            "notes": self.notes,
            "review": self.review,
            "review_error": self.review_error,
        }


class JobRunner:
    """One run (or dry run) of a job; its `report` fills in as it goes."""

    def __init__(self, job: Job, progress: Progress | None = None):
        self.job = job
        self.progress = progress or Progress()
        self.clock = RunClock()
        self.dataset = ResultsDataset(job.results)
        self.report = RunReport(
            job=str(job.path),
            name=job.name,
            run_id=self.clock.run_id,
            dry_run=False,
            started_at=self.clock.started.isoformat(timespec="seconds"),
            store=str(job.store),
            results=str(job.results),
        )

    # ----- a real run ----------------------------------------------------------------------------
    def run(self, wait: float = 0.0) -> RunReport:
        started = time.perf_counter()
        log = JobLog(self.job.log, self.job.name, self.clock.run_id)
        try:
            with self.dataset.writer(wait, who={"job": str(self.job.path), "run_id": self.clock.run_id}):
                log.event("run_started", job_file=str(self.job.path), store=str(self.job.store))
                self._run(log)
        except StoreBusyError as error:
            log.event("run_busy", "warning", error=str(error))
            raise
        except VadctlError as error:
            log.event("run_failed", "error", error=str(error), seconds=time.perf_counter() - started)
            raise
        except KeyboardInterrupt:
            log.event("run_interrupted", "warning", seconds=time.perf_counter() - started)
            raise
        except Exception as error:  # a bug: logged for whoever reads the log, then the traceback
            log.event("run_failed", "error", error=f"{type(error).__name__}: {error}")
            raise
        self.report.seconds = time.perf_counter() - started
        summary = {
            "extracted": sum(s.extracted for s in self.report.sources),
            "scored": sum(len(m.scored) for m in self.report.models),
            "failed": len(self.report.failed),
        }
        level = "warning" if self.report.failed else "info"
        log.event("run_finished", level, seconds=self.report.seconds, exit_code=self.report.exit_code, **summary)
        return self.report

    def _run(self, log: JobLog) -> None:
        ledger = self.dataset.ledger()
        for note in self.dataset.recover(ledger).notes():
            self._note(note, log, "warning")
        scorers = self._model_scorers()  # a model file that is not one stops the job before any work
        if self.job.verify_sources:
            self._verify_sources(log)
        for index, source in enumerate(self.job.sources, 1):
            self._extract(index, source, log)
        fault_point("run.extracted")
        if not scorers:
            return
        store = self._store()
        if store is None:
            self._note(f"{self.job.store}: no store yet (no video extracted), nothing to score", log)
            return
        records = self._records(store)
        for scorer in scorers:
            outcome = scorer.run(
                store,
                self.dataset,
                ledger,
                records,
                part_videos=self.job.part_videos,
                min_len=self.job.min_len,
                min_gap=self.job.min_gap,
                progress=self.progress,
                log=log,
            )
            for label, reason in outcome.deferred.items():
                self._note(f"{outcome.name}: {label} {reason}; the next run scores it", log)
            self.report.models.append(outcome)

    def _verify_sources(self, log: JobLog) -> None:
        """`verify_sources = true`: every source of the job's splits re-hashed in full; changed ones
        are marked, so the extraction that follows redoes them (and scoring scores them again)."""
        from vadctl.extraction.sources import CHANGED, verify_sources

        if not (Path(self.job.store) / "zarr.json").exists():
            return  # no store yet: nothing extracted to compare with
        started = time.perf_counter()
        store = open_store(self.job.store, read_only=False)
        checks = verify_sources(store, [s for s in self.job.splits if s in store.splits()])
        for check in checks:
            if check.status == CHANGED:
                where = f"{check.split}/{check.video}"
                self._note(f"{where}: source content changed since extraction (verify_sources); extracted again", log)
        log.event("sources_verified", videos=len(checks), seconds=time.perf_counter() - started)

    def _extract(self, index: int, source: Source, log: JobLog) -> None:
        outcome = SourceOutcome(str(source.root), source.split, source.scene)
        self.report.sources.append(outcome)
        log.event("extract_started", root=str(source.root), split=source.split)
        try:
            recipe, spread = self._recipe(source)
            report = extract([source.root], recipe, progress=Tee(self.progress, log), **spread)
        except UsageError as error:
            if not catalog.discover([source.root]):  # an empty camera folder is no error for a nightly job
                self._note(f"sources[{index}] {source.root}: no videos yet", log)
                return
            raise UsageError(f"{self.job.path}: [extract] for sources[{index}]: {error}") from None
        outcome.videos = len(report.results)
        outcome.extracted = report.count(EXTRACTED)
        outcome.up_to_date = report.count(UP_TO_DATE)
        outcome.failed = {r.video_id: r.error or r.status for r in report.failed}
        outcome.seconds = report.seconds
        log.event(
            "extract_finished",
            root=str(source.root),
            split=source.split,
            seconds=report.seconds,
            extracted=outcome.extracted,
            up_to_date=outcome.up_to_date,
            failed=len(outcome.failed),
        )

    # ----- a dry run -----------------------------------------------------------------------------
    def plan(self) -> RunReport:
        """What `run` would do now, touching nothing."""
        started = time.perf_counter()
        self.report.dry_run = True
        ledger = self.dataset.ledger()
        pending = self.dataset.pending_units()
        for unit in pending:
            ledger.include(unit)
        if pending:
            self.report.notes.append(f"{len(pending)} unit(s) of an interrupted run will be finished first")
        if self.job.verify_sources:
            self.report.notes.append("verify_sources: a run re-hashes every source in full first (a dry run does not)")
        extracting: dict[str, set[str]] = {}
        store = self._store()
        # Nothing is written while planning: each split is scanned once, for extraction and scoring.
        scans = functools.cache(store.scan) if store is not None else None
        for index, source in enumerate(self.job.sources, 1):
            outcome = SourceOutcome(str(source.root), source.split, source.scene)
            self.report.sources.append(outcome)
            try:
                recipe, spread = self._recipe(source)
                records = None
                if scans is not None:
                    records = {r.video_id: r for r in store.videos(source.split, True, scans(source.split))}
                planned = plan_extract([source.root], recipe, store, spread.get("follow_links", False), records=records)
            except UsageError as error:
                if not catalog.discover([source.root]):
                    self.report.notes.append(f"sources[{index}] {source.root}: no videos yet")
                    continue
                raise UsageError(f"{self.job.path}: [extract] for sources[{index}]: {error}") from None
            actions = Counter(p.action for p in planned)
            outcome.videos = len(planned)
            outcome.up_to_date = actions["skip"] + actions["refresh"]
            outcome.to_extract = [p.video_id for p in planned if p.extracts]
            outcome.failed = {p.video_id: p.error or p.action for p in planned if p.action.startswith("failed")}
            extracting.setdefault(source.split, set()).update(outcome.to_extract)
        records = self._records(store, scans) if store is not None else {}
        for scorer in self._model_scorers():
            scorer.plan(ledger, records)
            outcome = scorer.outcome
            for split in scorer.ref.splits:
                for video in sorted(extracting.get(split, ())):
                    label = f"{split}/{video}"
                    if label not in outcome.planned:
                        outcome.planned.append(label)
                    outcome.failed.pop(label, None)  # lacking features: extraction adds them
            self.report.models.append(outcome)
        self.report.seconds = time.perf_counter() - started
        return self.report

    # ----- shared --------------------------------------------------------------------------------
    def _model_scorers(self) -> list[ModelScorer]:
        scorers = []
        for index, ref in enumerate(self.job.models, 1):
            try:
                scorers.append(ModelScorer(ref, self.clock, self.job.store))
            except VadctlError as error:
                raise UsageError(f"{self.job.path}: models[{index}]: {error}") from None
        return scorers

    def _recipe(self, source: Source) -> tuple[ExtractRecipe, dict]:
        """The extraction recipe of one source, and how its run is spread ([extract] holds both)."""
        options = dict(self.job.extract)
        spread = {key: options.pop(key) for key in RUN_OPTIONS if key in options}
        try:
            recipe = ExtractRecipe.make(self.job.store, source.split, scene=source.scene, **options)
        except TypeError as error:  # the job file's keys are checked on load; this is a guard
            raise UsageError(f"{self.job.path}: [extract]: {error}") from None
        return recipe, spread

    def _store(self) -> FeatureStore | None:
        return open_store(self.job.store) if (Path(self.job.store) / "zarr.json").exists() else None

    def _records(self, store: FeatureStore, scans=None) -> dict[str, dict[str, VideoRecord]]:
        """The records of every split a model scores; `scans`: split → `store.scan(split)` made already."""
        splits = sorted({split for ref in self.job.models for split in ref.splits})
        return {
            split: {r.video_id: r for r in store.videos(split, scanned=scans(split) if scans else None)}
            for split in splits
        }

    def _note(self, text: str, log: JobLog, level: str = "info") -> None:
        self.report.notes.append(text)
        log.event("note", level, text=text)
        self.progress.note(text)


def run_job(job: Job, *, dry_run: bool = False, wait: float = 0.0, progress: Progress | None = None) -> RunReport:
    runner = JobRunner(job, progress)
    return runner.plan() if dry_run else runner.run(wait)
