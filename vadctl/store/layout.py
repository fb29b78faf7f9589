"""The store's layout on disk as data: schema versions, the attribute keys of the root and of each
video's record, and reading them from `zarr.json` files with one-line errors. Shared by the store
and its migration, so neither reaches into the other."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from vadctl import __version__
from vadctl.errors import StoreError
from vadctl.store.index import read_stamped
from vadctl.store.records import VideoRecord

# Sharded arrays need no new schema: each array's zarr.json says how it is stored, both layouts
# read alike (and read in vadctl releases before shards), and writes make new arrays sharded.
SCHEMA_VERSION = 2
LEGACY_SCHEMAS = (1,)  # readable as they are; migrated in place when opened for writing
ROOT_KEY = "vadctl_store"
VIDEO_KEY = "vadctl_video"


def _read_json(path: Path) -> dict:
    """A metadata file, with one-line errors for a missing or corrupt one."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise StoreError(f"{path}: missing") from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise StoreError(f"{path}: unreadable or corrupt ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: corrupt (not a JSON object)")
    return data


def read_info(path: Path) -> dict:
    """The store's root attributes (schema, creator), or a one-line error for a folder that is not
    a vadctl store or one of a schema this vadctl cannot read."""
    attrs = _read_json(path / "zarr.json").get("attributes", {})
    info = attrs.get(ROOT_KEY) if isinstance(attrs, Mapping) else None
    if not isinstance(info, Mapping) or "schema" not in info:
        raise StoreError(f"{path}: a Zarr store, but not a vadctl feature store")
    if info["schema"] != SCHEMA_VERSION and info["schema"] not in LEGACY_SCHEMAS:
        raise StoreError(
            f"{path}: store schema {info['schema']} (written by vadctl {info.get('created_by', '?')}); "
            f"this vadctl {__version__} reads schema {SCHEMA_VERSION}. Re-extract into a new store."
        )
    return dict(info)


def record_at(folder: Path) -> VideoRecord | None:
    """The record in a video folder; None for a folder holding no record (a video being written
    for the first time, or leftovers); StoreError for a corrupt one."""
    meta = folder / "zarr.json"
    if not meta.is_file():
        return None
    return record_from(meta, _read_json(meta))


def record_from(meta: Path, group: Mapping) -> VideoRecord | None:
    """The record in a video group's parsed `zarr.json` (read from `meta`), or None."""
    attrs = group.get("attributes", {})
    data = attrs.get(VIDEO_KEY) if isinstance(attrs, Mapping) else None
    if not data:
        return None
    try:
        return VideoRecord.from_attrs(data)
    except (TypeError, ValueError, KeyError) as error:
        raise StoreError(f"{meta}: corrupt video record ({error})") from None


def stamped_record_at(folder: Path) -> tuple[dict | None, list[int] | None]:
    """(the record's attributes in a video folder, checked readable, or None; the stamp of the
    `zarr.json` they were read from, see `index`), for the records index; StoreError for a
    corrupt record."""
    meta = folder / "zarr.json"
    try:
        got = read_stamped(meta)
    except OSError as error:
        raise StoreError(f"{meta}: unreadable ({error.strerror or error})") from None
    if got is None:
        return None, None
    raw, stamp = got
    try:
        group = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise StoreError(f"{meta}: unreadable or corrupt ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(group, dict):
        raise StoreError(f"{meta}: corrupt (not a JSON object)")
    record = record_from(meta, group)
    return (group["attributes"][VIDEO_KEY] if record is not None else None), stamp
