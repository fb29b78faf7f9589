"""The results dataset: Hive-partitioned Parquet, only ever appended to, readable as it is by DuckDB,
polars, pyarrow and pandas.

    results/
      frames/model=<name>/date=<YYYY-MM-DD>/part-<run id>-<n>.parquet   one row per scored frame
      regions/model=<name>/date=<YYYY-MM-DD>/part-<run id>-<n>.parquet  one row per scored box
      events/model=<name>/date=<YYYY-MM-DD>/part-<run id>-<n>.parquet   one row per event
      _vadctl/                  not data: readers skip names starting with '_'
        ledger.jsonl            what is scored (vadctl.nightly.ledger)
        run.lock, run.owner     one writing run at a time, and who it is
        staging/                units being committed

`model` and `date` (the run's UTC start date) live only in the partition paths: readers add them as
columns, and a file holding them too would clash with the partition. Nothing but finished parts is
ever under frames/, regions/ or events/ (a half-written or foreign file there breaks every reader).

Commit protocol of one unit (the parts one model writes for some videos of one split): write each
part into `staging/.<unit>/` with the unit described in its metadata and in `unit.json`; rename
that folder to `staging/<unit>/` (prepared); move the parts into their partitions, frames last;
append the unit to the ledger; remove the staging folder. Each step is a rename or an fsync'ed
append, and `recover` (run first by every writing run) rolls a prepared unit forward and drops an
unprepared one, so after a crash anywhere and a rerun each unit is in the dataset once or not at
all, and the ledger says which.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from filelock import FileLock, Timeout

from vadctl.common.faults import fault_point
from vadctl.errors import StoreBusyError, StoreError, UsageError
from vadctl.nightly.ledger import Ledger, Unit
from vadctl.scoring.provenance import read_metadata

KINDS = ("frames", "regions", "events")
PUBLISH_ORDER = ("regions", "events", "frames")  # a frames part in place means its unit is whole
META_DIR = "_vadctl"
UNIT_FILE = "unit.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_model_name(name: str, where: str = "model name") -> str:
    """A model's name is a partition value and a folder name: letters, digits, '_', '-', '.', '+'."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"{where} {name!r}: use letters, digits, '_', '-', '.' and '+' (it names a folder)")
    return name


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_durable(table: pl.DataFrame, path: Path, metadata: Mapping[str, str]) -> None:
    table.write_parquet(path, metadata=dict(metadata))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Recovery:
    """What `recover` found left by an earlier, killed run."""

    finished: list[str] = field(default_factory=list)  # prepared units it moved into place
    dropped: list[str] = field(default_factory=list)  # unprepared units it removed (their videos rescore)
    adopted: list[str] = field(default_factory=list)  # units in place whose ledger line was lost

    def notes(self) -> list[str]:
        return (
            [f"finished committing unit {u} of an interrupted run" for u in self.finished]
            + [f"dropped unfinished unit {u} of an interrupted run (its videos are scored again)" for u in self.dropped]
            + [f"ledger: re-recorded unit {u} found in the dataset" for u in self.adopted]
        )


