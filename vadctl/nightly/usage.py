"""Which feature entries of a store are in use, so `vadctl store gc` never removes one a model needs.

Three ways to say it, each giving entry keys (`name@hash`) and who needs them:
- model files: the entries each was fitted on and every upstream entry they were computed from;
- job files (`vadctl run`): the job's model files, the entries its [extract] writes, and whatever
  its results dataset says was scored recently;
- results datasets: the entries every model that scored in the last `days` days read (from the
  ledger), and those of the last run whatever its age, so a deployed model that scored last keeps
  its entries even when its file has since been replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vadctl.common.specs import FeatureSpec, PathLike
from vadctl.errors import UsageError, VadctlError
from vadctl.extraction.for_model import recorded_entries
from vadctl.nightly.jobfile import load_job
from vadctl.nightly.results import META_DIR, ResultsDataset

USED_DAYS = 30  # results dataset: entries read by scoring runs this recent are in use


@dataclass
class InUse:
    """Entry key → who needs it (a model file, a job's extraction, a results dataset's model)."""

    entries: dict[str, set[str]] = field(default_factory=dict)
    told: list[str] = field(default_factory=list)  # what was consulted, for the report

    def add(self, keys: Iterable[str], who: str) -> None:
        for key in keys:
            self.entries.setdefault(key, set()).add(who)


def model_entries(path: Path) -> list[str]:
    """The entry keys a model file reads, and the upstream entries they were computed from."""
    from vadctl.models.files import peek_header

    header = peek_header(path)
    read = [FeatureSpec.from_dict(spec).key for spec in header["features"].values()]
    return sorted({*read, *(spec.key for spec in recorded_entries(header, str(path)))})


def results_entries(root: Path, days: int, today: date | None = None) -> dict[str, set[str]]:
    """Entry key → models (by name) of a results dataset that read it in the last `days` days or
    in its last run."""
    ledger = ResultsDataset(root).ledger()
    units = list(ledger.units.values())
    if not units:
        return {}
    since = ((today or datetime.now(UTC).date()) - timedelta(days=days)).isoformat()
    last = max(unit.run_id for unit in units)
    found: dict[str, set[str]] = {}
    for unit in units:
        if unit.date >= since or unit.run_id == last:
            for key in filter(None, unit.entries.split(",")):
                found.setdefault(key, set()).add(f"model {unit.model} (scored {unit.date}, {root})")
    return found


def _job_extraction(job) -> set[str]:
    """The entry keys a job's [extract] writes (and computes them from), for each of its splits."""
    from vadctl.extraction.recipe import ExtractRecipe
    from vadctl.extraction.run import RUN_OPTIONS
    from vadctl.extraction.work import build_extractor

    keys: set[str] = set()
    options = {k: v for k, v in job.extract.items() if k not in RUN_OPTIONS}
    for source in job.sources:
        recipe = ExtractRecipe.make(job.store, source.split, scene=source.scene, **options)
        keys.update(spec.key for spec in build_extractor(recipe).specs.values())
    return keys


def entries_in_use(
    store: Path,
    *,
    models: Iterable[PathLike] = (),
    jobs: Iterable[PathLike] = (),
    results: Iterable[PathLike] = (),
    days: int = USED_DAYS,
    today: date | None = None,
) -> InUse:
    """What the named model files, job files and results datasets need of the store at `store`.
    Errors are one line naming the file (a job of another store, a file that is not a model, a
    folder that is no results dataset)."""
    if days < 0:
        raise UsageError(f"--days {days}: must be ≥ 0")
    found = InUse()
    for model in models:
        path = Path(model)
        try:
            found.add(model_entries(path), f"model {path}")
        except VadctlError as error:
            raise UsageError(f"--keep-for {path}: {error}") from None
        found.told.append(f"model {path}")
    for job_file in jobs:
        job = load_job(job_file)
        if job.store.resolve() != Path(store).resolve():
            raise UsageError(f"{job.path}: its store is {job.store}, not {store}; name the jobs of this store")
        for ref in job.models:
            try:
                found.add(model_entries(ref.path), f"model {ref.name} of job {job.name}")
            except VadctlError as error:
                raise UsageError(f"{job.path}: models {ref.name}: {error}") from None
        try:
            found.add(_job_extraction(job), f"[extract] of job {job.name}")
        except VadctlError as error:
            raise UsageError(f"{job.path}: [extract]: {error}") from None
        for key, who in results_entries(job.results, days, today).items():
            for each in who:
                found.add([key], each)
        found.told.append(f"job {job.path}")
    for root in results:
        root = Path(root)
        if not (root / META_DIR / "ledger.jsonl").is_file():
            raise UsageError(f"--results {root}: not a results dataset (no {META_DIR}/ledger.jsonl)")
        for key, who in results_entries(root, days, today).items():
            for each in who:
                found.add([key], each)
        found.told.append(f"results {root} (last {days} days and its last run)")
    return found
