"""The feature store: a Zarr v3 hierarchy keyed by split, video and feature entry.

Layout (schema 2):

    <store>/                         root attrs: {"vadctl_store": {schema, created_by, ...}}
      videos/<split>/<video key>/    attrs: {"vadctl_video": the video's record}
        clips                        (n_clips, 2) int64 [start, stop) (the record names it)
        <entry group>/               one feature entry (the record names it; usually `name@hash`)
          <array>                    dense: first axis = frame (or clip); ragged: rows, see `offsets`
            zarr.json, c.<i>.0…      shard files (inner chunks of ≤ 2 MiB, shards of ≤ 64 MiB, see
                                     `zarrio`); entries written before vadctl wrote shards hold one
                                     file per chunk and read as they are (each array's zarr.json says)
    <store>.vadctl/                  not Zarr: lock files, the trash (see `sidecar`), the records index (`index`)

Commit rule: data is written first, into groups no committed record refers to; then one atomic
update of the video's record switches to it; only then is superseded data removed (renamed away
in one step). The record alone says what is complete, so a process killed at any point leaves the
old version or the new one, plus leftovers that the next writer of that video removes. One writer
per video (a lock file per video); readers need no lock (see `entry.Entry`).

The store knows nothing of featurizers or models: it stores specs (name, version, params, hash)
and arrays, and answers "which entries exist", "give me this entry" and "is it intact".
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from filelock import FileLock

from vadctl import __version__
from vadctl.common.faults import fault_point
from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, StoreError, UsageError
from vadctl.store import integrity
from vadctl.store.entry import Entry
from vadctl.store.index import INDEX_ENTRY, RecordsIndex, scan_split
from vadctl.store.layout import (
    LEGACY_SCHEMAS,
    ROOT_KEY,
    SCHEMA_VERSION,
    VIDEO_KEY,
    _read_json,
    read_info,
    record_at,
    stamped_record_at,
)
from vadctl.store.migrate import migrate
from vadctl.store.records import VideoRecord, check_split, legacy_key, video_key
from vadctl.store.sidecar import Sidecar, remove_stale_partials
from vadctl.store.writer import PART_COUNTS, EntryWriter, create_entry_arrays
from vadctl.store.zarrio import create_array, open_root


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Problem:
    """Something `verify` found wrong: where, and what."""

    split: str
    video: str
    entry: str | None
    problem: str

    def to_dict(self) -> dict:
        return {"split": self.split, "video": self.video, "entry": self.entry, "problem": self.problem}

    def __str__(self) -> str:
        where = f"{self.split}/{self.video}" + (f" {self.entry}" if self.entry else "")
        return f"{where}: {self.problem}"


class FeatureStore:
    """Open (or create) a vadctl feature store at `path`."""

    use_index = True  # read records through the records index (False: every record from disk; benchmarks)

    def __init__(self, path: Path | str, *, create: bool = False, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._folders: dict[tuple[str, str], Path] = {}  # (split, video id) → its folder (schema 2)
        self.sidecar = Sidecar(self.path)
        meta = self.path / "zarr.json"
        if not meta.is_file():
            if not create:
                raise StoreError(f"{self.path}: no feature store here (create one with `vadctl extract`)")
            self._create()
        self.info = self._read_info()
        if not read_only:
            self._check_writable()
            if self.schema in LEGACY_SCHEMAS:
                migrate(self)
                self.info = self._read_info()
            self.sidecar.empty_trash()
        self.root = self._open(read_only=True, strict=self.schema == SCHEMA_VERSION)
        self._writable: zarr.Group | None = None
        self.last_scan_reads = 0  # records the last `scan` read from disk (not from the index)

    # ----- opening -----------------------------------------------------------------------------
    @property
    def schema(self) -> int:
        return int(self.info["schema"])

    def _read_info(self) -> dict:
        return read_info(self.path)

    def _create(self) -> None:
        """Build the skeleton beside the target and rename it into place: a store either does not
        exist or is whole, and of two processes creating it at once one wins and both use it."""
        try:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise StoreError(f"{self.path}: exists and is not an empty folder; will not create a store there")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create a store here: {error.strerror or error}") from None
        staging = self.path.parent / f".{self.path.name}.creating-{uuid.uuid4().hex[:8]}"
        try:
            root = zarr.open_group(staging, mode="w", zarr_format=3)
            root.attrs[ROOT_KEY] = {"schema": SCHEMA_VERSION, "created_by": __version__, "created_at": _now()}
            root.require_group("videos")
            try:
                os.rename(staging, self.path)  # atomic; refuses a non-empty target
            except OSError:
                if not (self.path / "zarr.json").exists():
                    raise StoreError(f"{self.path}: could not create the store here") from None
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create a store here: {error.strerror or error}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _check_writable(self) -> None:
        if not os.access(self.path, os.W_OK) or not os.access(self.path / "videos", os.W_OK | os.X_OK):
            raise StoreError(f"{self.path}: the store is read-only here (no write permission); open it for reading")
        self.sidecar.lock("store")  # creates the lock folder, or fails with a one-line error
        locks = self.sidecar.path / "locks"
        if not os.access(locks, os.W_OK | os.X_OK):
            raise StoreError(f"{locks}: the store's lock folder is read-only here; writers need to create lock files")

    def _open(self, read_only: bool, strict: bool) -> zarr.Group:
        try:
            return open_root(self.path, read_only=read_only, strict=strict)
        except Exception as error:
            raise StoreError(f"{self.path}: cannot open as a Zarr v3 store: {str(error)[:200]}") from None

    @property
    def writable(self) -> zarr.Group:
        """The root for writing (plain store: first writes of partial chunks find nothing to merge)."""
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        if self._writable is None:
            self._writable = self._open(read_only=False, strict=False)
        return self._writable

    def key(self, split: str, video_id: str) -> str:
        """The folder name of a video. Schema 1 named ids with '~' unescaped; while it is being
        migrated some folders already have their new name, so the one on disk wins."""
        current = video_key(video_id)
        if self.schema in LEGACY_SCHEMAS:
            old = legacy_key(video_id)
            if old != current and (self.path / "videos" / split / old).is_dir():
                return old
        return current

    def _node(self, split: str, video_id: str, name: str | None = None) -> str:
        path = f"videos/{check_split(split)}/{self.key(split, video_id)}"
        return f"{path}/{name}" if name else path

    # ----- locks -------------------------------------------------------------------------------
    def video_lock(self, split: str, video_id: str) -> FileLock:
        """An exclusive lock on one video; released by the OS if the process dies."""
        return self.sidecar.lock(f"{check_split(split)}.{video_key(video_id)}")

    def store_lock(self) -> FileLock:
        """An exclusive lock on the whole store (migration, maintenance)."""
        return self.sidecar.lock("store")

    # ----- records -----------------------------------------------------------------------------
    def video_dir(self, split: str, video_id: str) -> Path:
        if self.schema != SCHEMA_VERSION:  # a legacy folder name depends on what is on disk
            return self.path / self._node(split, video_id)
        folder = self._folders.get((split, video_id))
        if folder is None:  # a video's folder name depends on its id alone: computed once
            folder = self._folders[split, video_id] = self.path / self._node(split, video_id)
        return folder

    def splits(self) -> list[str]:
        folder = self.path / "videos"
        if not folder.is_dir():
            return []
        return sorted(d.name for d in folder.iterdir() if d.is_dir() and (d / "zarr.json").is_file())

    def _record_at(self, folder: Path) -> VideoRecord | None:
        return record_at(folder)

    def records_index(self, split: str) -> RecordsIndex | None:
        """The split's records index (see `index`), or None where it is not used: turned off
        (`use_index`), or a store of an older schema (its records are rewritten on migration)."""
        if not self.use_index or self.schema != SCHEMA_VERSION:
            return None
        return RecordsIndex(self.sidecar.path, check_split(split))

    def scan(self, split: str) -> tuple[list[VideoRecord], list[Problem]]:
        """(records of a split, problems with folders whose record cannot be read). Records come
        from the split's records index where it holds them unchanged, else from their folders
        (and the index is refreshed)."""
        folder = self.path / "videos" / check_split(split)
        records, problems = [], []
        if not folder.is_dir():
            return records, problems
        index = self.records_index(split)
        if index is not None:
            found, unreadable, self.last_scan_reads = scan_split(folder, index, stamped_record_at)
            try:
                records = [VideoRecord.from_attrs(attrs) for _, attrs in found if attrs is not None]
            except (TypeError, ValueError, KeyError, AttributeError):  # a damaged cache: read the records
                found, unreadable, self.last_scan_reads = scan_split(folder, index, stamped_record_at, use_cache=False)
                records = [VideoRecord.from_attrs(attrs) for _, attrs in found if attrs is not None]
            problems = [Problem(split, name, None, str(error)) for name, error in unreadable]
            return sorted(records, key=lambda r: r.video_id), problems
        for child in sorted(folder.iterdir(), key=lambda p: p.name):
            if not child.is_dir():
                continue
            try:
                record = self._record_at(child)
            except StoreError as error:
                problems.append(Problem(split, child.name, None, str(error)))
                continue
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: r.video_id), problems

    def videos(
        self, split: str, damaged_ok: bool = False, scanned: tuple[list[VideoRecord], list[Problem]] | None = None
    ) -> list[VideoRecord]:
        """All video records of a split. A corrupt record is an error (models must not silently
        fit or score on part of the data) unless `damaged_ok`. `scanned`: this split's `scan()`,
        already made (a dry run plans extraction and scoring from one scan)."""
        records, problems = scanned if scanned is not None else self.scan(split)
        if problems and not damaged_ok:
            raise StoreError(
                f"{problems[0].problem}; `vadctl store verify` lists damage and `vadctl extract` redoes it"
            )
        return records

    def video(self, split: str, video_id: str) -> VideoRecord | None:
        return self._record_at(self.video_dir(split, video_id))

    def save_video(self, record: VideoRecord) -> None:
        """Write a video's record: one atomic metadata write (caller holds the video lock)."""
        record.updated_at = _now()
        group = self.writable.require_group(self._node(record.split, record.video_id))
        group.attrs[VIDEO_KEY] = record.to_attrs()

    def prepare_video(self, split: str, video_id: str) -> None:
        """Make the video's folder, so a version can be written into it before its record exists."""
        self.writable.require_group(self._node(split, video_id))

    def node(self, record: VideoRecord, name: str) -> Any:
        """A child node (group or array) of a video, read through the strict root."""
        return self.root[self._node(record.split, record.video_id, name)]

    def free_name(self, split: str, video_id: str, base: str) -> str:
        """A child name for new data that no existing node has: `base` if free, else `base~xxxxxx`."""
        folder = self.video_dir(split, video_id)
        name = base
        while (folder / name).exists():
            name = f"{base}~{uuid.uuid4().hex[:6]}"
        return name

    # ----- writing a version -------------------------------------------------------------------
    def write_clips(self, record: VideoRecord, table: np.ndarray) -> None:
        """Write the clip table beside any current one; the next commit switches to it."""
        name = self.free_name(record.split, record.video_id, "clips")
        group = self.writable[self._node(record.split, record.video_id)]
        table = np.asarray(table, dtype=np.int64).reshape(-1, 2)
        create_array(group, name, shape=table.shape, dtype="int64", dims=("clip", "bound"), data=table)
        record.clips = name
        record.clips_files = integrity.manifest(self.video_dir(record.split, record.video_id), [name])

    def entry_writer(self, record: VideoRecord, spec: FeatureSpec, arrays, n_index: int) -> EntryWriter:
        """Start writing an entry into a fresh group (never one a record refers to)."""
        name = self.free_name(record.split, record.video_id, spec.key)
        video = self.writable[self._node(record.split, record.video_id)]
        group = video.create_group(name)
        group.attrs["spec"] = spec.to_dict()
        writer = EntryWriter(group, spec, arrays, n_index)
        writer.group_name = name
        return writer

    # ----- writing a version in segments (a long video extracted by several workers) ----------
    def prepare_entry(self, record: VideoRecord, spec: FeatureSpec, arrays, n_index: int, tag: str) -> str:
        """Create an entry's group and empty arrays for the whole video, beside what is committed,
        under a name of this version's own (`tag`), so nothing but this version's segments writes
        there; returns the group's name. Caller holds (or is lent) the video's lock."""
        name = self.free_name(record.split, record.video_id, f"{spec.key}~{tag}")
        group = self.writable[self._node(record.split, record.video_id)].create_group(name)
        group.attrs["spec"] = spec.to_dict()
        create_entry_arrays(group, spec, arrays, n_index)
        return name

    def segment_writer(
        self, record: VideoRecord, spec: FeatureSpec, arrays, n_index: int, group: str, rows: tuple[int, int], part: str
    ) -> EntryWriter:
        """Write rows [first, stop) of a prepared entry: dense rows in place (chunk-aligned), ragged
        rows into the part group `part` (a sibling no record refers to), joined by `join_entry`."""
        video = self.writable[self._node(record.split, record.video_id)]
        ragged = any(a.ragged for a in arrays.values())
        part_group = video.create_group(part) if ragged else None
        first, stop = rows
        return EntryWriter(
            video[group], spec, arrays, n_index, first=first, stop=stop, ragged_group=part_group, create=False
        )

    def join_entry(
        self, record: VideoRecord, spec: FeatureSpec, arrays, n_index: int, group: str, parts: list[str], extra=None
    ) -> dict[str, Any]:
        """Append the segments' ragged parts in order to the prepared entry, write its offsets and
        extra arrays: the same arrays, chunk for chunk, as one writer would have written."""
        video = self.writable[self._node(record.split, record.video_id)]
        ragged = {name: a for name, a in arrays.items() if a.ragged}
        writer = EntryWriter(video[group], spec, ragged, n_index, create=False)
        for part in parts if ragged else []:
            source = video[part]
            counts = np.asarray(source[PART_COUNTS][...])
            ends = np.cumsum(counts)
            step = 4096  # indices per read: bounded memory for parts of any length
            for lo in range(0, len(counts), step):
                hi = min(lo + step, len(counts))
                row_lo, row_hi = (int(ends[lo - 1]) if lo else 0), int(ends[hi - 1])
                writer.write(ragged={n: source[n][row_lo:row_hi] for n in ragged}, counts=counts[lo:hi])
        return writer.finish(extra)

    def discard_nodes(self, split: str, video_id: str, names) -> None:
        """Remove children of a video folder that no record refers to (segments' parts), each in one step."""
        folder = self.video_dir(split, video_id)
        for name in names:
            self.sidecar.discard(folder / name)

    def commit_video(
        self,
        record: VideoRecord,
        written: Mapping[str, tuple[FeatureSpec, Mapping[str, Any], str]],
        previous: VideoRecord | None = None,
    ) -> None:
        """Make written entries (key → (spec, summary, group)) part of `record`, switch to it in
        one atomic record write, then remove what `previous` held that the new record does not."""
        folder = self.video_dir(record.split, record.video_id)
        for key, (spec, summary, group) in written.items():
            files = integrity.manifest(folder / group)
            self.writable[self._node(record.split, record.video_id, group)].attrs[integrity.MANIFEST_KEY] = files
            record.features[key] = {
                **spec.to_dict(),
                **summary,
                "group": group,
                "files": integrity.array_summary(files),
                "sizes": integrity.sizes_of(files),
                "manifest": integrity.digest(files),
                "committed_at": _now(),
            }
        fault_point("store.commit.before_switch")
        self.save_video(record)
        fault_point("store.commit.after_switch")
        stale = previous.nodes() - record.nodes() if previous is not None else set()
        for name in sorted(stale):
            self.sidecar.discard(folder / name)
            fault_point("store.commit.removing")

    def add_video(self, record: VideoRecord, clips: np.ndarray) -> None:
        """Record a new video with its clip table and no features (tools and tests)."""
        self.prepare_video(record.split, record.video_id)
        self.write_clips(record, clips)
        self.save_video(record)

    def commit_entry(self, record: VideoRecord, writer: EntryWriter, summary: Mapping[str, Any]) -> None:
        """Commit one written entry into the video's current record (tools and tests)."""
        previous = self.video(record.split, record.video_id)
        current = VideoRecord.from_attrs(previous.to_attrs()) if previous is not None else record
        self.commit_video(current, {writer.spec.key: (writer.spec, summary, writer.group_name)}, previous)
        record.features = current.features

    def clean_video(self, split: str, video_id: str) -> list[str]:
        """Remove what no committed record refers to in a video's folder (leftovers of killed or
        failed writes); caller holds the video lock. Returns the names removed."""
        folder = self.video_dir(split, video_id)
        if not folder.is_dir():
            return []
        remove_stale_partials(folder)
        record = self._record_at(folder)
        keep = record.nodes() if record is not None else set()
        removed = []
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name not in keep:
                self.sidecar.discard(child)
                removed.append(child.name)
        return removed

    def copy_video(self, split: str, video_id: str, to_split: str) -> VideoRecord | None:
        """Copy a video committed "ok" in `split` (its record and every node the record names) into
        `to_split`, where it has no record yet: the same file in two splits is decoded once, and
        extract then finds the copy up to date (or redoes it, like any record, if the file changed).
        Committed like a write (nodes first, then the record), under both videos' locks; returns the
        new record, or None when there is nothing to copy or `to_split` holds the video already."""
        if check_split(to_split) == split:
            raise UsageError(f"cannot copy video {video_id!r} of split {split!r} onto itself")
        first, second = sorted((self.video_lock(split, video_id), self.video_lock(to_split, video_id)), key=_lock_path)
        with first, second:  # in one order for every caller: two copies never wait on each other
            record = self.video(split, video_id)
            if record is None or record.status != "ok" or self.video(to_split, video_id) is not None:
                return None
            self.clean_video(to_split, video_id)  # leftovers of a killed write or copy
            self.prepare_video(to_split, video_id)
            source, target = self.video_dir(split, video_id), self.video_dir(to_split, video_id)
            for name in sorted(record.nodes()):
                shutil.copytree(source / name, target / name)
                fault_point("store.copy.node_copied")
            copy = VideoRecord.from_attrs(record.to_attrs())
            copy.split = to_split
            self.save_video(copy)
            fault_point("store.copy.record_saved")
            return copy

    def delete_video(self, split: str, video_id: str) -> None:
        """Forget a video and its features in one step (its folder is renamed away, then deleted);
        caller holds the video lock."""
        self.sidecar.discard(self.video_dir(split, video_id))

    def quarantine(self, split: str, relative: str) -> Path:
        """Move a video folder (or a node inside one: 'key/group') out of the store, kept in the
        sidecar's quarantine, not deleted."""
        source = self.path / "videos" / check_split(split) / relative
        name = relative.replace("/", "..")
        target = self.sidecar.path / "quarantine" / f"{split}.{name}.{time.time_ns()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        return target

    # ----- reading entries ---------------------------------------------------------------------
    def clip_table(self, record: VideoRecord) -> np.ndarray:
        """The video's (n_clips, 2) clip table, following the record if the video is replaced
        meanwhile; a table that is gone while its record still names it is damage."""
        for _ in range(3):
            try:
                return np.asarray(self.node(record, record.clips)[...])
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as error:
                fresh = self.video(record.split, record.video_id)
                if fresh is None:
                    raise StoreError(f"video {record.split}/{record.video_id} was removed while being read") from None
                if fresh.clips == record.clips:
                    raise StoreError(
                        f"clip table of video {record.split}/{record.video_id} is damaged ({str(error)[:160]})"
                    ) from None
                record = fresh
        raise StoreError(f"video {record.split}/{record.video_id} kept changing while being read; run again")

    def entry(self, record: VideoRecord, spec: FeatureSpec) -> Entry:
        if spec.key not in record.features:
            raise FeatureError(f"video {record.split}/{record.video_id} has no committed feature {spec.key}")
        return Entry(self, record, spec)

    def entry_path(self, split: str, video_id: str, feature: str) -> str:
        """The Zarr group path of a video's committed entry (`feature`: a name, or NAME@HASH when the
        video holds several): what `xarray.open_zarr(store, group=...)` takes. Committed entries
        may live under another folder name than NAME@HASH (after `extract --force`), so read the
        path here rather than writing it by hand."""
        record = self.video(split, video_id)
        if record is None:
            raise FeatureError(f"split {split!r} of {self.path} has no video {video_id!r}")
        name, _, prefix = feature.partition("@")
        keys = sorted(
            k for k, s in record.features.items() if s["name"] == name and k.partition("@")[2].startswith(prefix)
        )
        if len(keys) != 1:
            have = ", ".join(sorted(record.features)) or "none"
            what = "no" if not keys else "several"
            raise FeatureError(f"video {split}/{video_id} has {what} committed {feature!r} (it has: {have})")
        return self._node(split, video_id, record.group_of(keys[0]))

    def specs(self, split: str | None = None) -> dict[str, tuple[FeatureSpec, int]]:
        """Every committed entry spec in the store (or one split) and in how many videos it is."""
        found: dict[str, tuple[FeatureSpec, int]] = {}
        for each in [split] if split else self.splits():
            for record in self.videos(each, damaged_ok=True):
                for key, summary in record.features.items():
                    spec, count = found.get(key, (None, 0))
                    found[key] = (spec or FeatureSpec.from_dict(summary), count + 1)
        return found

    def candidates(self, ref: str, split: str | None = None) -> list[FeatureSpec]:
        """Committed specs matching a reference ('velocity' or 'velocity@3fa2')."""
        name, _, prefix = ref.partition("@")
        return [spec for spec, _ in self.specs(split).values() if spec.name == name and spec.hash.startswith(prefix)]

    def resolve(
        self, ref: str, split: str | None = None, narrow: Callable[[list[FeatureSpec]], list[FeatureSpec]] | None = None
    ) -> FeatureSpec:
        """A feature reference ('velocity' or 'velocity@3fa2') to the one matching committed spec.

        `narrow` (list of specs → the preferred ones) breaks ties, e.g. the newest featurizer version.
        """
        name, _, _ = ref.partition("@")
        matches = self.candidates(ref, split)
        if len(matches) > 1 and narrow is not None:
            matches = narrow(matches) or matches
        where = f"split {split!r} of " if split else ""
        if not matches:
            have = sorted({spec.name for spec, _ in self.specs(split).values()})
            raise FeatureError(
                f"{where}{self.path} has no feature {ref!r} (it has: {', '.join(have) or 'none'}); "
                f"run `vadctl extract --features {name}`"
            )
        if len(matches) > 1:
            keys = ", ".join(sorted(spec.key for spec in matches))
            raise FeatureError(f"feature {ref!r} is ambiguous in {where}{self.path}: {keys}; name one as NAME@HASH")
        return matches[0]

    # ----- integrity ---------------------------------------------------------------------------
    def entry_problem(self, record: VideoRecord, key: str, deep: bool = False) -> str | None:
        """None when a committed entry holds what was written (cheap: file counts and sizes;
        `deep`: every file re-hashed), else what is wrong. Unverifiable (legacy) entries pass."""
        summary = record.features[key]
        files = summary.get("files")
        if files is None:
            return None
        folder = os.path.join(self.video_dir(record.split, record.video_id), record.group_of(key))
        sizes = summary.get("sizes")
        if isinstance(sizes, Mapping):
            problem = integrity.sizes_problem(folder, sizes)
        else:  # records written before sizes were kept: file counts and bytes per array
            problem = integrity.cheap_problem(folder, files)
        if problem is None and deep:
            group = Path(folder)
            try:
                manifest = _read_json(group / "zarr.json").get("attributes", {}).get(integrity.MANIFEST_KEY)
            except StoreError as error:
                return str(error)
            if not isinstance(manifest, Mapping):
                return "its manifest is missing"
            problem = integrity.deep_problem(group, manifest, summary.get("manifest"))
        return problem

    def clips_problem(self, record: VideoRecord, deep: bool = False) -> str | None:
        if record.clips_files is None:
            return None
        folder = self.video_dir(record.split, record.video_id)
        problem = integrity.sizes_problem(folder, integrity.sizes_of(record.clips_files))
        if problem is None and deep:
            problem = integrity.deep_problem(folder, record.clips_files, None)
        return problem

    def require_intact(self, split: str, videos: Iterable[str], keys: Iterable[str]) -> None:
        """Refuse (one line) to read entries that fail the cheap check."""
        keys = list(keys)
        for video_id in videos:
            record = self.video(split, video_id)
            if record is None:
                raise FeatureError(f"split {split!r} of {self.path} has no video {video_id!r}")
            for key in keys:
                if key in record.features:
                    problem = self.entry_problem(record, key)
                    if problem:
                        raise StoreError(
                            f"feature {key} of video {split}/{video_id} is damaged: {problem}; "
                            "`vadctl extract` redoes it (`vadctl store verify` lists all damage)"
                        )

    def verify(self, deep: bool = False, splits: Iterable[str] | None = None) -> tuple[int, list[Problem]]:
        """(entries checked, problems) over the whole store or some splits."""
        checked, problems = 0, []
        for split in splits or self.splits():
            problems += self.index_problems(split)
            records, unreadable = self.scan(split)
            problems += unreadable
            for record in records:
                problem = self.clips_problem(record, deep)
                if problem:
                    problems.append(Problem(split, record.video_id, "clips", problem))
                for key in sorted(record.features):
                    checked += 1
                    if record.features[key].get("files") is None:
                        problems.append(Problem(split, record.video_id, key, "no manifest (legacy entry)"))
                        continue
                    problem = self.entry_problem(record, key, deep)
                    if problem:
                        problems.append(Problem(split, record.video_id, key, problem))
        return checked, problems

    def index_problems(self, split: str) -> list[Problem]:
        """Where the split's records index disagrees with the records it claims to hold unchanged
        (a stale index is no problem: readers re-read what changed). The index is a cache: a
        disagreeing one is removed, and the next read of the split rebuilds it; no feature is
        affected."""
        index = self.records_index(split)
        if index is None or not index.path.exists():
            return []
        cached = index.load()
        fix = "the index is a cache, rebuilt from the records; no feature is affected"
        if cached is None:
            index.remove()
            return [Problem(split, "-", INDEX_ENTRY, f"{index.path} is unreadable ({fix})")]
        folder = self.path / "videos" / split
        found = []
        for name, hit in sorted(cached.items()):
            try:
                attrs, stamp = stamped_record_at(folder / name)
            except StoreError:
                continue  # an unreadable record is reported as such by the scan
            if stamp is None or stamp != hit.get("stamp"):
                continue  # stale: changed since it was indexed, read from disk by every reader
            if attrs != hit.get("record"):
                video = attrs.get("video_id", name) if isinstance(attrs, dict) else name
                found.append(Problem(split, video, INDEX_ENTRY, f"the records index disagrees with its record ({fix})"))
        if found:
            index.remove()
        return found

    def disk_bytes(self, split: str | None = None, video_id: str | None = None, key: str | None = None) -> int:
        base = self.path / "videos"
        if split:
            base = base / split
            if video_id:
                base = base / self.key(split, video_id)
                if key:
                    record = self.video(split, video_id)
                    base = base / (record.group_of(key) if record and key in record.features else key)
        if not base.exists():
            return 0
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())


def _lock_path(lock: FileLock) -> str:
    return lock.lock_file


def open_or_raise(path: Path | str, **options) -> FeatureStore:
    """`FeatureStore(...)` with OS errors (permissions, odd paths) as one-line store errors."""
    try:
        return FeatureStore(path, **options)
    except OSError as error:
        raise StoreError(f"{path}: {error.strerror or error}") from None
    except UsageError:
        raise
