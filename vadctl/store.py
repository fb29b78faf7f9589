"""The feature store: a Zarr v3 hierarchy keyed by split, video and feature entry.

Layout (one store per project/dataset):

    <store>/                      root attrs: {"vadctl_store": {schema, created_by, ...}}
      videos/<split>/<video key>/ attrs: {"vadctl_video": facts + committed features}
        clips                     (n_clips, 2) int64 [start, stop) of the clip table
        <name>@<hash>/            one feature entry: the featurizer's arrays
          <array>                 dense: first axis = frame (or clip); ragged: rows, see `offsets`
          offsets                 ragged entries only: (n_index + 1,) row offsets per frame/clip
      _locks/                     lock files (one per video, one for the store)

Commit rule: an entry's arrays are written first; then one atomic update of the video group's
attributes lists it under "features". Only that list says what is complete, so a killed run leaves
at most unlisted data, which the next run overwrites. One writer per video, enforced by a lock file
per video; different videos are written in parallel by different processes.

The store knows nothing of featurizers or models: it stores specs (name, version, params, hash) and
arrays, and answers "which entries exist" and "give me this entry for these videos".
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import zarr
from filelock import FileLock
from zarr.codecs import BloscCodec

from vadctl import __version__
from vadctl.errors import FeatureError, StoreError, UsageError
from vadctl.specs import ArraySpec, FeatureSpec, Fingerprint

SCHEMA_VERSION = 1
ROOT_KEY = "vadctl_store"
VIDEO_KEY = "vadctl_video"
CHUNK_BYTES = 2 * 1024 * 1024
COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
_SPLIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_split(split: str) -> str:
    if not split or not set(split) <= _SPLIT_CHARS:
        raise UsageError(f"split {split!r}: use letters, digits, '-' and '_' only (e.g. train, test)")
    return split


def video_key(video_id: str) -> str:
    """A video id as one Zarr node name: '/' and '%' are escaped; ids never clash after escaping."""
    key = quote(video_id, safe="")
    if key.startswith("__"):  # Zarr reserves names starting with '__'
        key = "%5F" + key[1:]
    return key


@dataclass
class VideoRecord:
    """A video's facts as the store holds them, and which feature entries are committed."""

    split: str
    video_id: str
    source: str
    fingerprint: Fingerprint | None
    status: str = "ok"  # "ok" or "failed"
    error: str | None = None
    n_frames: int = 0
    fps: float = 0.0
    height: int = 0
    width: int = 0
    scene: str | None = None
    clip_spec: dict | None = None
    features: dict[str, dict] = field(default_factory=dict)
    updated_at: str = ""

    @property
    def key(self) -> str:
        return video_key(self.video_id)

    def has(self, spec: FeatureSpec) -> bool:
        return spec.key in self.features

    def to_attrs(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "fingerprint"}
        data["fingerprint"] = self.fingerprint.to_dict() if self.fingerprint else None
        return data

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any]) -> VideoRecord:
        data = dict(data)
        fp = data.pop("fingerprint", None)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(fingerprint=Fingerprint.from_dict(fp) if fp else None, **known)


class Entry:
    """Read access to one committed feature entry of one video."""

    def __init__(self, record: VideoRecord, spec: FeatureSpec, group: zarr.Group, summary: Mapping[str, Any]):
        self.record = record
        self.spec = spec
        self.group = group
        self.summary = dict(summary)

    @property
    def video_id(self) -> str:
        return self.record.video_id

    def array(self, name: str) -> zarr.Array:
        """The lazy Zarr array, for reading slices."""
        try:
            return self.group[name]
        except KeyError:
            raise FeatureError(f"feature {self.spec.key} of video {self.video_id!r} has no array {name!r}") from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.array(name)[...]

    @property
    def array_names(self) -> list[str]:
        return sorted(k for k in self.group.array_keys() if k != "offsets")

    @property
    def offsets(self) -> np.ndarray | None:
        return self.group["offsets"][...] if "offsets" in self.group else None

    def row_index(self) -> np.ndarray:
        """For ragged entries: the frame (or clip) index of every row."""
        offsets = self.offsets
        if offsets is None:
            raise FeatureError(f"feature {self.spec.key} is not ragged")
        return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))

    def clips(self) -> np.ndarray:
        """For clip-level entries: the (n_clips, 2) [start, stop) frame range of every row."""
        if "clips" not in self.group:
            raise FeatureError(f"feature {self.spec.key} is frame-level; it has no clip table")
        return self.group["clips"][...]


