"""Bringing a store of an older layout (schema 1, vadctl 0.1) to the current one, in place.

Schema 1 kept lock files inside the Zarr hierarchy (`_locks/`), wrote no chunk that held only
fill values (so a missing chunk could mean "zeros" or "lost"), nested chunk files in folders, kept
no manifests, and named videos whose id holds '~' without escaping it. Migration, under the store
lock, per video: drops a blanked record's leftovers, renames the folder if its name changed, writes
out the fill-value chunks the old writer skipped (so that from now on a missing chunk is always
damage), and records each entry's manifest; then removes `_locks/` and sets schema 2. Every step
can be repeated, so a migration killed anywhere completes on the next writable open; arrays keep
their codecs and chunking, so nothing is re-extracted.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr
from zarr.storage import LocalStore

from vadctl.common.faults import fault_point
from vadctl.store import integrity
from vadctl.store.layout import ROOT_KEY, SCHEMA_VERSION, VIDEO_KEY, read_info, record_at
from vadctl.store.records import video_key


class FeatureStore(Protocol):
    """What migration uses of the store it migrates (the store calls it while opening)."""

    path: Path
    sidecar: Any

    def store_lock(self) -> Any: ...


def _fill_missing_chunks(array: zarr.Array) -> int:
    """Write every chunk of an array that is absent (schema 1 skipped chunks of fill values)."""
    array = array.with_config({"write_empty_chunks": True})
    written = 0
    grid = [range(-(-size // chunk)) for size, chunk in zip(array.shape, array.chunks, strict=True)]
    for index in itertools.product(*grid):
        key = array.metadata.encode_chunk_key(index)
        if not os.path.exists(os.path.join(array.store_path.store.root, array.path, key)):
            region = tuple(
                slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, array.chunks, array.shape, strict=True)
            )
            array[region] = np.zeros([r.stop - r.start for r in region], dtype=array.dtype) + array.fill_value
            written += 1
    return written


def _migrate_video(store: FeatureStore, root: zarr.Group, split: str, folder_name: str) -> None:
    folder = store.path / "videos" / split / folder_name
    record = record_at(folder)
    if record is None:  # a blanked or never-committed record: only leftovers
        store.sidecar.discard(folder)
        return
    if video_key(record.video_id) != folder_name:
        os.rename(folder, store.path / "videos" / split / video_key(record.video_id))
        folder = store.path / "videos" / split / video_key(record.video_id)
        fault_point("store.migrate.renamed")
    changed = False
    for key in sorted(record.features):
        summary = record.features[key]
        if summary.get("files") is not None:
            continue
        group_path = f"videos/{split}/{video_key(record.video_id)}/{record.group_of(key)}"
        group = root[group_path]
        for name in group.array_keys():
            array = zarr.open_array(
                store=LocalStore(str(store.path)),
                path=f"{group_path}/{name}",
                mode="r+",
            )
            _fill_missing_chunks(array)
        files = integrity.manifest(folder / record.group_of(key))
        group.attrs[integrity.MANIFEST_KEY] = files
        summary.update(
            files=integrity.array_summary(files), sizes=integrity.sizes_of(files), manifest=integrity.digest(files)
        )
        changed = True
    if record.clips_files is None and (folder / record.clips).is_dir():
        clips = zarr.open_array(
            store=LocalStore(str(store.path)),
            path=f"videos/{split}/{video_key(record.video_id)}/{record.clips}",
            mode="r+",
        )
        _fill_missing_chunks(clips)
        record.clips_files = integrity.manifest(folder, [record.clips])
        changed = True
    if changed:
        fault_point("store.migrate.before_record")
        root[f"videos/{split}/{video_key(record.video_id)}"].attrs[VIDEO_KEY] = record.to_attrs()


def migrate(store: FeatureStore) -> None:
    """Schema 1 → 2 (see module doc); a no-op for a store already migrated by another process."""
    with store.store_lock():
        info = read_info(store.path)
        if info["schema"] == SCHEMA_VERSION:
            return
        root = zarr.open_group(store=LocalStore(str(store.path)), mode="r+")
        videos = store.path / "videos"
        for split_dir in sorted(p for p in videos.iterdir() if p.is_dir()) if videos.is_dir() else []:
            for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                _migrate_video(store, root, split_dir.name, folder.name)
        fault_point("store.migrate.before_locks")
        store.sidecar.discard(store.path / "_locks")
        fault_point("store.migrate.before_schema")
        root.attrs[ROOT_KEY] = {**info, "schema": SCHEMA_VERSION, "migrated_from": info["schema"]}
