"""The records index: one small file per split holding a copy of every video's record, so reading
a split's records (planning a run) costs one file and a stat per video, not one `zarr.json` read
and parse per video.

The records stay the truth; the index is a cache beside the store (`<store>.vadctl/index/<split>.json`,
outside the Zarr hierarchy). Each cached record carries the stamp of the `zarr.json` it was read
from: (inode, size, mtime, ctime), taken with `fstat` on the very file that was read. Zarr writes
metadata to a temporary file and renames it into place, so every record write makes a new file
and a new stamp; a reader stats each video's `zarr.json` and uses the cached copy only when the
stamp is the same, else it reads the record (and refreshes the index). A writer killed between a
record's commit and the index's rewrite, a worker committing on another node, another process
writing the same store: all leave stamps the index does not hold, so the next reader reads those
records. The index is rewritten (temporary file, then one rename) whenever a reader found it
stale, so a run with nothing new reads one file per split.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from vadctl.common.faults import fault_point
from vadctl.errors import StoreError

INDEX_FORMAT = 1
LEFTOVER_SECONDS = 600  # a temporary index file this old was left by a killed writer
INDEX_ENTRY = "records index"  # the `entry` of a `Problem` about the index (not damage to features)

Stamp = list[int]
Read = tuple[dict | None, Stamp | None]  # (the record's attributes or None, the stamp of what was read)


def stamp_of(stat: os.stat_result) -> Stamp:
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def read_stamped(meta: Path) -> tuple[bytes, Stamp] | None:
    """A metadata file's bytes and the stamp of that very file; None when it is missing."""
    try:
        with open(meta, "rb") as handle:
            stamp = stamp_of(os.fstat(handle.fileno()))
            return handle.read(), stamp
    except FileNotFoundError:
        return None


class RecordsIndex:
    """The index of one split: `key → {"stamp": [...], "record": attrs or None}`."""

    def __init__(self, sidecar: Path, split: str):
        self.split = split
        self.path = sidecar / "index" / f"{split}.json"

    def load(self) -> dict[str, dict] | None:
        """The cached entries; None when there is no index or it cannot be used (a corrupt or
        foreign file reads as no index: it is rebuilt)."""
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or data.get("split") != self.split:
            return None
        videos = data.get("videos")
        return videos if isinstance(videos, dict) else None

    def save(self, entries: dict[str, dict]) -> bool:
        """Write the index atomically (temporary file, then one rename); False when the sidecar is
        not writable here (a read-only store: readers then read the records)."""
        data = {"format": INDEX_FORMAT, "split": self.split, "videos": entries}
        temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(data, separators=(",", ":")))
            fault_point("store.index.before_rename")
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            return False
        self._remove_leftovers()
        return True

    def _remove_leftovers(self) -> None:
        """Temporary files of writers killed before their rename, once surely abandoned."""
        now = time.time()
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > LEFTOVER_SECONDS:
                    leftover.unlink()

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def scan_split(
    folder: Path, index: RecordsIndex | None, read: Callable[[Path], Read], use_cache: bool = True
) -> tuple[list[tuple[str, dict | None]], list[tuple[str, StoreError]], int]:
    """(folder name → record attributes for every video folder, in name order; folders whose
    record cannot be read, with the error; how many records were read from disk rather than the
    index). `read(folder)` reads one record with its stamp. The index is refreshed when it was
    missing or stale; `use_cache=False` reads every record and rewrites the index; `index` None
    reads every record and writes nothing."""
    cached = (index.load() if index is not None and use_cache else None) or {}
    found: list[tuple[str, dict | None]] = []
    unreadable: list[tuple[str, StoreError]] = []
    fresh: dict[str, dict] = {}
    read_count = hits = added = 0
    with os.scandir(folder) as listing:
        names = sorted(item.name for item in listing if item.is_dir())
    base = os.fspath(folder)
    for name in names:
        hit = cached.get(name)
        if isinstance(hit, dict):
            try:
                now = stamp_of(os.stat(os.path.join(base, name, "zarr.json")))
            except FileNotFoundError:
                now = None
            if now is not None and hit.get("stamp") == now:
                found.append((name, hit.get("record")))
                fresh[name] = hit
                hits += 1
                continue
        read_count += 1
        try:
            attrs, stamp = read(folder / name)
        except StoreError as error:
            unreadable.append((name, error))
            continue
        found.append((name, attrs))
        if stamp is not None:
            fresh[name] = {"stamp": stamp, "record": attrs}
            added += 1
    if index is not None and (added or hits != len(cached) or not use_cache):
        index.save(fresh)
    return found, unreadable, read_count
