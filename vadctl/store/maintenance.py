"""Store maintenance: removing what no longer serves (`vadctl store gc`, `vadctl store prune`).

Both are dry runs unless asked to act, and act video by video under the video's lock (videos a
running extract holds are skipped and listed). Removal follows the commit rule: the record is
switched first (one atomic write), then the data is renamed away in one step and deleted, so a
killed run leaves either the old state or the new one plus trash.

An entry made with other parameters than a newer one of the same feature is not garbage by itself:
a model fitted on it needs it to score. `gc` removes such an older entry only when the caller says
which entries are in use (`in_use`, worked out from model files, jobs and results datasets above
the store) and none of them is it; told nothing, it keeps every committed entry.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import Timeout

from vadctl.common.faults import fault_point
from vadctl.store.index import INDEX_ENTRY
from vadctl.store.records import VideoRecord

if TYPE_CHECKING:
    from vadctl.store.feature_store import FeatureStore


@dataclass
class Removal:
    split: str
    video: str
    what: str  # "orphan <name>", "entry <key> (superseded by <key>)", "video (source missing: ...)"
    bytes: int
    key: str | None = None  # the entry key, for entries
    why: str = ""  # for entries gc kept: why

    def to_dict(self) -> dict:
        data = {"split": self.split, "video": self.video, "what": self.what, "bytes": self.bytes}
        return data | ({"entry": self.key} if self.key else {}) | ({"why": self.why} if self.why else {})


@dataclass
class MaintenanceReport:
    removals: list[Removal] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # videos held by another process, skipped
    applied: bool = False
    kept: list[Removal] = field(default_factory=list)  # older entries gc kept, and why (gc only)
    in_use_known: bool = True  # gc: whether it was told which entries are in use

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.removals)

    def to_dict(self) -> dict:
        return {
            "applied": self.applied,
            "bytes": self.bytes,
            "removals": [r.to_dict() for r in self.removals],
            "busy": self.busy,
            "kept": [r.to_dict() for r in self.kept],
            "in_use_known": self.in_use_known,
        }


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def superseded(record: VideoRecord) -> dict[str, str]:
    """Entry key → the newer entry of the same feature that supersedes it (by commit time)."""
    newest: dict[str, tuple[str, str]] = {}
    for key, summary in record.features.items():
        stamp = (str(summary.get("committed_at", "")), key)
        name = str(summary.get("name", key.split("@")[0]))
        if name not in newest or stamp > newest[name]:
            newest[name] = stamp
    return {
        key: newest[str(summary.get("name", key.split("@")[0]))][1]
        for key, summary in record.features.items()
        if newest[str(summary.get("name", key.split("@")[0]))][1] != key
    }


def _locked_videos(store: FeatureStore, report: MaintenanceReport):
    """(split, record) of every readable video, holding its lock while the caller works on it."""
    for split in store.splits():
        for record in store.videos(split, damaged_ok=True):
            lock = store.video_lock(split, record.video_id)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                report.busy.append(f"{split}/{record.video_id}")
                continue
            try:
                fresh = store.video(split, record.video_id)
                if fresh is not None:
                    yield split, fresh
            finally:
                lock.release()


def gc(
    store: FeatureStore, apply: bool = False, in_use: Mapping[str, Iterable[str]] | None = None
) -> MaintenanceReport:
    """Data no record refers to (left by killed runs), the trash and the quarantine; and entries
    superseded by a newer entry of the same feature that nothing in `in_use` (entry key → who
    needs it) needs. `in_use` None: nobody said what is in use, so every committed entry stays
    (listed in `kept`)."""
    report = MaintenanceReport(applied=apply, in_use_known=in_use is not None)
    for split, record in _locked_videos(store, report):
        folder = store.video_dir(split, record.video_id)
        old = {}
        for key, newer in sorted(superseded(record).items()):
            size = _size(folder / record.group_of(key))
            needed = sorted(in_use.get(key, ())) if in_use is not None else None
            if needed is None or needed:
                why = f"needed by {', '.join(needed)}" if needed else "nothing said which entries are in use"
                report.kept.append(Removal(split, record.video_id, f"entry {key} (older than {newer})", size, key, why))
            else:
                old[key] = newer
                what = f"entry {key} (superseded by {newer}, no model named needs it)"
                report.removals.append(Removal(split, record.video_id, what, size, key))
        keep = record.nodes() - {record.group_of(key) for key in old}
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name not in record.nodes():
                report.removals.append(Removal(split, record.video_id, f"orphan {child.name}", _size(child)))
        if apply:
            if old:
                for key in old:
                    record.features.pop(key)
                store.save_video(record)
                fault_point("store.gc.switched")
            for child in sorted(folder.iterdir()):
                if child.is_dir() and child.name not in keep:
                    store.sidecar.discard(child)
                    fault_point("store.gc.removing")
    for name in ("trash", "quarantine"):
        folder = store.sidecar.path / name
        if folder.is_dir() and any(folder.iterdir()):
            report.removals.append(Removal("-", "-", f"sidecar {name}/", _size(folder)))
            if apply:
                for item in folder.iterdir():
                    shutil.rmtree(item, ignore_errors=True)
    return report


def prune_missing_sources(store: FeatureStore, apply: bool = False) -> MaintenanceReport:
    """Videos whose source file or folder is gone from disk."""
    report = MaintenanceReport(applied=apply)
    for split, record in _locked_videos(store, report):
        if record.source and not os.path.exists(record.source):
            size = _size(store.video_dir(split, record.video_id))
            report.removals.append(Removal(split, record.video_id, f"video (source missing: {record.source})", size))
            if apply:
                store.delete_video(split, record.video_id)
                fault_point("store.prune.removed")
    return report


def forget_damaged(store: FeatureStore, problems) -> MaintenanceReport:
    """Take damaged data out of use so the next `vadctl extract` redoes it: a damaged entry leaves
    its record (then its data moves to the quarantine); a damaged clip table or unreadable record
    moves the whole video there. Nothing is deleted: quarantined data stays in the sidecar until
    `vadctl store gc --yes`."""
    report = MaintenanceReport(applied=True)
    by_video: dict[tuple[str, str], list] = {}
    for problem in problems:
        if problem.entry != INDEX_ENTRY:  # the records index is a cache (rebuilt by verify), not data
            by_video.setdefault((problem.split, problem.video), []).append(problem)
    for (split, video), found in sorted(by_video.items()):
        record_problem = any(p.entry is None for p in found)
        if record_problem:  # `video` is the folder name: the record cannot say its id
            target = store.quarantine(split, video)
            report.removals.append(Removal(split, video, f"video folder (unreadable record) → {target}", 0))
            continue
        lock = store.video_lock(split, video)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            report.busy.append(f"{split}/{video}")
            continue
        try:
            record = store.video(split, video)
            if record is None:
                continue
            folder = store.video_dir(split, video)
            if any(p.entry == "clips" for p in found):
                target = store.quarantine(split, folder.name)
                report.removals.append(Removal(split, video, f"video (damaged clip table) → {target}", 0))
                continue
            keys = [p.entry for p in found if p.entry in record.features and "legacy" not in p.problem]
            groups = [record.group_of(key) for key in keys]
            for key in keys:
                record.features.pop(key)
            if keys:
                store.save_video(record)
                fault_point("store.forget.switched")
            for key, group in zip(keys, groups, strict=True):
                target = store.quarantine(split, f"{folder.name}/{group}")
                report.removals.append(Removal(split, video, f"entry {key} → {target}", 0))
        finally:
            lock.release()
    return report
