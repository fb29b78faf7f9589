"""Incremental scoring into the results dataset: each video scored once per model file.

A video needs scoring by a model when the ledger has no entry for (split, video, its fingerprint,
the feature entries the model reads, the model file's sha256): a new video is scored once; a
changed video (new fingerprint) or a new model file (new digest) is scored again into new rows,
and the older rows stay. Videos are scored one at a time (one failing video is listed, the rest go
on) and committed in units of `part_videos` videos (vadctl.nightly.results: parts under a hidden staging
name, renamed into place, then the ledger), so a crash redoes at most one unit's work and never
writes a row twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vadctl.common.progress import Progress
from vadctl.common.specs import FeatureSpec
from vadctl.common.threads import blas_threads
from vadctl.errors import ModelFileError, VadctlError
from vadctl.models.scores import VideoScores
from vadctl.nightly.jobfile import ModelRef
from vadctl.nightly.joblog import JobLog
from vadctl.nightly.ledger import Ledger, ScoreKey, Unit
from vadctl.nightly.results import ResultsDataset
from vadctl.scoring.provenance import (
    Provenance,
    file_sha256,
    new_run_id,
    video_fingerprint,
)
from vadctl.scoring.tables import publish
from vadctl.store import FeatureStore, VideoRecord


@dataclass
class RunClock:
    """One run's identity: its id, its start (the `date` partition of all its parts), unit numbers."""

    run_id: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _units: int = 0

    def __post_init__(self):
        self.run_id = self.run_id or new_run_id(self.started)

    @property
    def day(self) -> str:
        return self.started.date().isoformat()

    def next_unit(self) -> str:
        self._units += 1
        return f"{self.run_id}-{self._units:04d}"


@dataclass
class ModelOutcome:
    """What one model did (or, in a dry run, would do) in a run."""

    name: str
    kind: str
    path: str
    sha256: str
    splits: list[str]
    up_to_date: int = 0
    planned: list[str] = field(default_factory=list)  # split/video ids to score
    scored: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # split/video → reason
    deferred: dict[str, str] = field(default_factory=dict)  # changed while scored: next run
    units: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: {"frames": 0, "regions": 0, "events": 0})
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "kind": self.kind,
            "path": self.path,
            "model_sha256": self.sha256,
            "splits": self.splits,
            "up_to_date": self.up_to_date,
            "planned": len(self.planned),
            "scored": len(self.scored),
            "failed": [{"video": v, "error": e} for v, e in self.failed.items()],
            "deferred": [{"video": v, "reason": r} for v, r in self.deferred.items()],
            "units": self.units,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _SplitPlan:
    split: str
    records: dict[str, VideoRecord]
    todo: list[VideoRecord]
    provenance: Provenance | None = None