class EntryWriter:
    """Writes one entry of one video, window by window, in chunk-aligned pieces.

    Dense arrays are preallocated to the known index length and filled in order; ragged arrays grow
    by appends. Rows are buffered until a whole chunk is ready, so no chunk is rewritten.
    """

    def __init__(self, group: zarr.Group, spec: FeatureSpec, arrays: Mapping[str, ArraySpec], n_index: int):
        self.group = group
        self.spec = spec
        self.specs = dict(arrays)
        self.n_index = n_index
        self._dense_done = 0
        self._counts: list[np.ndarray] = []
        self._buffers: dict[str, list[np.ndarray]] = {name: [] for name in self.specs}
        self._buffered: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._written: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._arrays: dict[str, zarr.Array] = {}
        self._chunk_rows: dict[str, int] = {}
        for name, aspec in self.specs.items():
            row_bytes = int(np.prod(aspec.tail, dtype=np.int64)) * np.dtype(aspec.dtype).itemsize
            rows = max(1, CHUNK_BYTES // max(row_bytes, 1))
            if not aspec.ragged:
                rows = min(rows, max(n_index, 1))
            self._chunk_rows[name] = rows
            shape = (0 if aspec.ragged else n_index, *aspec.tail)
            self._arrays[name] = group.create_array(
                name,
                shape=shape,
                chunks=(rows, *aspec.tail),
                dtype=aspec.dtype,
                compressors=COMPRESSOR,
                fill_value=0,
            )
        self._ragged = any(a.ragged for a in self.specs.values())

    def write(
        self,
        dense: Mapping[str, np.ndarray] | None = None,
        ragged: Mapping[str, np.ndarray] | None = None,
        counts: np.ndarray | None = None,
    ) -> None:
        """Append the next rows: dense rows for the next indices; ragged rows with per-index counts."""
        dense = dense or {}
        ragged = ragged or {}
        n_dense = {len(v) for v in dense.values()}
        if len(n_dense) > 1:
            raise ValueError(f"{self.spec.key}: dense arrays of one window differ in length: {n_dense}")
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            self._counts.append(counts)
            n_rows = int(counts.sum())
            for name, rows in ragged.items():
                if len(rows) != n_rows:
                    raise ValueError(f"{self.spec.key}.{name}: {len(rows)} rows, counts say {n_rows}")
        for name, rows in {**dense, **ragged}.items():
            aspec = self.specs[name]
            rows = np.asarray(rows)
            if rows.shape[1:] != aspec.tail:
                raise ValueError(f"{self.spec.key}.{name}: row shape {rows.shape[1:]}, expected {aspec.tail}")
            self._buffers[name].append(rows.astype(aspec.dtype, copy=False))
            self._buffered[name] += len(rows)
            self._flush(name, final=False)

    def _flush(self, name: str, final: bool) -> None:
        rows_per_chunk = self._chunk_rows[name]
        pending = self._buffered[name]
        n_out = pending if final else (pending // rows_per_chunk) * rows_per_chunk
        if n_out == 0:
            return
        data = np.concatenate(self._buffers[name]) if len(self._buffers[name]) > 1 else self._buffers[name][0]
        out, rest = data[:n_out], data[n_out:]
        array = self._arrays[name]
        start = self._written[name]
        if self.specs[name].ragged:
            array.append(out)
        else:
            if start + n_out > self.n_index:
                raise ValueError(f"{self.spec.key}.{name}: more rows than the {self.n_index} expected")
            array[start : start + n_out] = out
        self._written[name] = start + n_out
        self._buffers[name] = [rest] if len(rest) else []
        self._buffered[name] = len(rest)

    def finish(self, extra: Mapping[str, np.ndarray] | None = None) -> dict:
        """Flush everything, write offsets and extra arrays; returns the entry summary to commit."""
        for name in self.specs:
            self._flush(name, final=True)
        for name, aspec in self.specs.items():
            if not aspec.ragged and self._written[name] != self.n_index:
                raise ValueError(f"{self.spec.key}.{name}: wrote {self._written[name]} of {self.n_index} rows")
        summary: dict[str, Any] = {"index": self.n_index}
        if self._ragged:
            counts = np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)
            if len(counts) != self.n_index:
                raise ValueError(f"{self.spec.key}: counts for {len(counts)} of {self.n_index} indices")
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self.group.create_array("offsets", data=offsets, compressors=COMPRESSOR)
            summary["rows"] = int(offsets[-1])
        for name, values in (extra or {}).items():
            self.group.create_array(name, data=np.asarray(values), compressors=COMPRESSOR)
        return summary


class FeatureStore:
    """Open (or create) a vadctl feature store at `path`."""

    def __init__(self, path: Path | str, *, create: bool = False, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        meta = self.path / "zarr.json"
        if not meta.exists():
            if not create:
                raise StoreError(f"{self.path}: no feature store here (create one with `vadctl extract`)")
            self._create()
        self.root = self._open_root()
        info = self.root.attrs.get(ROOT_KEY)
        if not isinstance(info, Mapping) or "schema" not in info:
            raise StoreError(f"{self.path}: a Zarr store, but not a vadctl feature store")
        if info["schema"] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema {info['schema']} (written by vadctl {info.get('created_by', '?')}); "
                f"this vadctl {__version__} reads schema {SCHEMA_VERSION}. Re-extract into a new store."
            )
        self.info = dict(info)

    def _create(self) -> None:
        """Build the skeleton beside the target and rename it into place: a store either does not
        exist or is whole, and of two processes creating it at once one wins and both use it."""
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise StoreError(f"{self.path}: exists and is not an empty folder; will not create a store there")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.parent / f".{self.path.name}.creating-{uuid.uuid4().hex[:8]}"
        try:
            root = zarr.open_group(staging, mode="w", zarr_format=3)
            root.attrs[ROOT_KEY] = {"schema": SCHEMA_VERSION, "created_by": __version__, "created_at": _now()}
            root.require_group("videos")
            root.require_group("_locks")
            try:
                os.rename(staging, self.path)  # atomic; refuses a non-empty target
            except OSError:
                if not (self.path / "zarr.json").exists():
                    raise StoreError(f"{self.path}: could not create the store here") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _open_root(self) -> zarr.Group:
        try:
            return zarr.open_group(self.path, mode="r" if self.read_only else "r+", zarr_format=3)
        except Exception as error:
            raise StoreError(f"{self.path}: cannot open as a Zarr v3 store: {error}") from error

    # ----- locks -------------------------------------------------------------------------------
    def _lock_path(self, name: str) -> Path:
        folder = self.path / "_locks"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.lock"

    def video_lock(self, split: str, video_id: str) -> FileLock:
        """An exclusive lock on one video; released by the OS if the process dies."""
        return FileLock(self._lock_path(f"{split}.{video_key(video_id)}"))

    # ----- videos ------------------------------------------------------------------------------
    def _split_group(self, split: str, create: bool = False) -> zarr.Group | None:
        check_split(split)
        path = f"videos/{split}"
        if create:
            return self.root.require_group(path)
        try:
            return self.root[path]
        except KeyError:
            return None

    def splits(self) -> list[str]:
        try:
            videos = self.root["videos"]
        except KeyError:
            return []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sorted(videos.group_keys())

    def videos(self, split: str) -> list[VideoRecord]:
        """All video records of a split, read in one listing (fast enough for cron reruns)."""
        group = self._split_group(split)
        if group is None:
            return []
        records = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stray temp files of a killed write are not nodes
            for _, child in group.groups():
                attrs = child.attrs.get(VIDEO_KEY)
                if isinstance(attrs, Mapping):
                    records.append(VideoRecord.from_attrs(attrs))
        return sorted(records, key=lambda r: r.video_id)

    def video(self, split: str, video_id: str) -> VideoRecord | None:
        group = self._video_group(split, video_id)
        if group is None:
            return None
        attrs = group.attrs.get(VIDEO_KEY)
        return VideoRecord.from_attrs(attrs) if isinstance(attrs, Mapping) else None

    def _video_group(self, split: str, video_id: str) -> zarr.Group | None:
        try:
            return self.root[f"videos/{check_split(split)}/{video_key(video_id)}"]
        except KeyError:
            return None

    def save_video(self, record: VideoRecord, clips: np.ndarray | None = None) -> None:
        """Write a video's facts (and clip table). Caller holds the video lock."""
        record.updated_at = _now()
        group = self._split_group(record.split, create=True).require_group(record.key)
        if clips is not None:
            if "clips" in group:
                del group["clips"]
            group.create_array("clips", data=np.asarray(clips, dtype=np.int64), compressors=COMPRESSOR)
        group.attrs[VIDEO_KEY] = record.to_attrs()

    def clip_table(self, record: VideoRecord) -> np.ndarray:
        """The video's (n_clips, 2) [start, stop) clip table, as extracted."""
        group = self._video_group(record.split, record.video_id)
        if group is None or "clips" not in group:
            raise FeatureError(f"video {record.split}/{record.video_id} has no clip table; extract it again")
        return group["clips"][...]

    def delete_video(self, split: str, video_id: str) -> None:
        """Forget a video and its features. Caller holds the video lock."""
        group = self._video_group(split, video_id)
        if group is None:
            return
        group.attrs[VIDEO_KEY] = {}  # nothing reads as committed from here on
        shutil.rmtree(self.path / "videos" / split / video_key(video_id), ignore_errors=True)

    # ----- entries -----------------------------------------------------------------------------
    def entry_writer(
        self, record: VideoRecord, spec: FeatureSpec, arrays: Mapping[str, ArraySpec], n_index: int
    ) -> EntryWriter:
        """Start (or restart) writing an entry; any uncommitted leftovers of a killed run are removed."""
        group = self._video_group(record.split, record.video_id)
        if group is None:
            raise StoreError(f"video {record.split}/{record.video_id} must be saved before its features")
        if spec.key in record.features:
            self.drop_entry(record, spec)
        if spec.key in group:
            del group[spec.key]
        entry = group.create_group(spec.key)
        entry.attrs["spec"] = spec.to_dict()
        return EntryWriter(entry, spec, arrays, n_index)

    def commit(self, record: VideoRecord, spec: FeatureSpec, summary: Mapping[str, Any]) -> None:
        """Make a fully written entry visible: the one atomic step of a feature write."""
        record.features[spec.key] = {**spec.to_dict(), **summary, "committed_at": _now()}
        self.save_video(record)

    def drop_entry(self, record: VideoRecord, spec: FeatureSpec) -> None:
        record.features.pop(spec.key, None)
        self.save_video(record)
        group = self._video_group(record.split, record.video_id)
        if group is not None and spec.key in group:
            del group[spec.key]

    def entry(self, record: VideoRecord, spec: FeatureSpec) -> Entry:
        summary = record.features.get(spec.key)
        if summary is None:
            raise FeatureError(f"video {record.split}/{record.video_id} has no committed feature {spec.key}")
        group = self._video_group(record.split, record.video_id)
        return Entry(record, spec, group[spec.key], summary)

    def specs(self, split: str | None = None) -> dict[str, tuple[FeatureSpec, int]]:
        """Every committed entry spec in the store (or one split) and in how many videos it is."""
        found: dict[str, tuple[FeatureSpec, int]] = {}
        for each in [split] if split else self.splits():
            for record in self.videos(each):
                for key, summary in record.features.items():
                    spec, count = found.get(key, (None, 0))
                    found[key] = (spec or FeatureSpec.from_dict(summary), count + 1)
        return found

    def candidates(self, ref: str, split: str | None = None) -> list[FeatureSpec]:
        """Committed specs matching a reference ('velocity' or 'velocity@3fa2')."""
        name, _, prefix = ref.partition("@")
        return [spec for spec, _ in self.specs(split).values() if spec.name == name and spec.hash.startswith(prefix)]

    def resolve(self, ref: str, split: str | None = None, narrow=None) -> FeatureSpec:
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

    def disk_bytes(self, split: str | None = None, video_id: str | None = None, key: str | None = None) -> int:
        base = self.path / "videos"
        if split:
            base = base / split
            if video_id:
                base = base / video_key(video_id)
                if key:
                    base = base / key
        if not base.exists():
            return 0
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