class ResultsDataset:
    """A results dataset folder (created on first write)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"{self.root}: results path exists and is not a folder")

    @property
    def meta_dir(self) -> Path:
        return self.root / META_DIR

    @property
    def staging(self) -> Path:
        return self.meta_dir / "staging"

    def ledger(self) -> Ledger:
        return Ledger(self.meta_dir / "ledger.jsonl")

    @staticmethod
    def part_path(kind: str, model: str, day: str, unit_id: str) -> str:
        """Where a part goes, relative to the dataset root."""
        return f"{kind}/model={check_model_name(model)}/date={day}/part-{unit_id}.parquet"

    # ----- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, wait: float = 0.0, who: Mapping[str, object] | None = None) -> Iterator[None]:
        """Hold the dataset's run lock (released by the OS if the process dies); busy → StoreBusyError."""
        try:
            self.meta_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.root}: cannot write results here: {error.strerror or error}") from None
        lock = FileLock(self.meta_dir / "run.lock")
        owner_file = self.meta_dir / "run.owner"
        try:
            lock.acquire(timeout=max(wait, 0.0))
        except Timeout:
            owner = {}
            with contextlib.suppress(OSError, ValueError):
                owner = json.loads(owner_file.read_text())
            held = f" (pid {owner.get('pid')}, job {owner.get('job')}, since {owner.get('started')})" if owner else ""
            waited = f" after waiting {wait:g} s" if wait > 0 else ""
            raise StoreBusyError(
                f"{self.root}: another `vadctl run` is writing these results{held}; gave up{waited} "
                "(pass --wait SECONDS to wait for it)"
            ) from None
        try:
            info = {"pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds"), **(who or {})}
            owner_file.write_text(json.dumps(info, default=str))
            yield
        finally:
            with contextlib.suppress(OSError):
                owner_file.unlink()
            lock.release()

    def commit(self, unit: Unit, tables: Mapping[str, tuple[pl.DataFrame, Mapping[str, str]]], ledger: Ledger) -> None:
        """Write a unit's parts (kind → (table, metadata)) and record it; see the module docstring.

        Empty regions and events tables write no part (the unit records None for them)."""
        unit.parts = {
            kind: self.part_path(kind, unit.model, unit.date, unit.unit_id)
            if kind == "frames" or len(tables[kind][0])
            else None
            for kind in KINDS
            if kind in tables
        }
        unit.rows = {kind: len(tables[kind][0]) for kind in tables}
        prepare = self.staging / f".{unit.unit_id}"
        shutil.rmtree(prepare, ignore_errors=True)
        prepare.mkdir(parents=True)
        described = unit.to_json()
        for kind, (table, metadata) in tables.items():
            if unit.parts.get(kind):
                _write_durable(table, prepare / f"{kind}.parquet", {**metadata, "vadctl.unit": described})
        (prepare / UNIT_FILE).write_text(described)
        _fsync_dir(prepare)
        fault_point("score.staged")
        os.rename(prepare, self.staging / unit.unit_id)
        _fsync_dir(self.staging)
        fault_point("score.prepared")
        self._publish(unit, ledger)

    def _publish(self, unit: Unit, ledger: Ledger) -> None:
        folder = self.staging / unit.unit_id
        for kind in PUBLISH_ORDER:
            part = unit.parts.get(kind)
            source = folder / f"{kind}.parquet"
            if part and source.exists():
                target = self.root / part
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                _fsync_dir(target.parent)
            fault_point(f"score.{kind}_published")
        if not ledger.has_unit(unit.unit_id):
            unit.committed_at = datetime.now(UTC).isoformat(timespec="seconds")
            ledger.append(unit)
        fault_point("score.ledger_appended")
        shutil.rmtree(folder)

    def pending_units(self) -> list[Unit]:
        """Prepared units a killed run left in staging (the next run finishes committing them)."""
        if not self.staging.is_dir():
            return []
        return [
            Unit.from_dict(json.loads((folder / UNIT_FILE).read_text()))
            for folder in sorted(self.staging.iterdir())
            if not folder.name.startswith(".") and (folder / UNIT_FILE).is_file()
        ]

    def recover(self, ledger: Ledger) -> Recovery:
        """Finish or undo what a killed run left; call holding the run lock, before scoring."""
        found = Recovery()
        if self.staging.is_dir():
            for folder in sorted(self.staging.iterdir()):
                if folder.name.startswith("."):
                    shutil.rmtree(folder, ignore_errors=True)
                    found.dropped.append(folder.name[1:])
                    continue
                unit = Unit.from_dict(json.loads((folder / UNIT_FILE).read_text()))
                self._publish(unit, ledger)
                found.finished.append(unit.unit_id)
        committed = ledger.committed_parts()
        for part in self.part_files("frames"):
            if part in committed:
                continue
            described = read_metadata(self.root / part).get("unit")
            if described:
                unit = Unit.from_dict(json.loads(described))
                if not ledger.has_unit(unit.unit_id):
                    ledger.append(unit)
                    found.adopted.append(unit.unit_id)
        return found

    # ----- reading -----------------------------------------------------------------------------
    def part_files(self, kind: str) -> list[str]:
        """Every part of a kind, relative to the root, sorted."""
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("part-*.parquet"))

    def scan(self, kind: str, *, since: date | None = None, model: str | None = None) -> pl.LazyFrame | None:
        """All parts of a kind as one lazy table (with `model` and `date` from the partitions), or
        None when there are none."""
        if not self.part_files(kind):
            return None
        table = pl.scan_parquet(
            str(self.root / kind / "**" / "*.parquet"),
            hive_partitioning=True,
            include_file_paths="part",
            missing_columns="insert",
            extra_columns="ignore",
        )
        if since is not None:
            table = table.filter(pl.col("date") >= since)
        if model is not None:
            table = table.filter(pl.col("model") == model)
        return table