class ModelScorer:
    """Scores what a ledger lacks for one model file, into a results dataset.

    Planning reads only the file's header and digest; the model itself is loaded (and checked)
    only when there is something to score, so a run with nothing new stays cheap."""

    def __init__(self, ref: ModelRef, clock: RunClock, store_path: Path):
        from vadctl.models.files import peek_header

        self.ref = ref
        self.clock = clock
        self.store_path = Path(store_path)
        self.sha256 = file_sha256(ref.path)
        header = peek_header(ref.path)
        self.entry_keys = sorted(FeatureSpec.from_dict(spec).key for spec in header["features"].values())
        self.entries = ",".join(self.entry_keys)
        self.loaded = None
        self.store: FeatureStore | None = None  # given to `run`; planning needs none
        self.outcome = ModelOutcome(ref.name, str(header.get("model")), str(ref.path), self.sha256, list(ref.splits))

    def load(self, log: JobLog | None = None):
        """The model, checked against its digest (planning read only its header)."""
        from vadctl.models.files import load_model
        from vadctl.scoring.backends import use_backend

        if self.loaded is None:
            started = time.perf_counter()
            loaded = load_model(self.ref.path)
            if file_sha256(self.ref.path) != self.sha256:
                raise ModelFileError(f"{self.ref.path}: the model file changed during the run; run again")
            use_backend(loaded, self.ref.backend, self.ref.onnx)
            self.loaded = loaded
            if log is not None:
                log.event("model_loaded", model=self.ref.name, seconds=time.perf_counter() - started)
        return self.loaded

    def plan(self, ledger: Ledger, records: Mapping[str, dict[str, VideoRecord]]) -> list[_SplitPlan]:
        """Per split: the usable videos the ledger has not seen with this fingerprint and model."""
        plans = []
        for split in self.ref.splits:
            found = records.get(split, {})
            todo = []
            for record in found.values():
                if not record.usable:
                    continue  # extraction failed: listed by extract, scored once it is fixed
                key = ScoreKey(split, record.video_id, video_fingerprint(record), self.entries, self.sha256)
                if key in ledger:
                    self.outcome.up_to_date += 1
                    continue
                lacking = [k for k in self.entry_keys if k not in record.features]
                if lacking:
                    self.outcome.failed[f"{split}/{record.video_id}"] = (
                        f"lacks {', '.join(lacking)}, which model {self.ref.name} was fitted on: "
                        "extract it with the model's features and parameters ([extract] of the job)"
                    )
                    continue
                todo.append(record)
                self.outcome.planned.append(f"{split}/{record.video_id}")
            plans.append(_SplitPlan(split, found, todo))
        return plans

    def run(
        self,
        store: FeatureStore,
        dataset: ResultsDataset,
        ledger: Ledger,
        records: Mapping[str, dict[str, VideoRecord]],
        *,
        part_videos: int,
        min_len: int,
        min_gap: int,
        progress: Progress,
        log: JobLog,
    ) -> ModelOutcome:

        started = time.perf_counter()
        self.store = store
        plans = self.plan(ledger, records)
        progress.scoring_started(self.ref.name, sum(len(p.todo) for p in plans))
        log.event("scoring_started", model=self.ref.name, model_sha256=self.sha256, videos=len(self.outcome.planned))
        with blas_threads():
            for plan in plans:
                if not plan.todo:
                    continue
                plan.provenance = Provenance.of(
                    self.load(log),
                    self.ref.path,
                    self.store_path,
                    plan.split,
                    rule=self.ref.threshold,
                    name=self.ref.name,
                    run_id=self.clock.run_id,
                    scored_at=self.clock.started,
                    model_sha256=self.sha256,
                )
                for first in range(0, len(plan.todo), part_videos):
                    batch = plan.todo[first : first + part_videos]
                    scored = [s for s in (self._score(plan, r, progress, log) for r in batch) if s is not None]
                    if scored:
                        self._commit(dataset, ledger, plan, scored, min_len, min_gap, log)
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    def _score(self, plan: _SplitPlan, record: VideoRecord, progress: Progress, log: JobLog) -> VideoScores | None:
        video, label = record.video_id, f"{plan.split}/{record.video_id}"
        started = time.perf_counter()
        try:
            items = list(self.loaded.model.score(self.store, plan.split, [video]))
            if len(items) != 1:
                raise VadctlError(f"model {self.ref.name} returned {len(items)} results for one video")
        except Exception as error:  # one video's failure must not sink the others
            reason = str(error) if isinstance(error, VadctlError) else f"{type(error).__name__}: {error}"
            self.outcome.failed[label] = reason
            log.event("video_score_failed", "error", video=label, model=self.ref.name, error=reason)
            progress.video_scored(video, 0)
            return None
        current = self.store.video(plan.split, video)
        entries = plan.provenance.features.values()
        if (
            current is None
            or video_fingerprint(current) != video_fingerprint(record)
            or any(k not in current.features for k in entries)
        ):  # re-extracted while scored: what was read may mix versions; the next run scores it
            self.outcome.deferred[label] = "changed in the store while being scored"
            log.event("video_deferred", "warning", video=label, model=self.ref.name)
            return None
        seconds = time.perf_counter() - started
        progress.video_scored(video, len(items[0].frame_scores))
        log.event("video_scored", video=label, model=self.ref.name, seconds=seconds, frames=len(items[0].frame_scores))
        return items[0]

    def _commit(
        self,
        dataset: ResultsDataset,
        ledger: Ledger,
        plan: _SplitPlan,
        scored: Sequence[VideoScores],
        min_len: int,
        min_gap: int,
        log: JobLog,
    ) -> None:
        started = time.perf_counter()
        prov = plan.provenance
        published = publish(
            scored,
            self.loaded.calibration,
            self.loaded.model.name,
            prov,
            plan.records,
            model_column=False,
            min_len=min_len,
            min_gap=min_gap,
        )
        unit = Unit(
            unit_id=self.clock.next_unit(),
            run_id=self.clock.run_id,
            model=self.ref.name,
            model_sha256=self.sha256,
            split=plan.split,
            entries=prov.entries,
            date=self.clock.day,
            videos=[[s.video_id, video_fingerprint(plan.records[s.video_id])] for s in scored],
            parts={},
        )
        tables = published.with_metadata(prov, min_len=min_len, min_gap=min_gap)
        dataset.commit(unit, {kind: tables[kind] for kind in ("frames", "regions", "events")}, ledger)
        self.outcome.units.append(unit.unit_id)
        self.outcome.scored += [f"{plan.split}/{s.video_id}" for s in scored]
        for kind, n in unit.rows.items():
            self.outcome.rows[kind] += n
        log.event(
            "part_committed",
            model=self.ref.name,
            unit=unit.unit_id,
            split=plan.split,
            videos=len(scored),
            rows=unit.rows,
            parts=[p for p in unit.parts.values() if p],
            seconds=time.perf_counter() - started,
        )
