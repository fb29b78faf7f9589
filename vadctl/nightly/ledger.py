"""The ledger of a results dataset: which (video, fingerprint, feature entries, model digest) are scored.

One JSON line per committed unit (the parts one model wrote for up to N videos of one split in one
run), appended only after every part of the unit is in place. A run scores exactly the keys the
ledger lacks, so a video is scored once per model file, fingerprint and feature entries, and
rescored (into new rows) only when one of them changes.

The ledger is the one authority on "scored": deleting old date partitions to save space does not
make them rescored. It can also be rebuilt: every frames part carries its unit in its Parquet
metadata (see `dataset.ResultsDataset.recover`). A line cut short by a crash is ignored and cut
off before the next append; the unit it described is recovered from the staging area.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from vadctl.errors import StoreError


class ScoreKey(NamedTuple):
    """What makes two scorings the same: same video content, same features read, same model file."""

    split: str
    video: str
    fingerprint: str
    entries: str
    model_sha256: str


@dataclass
class Unit:
    """Parts one model wrote for some videos of one split in one run, committed together."""

    unit_id: str  # <run id>-<sequence number>
    run_id: str
    model: str
    model_sha256: str
    split: str
    entries: str
    date: str
    videos: list[list[str]]  # [video id, fingerprint]
    parts: dict[str, str | None]  # kind → path relative to the dataset root (None: no rows)
    rows: dict[str, int] = field(default_factory=dict)
    committed_at: str | None = None

    def keys(self) -> Iterator[ScoreKey]:
        for video, fingerprint in self.videos:
            yield ScoreKey(self.split, video, fingerprint, self.entries, self.model_sha256)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> Unit:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Ledger:
    """Append-only JSON lines at `path`; loaded whole (one line per unit keeps it small)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.units: dict[str, Unit] = {}
        self.keys: set[ScoreKey] = set()
        self._torn = False
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        # Everything before the last newline was written whole; what follows it is a torn line.
        self._torn = bool(lines[-1])
        for number, line in enumerate(lines[:-1], 1):
            if not line.strip():
                continue
            try:
                unit = Unit.from_dict(json.loads(line))
            except (ValueError, TypeError) as error:
                raise StoreError(f"{self.path}: line {number} is not a ledger entry ({error})") from None
            self._add(unit)

    def _add(self, unit: Unit) -> None:
        self.units[unit.unit_id] = unit
        self.keys.update(unit.keys())

    def include(self, unit: Unit) -> None:
        """Count a unit as scored in memory only, without recording it (planning a dry run)."""
        self._add(unit)

    def __contains__(self, key: ScoreKey) -> bool:
        return key in self.keys

    def has_unit(self, unit_id: str) -> bool:
        return unit_id in self.units

    def committed_parts(self) -> set[str]:
        return {part for unit in self.units.values() for part in unit.parts.values() if part}

    def append(self, unit: Unit) -> None:
        """Add one unit durably (fsync). Call only once all its parts are in place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if self._torn:  # cut a line a crash left half written, so the next one starts clean
                os.ftruncate(fd, self.path.read_bytes().rfind(b"\n") + 1)
                self._torn = False
            line = memoryview((unit.to_json() + "\n").encode())
            while line:
                line = line[os.write(fd, line) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self._add(unit)
