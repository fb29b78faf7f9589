"""What a store needs that is not Zarr data: lock files, and a trash folder for atomic removals.

It lives beside the store (`<store>.vadctl/`), outside the Zarr hierarchy, so Zarr's and xarray's
walkers see only arrays and groups. Nothing in it is precious: locks are released by the OS when a
process dies, and the trash holds only what was already removed from the store.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from filelock import FileLock

from vadctl.errors import StoreError

STALE_PARTIAL_SECONDS = 600  # Zarr's own temporary files (`*.partial`) older than this are leftovers


def sidecar_path(store: Path) -> Path:
    return store.parent / f"{store.name}.vadctl"


class Sidecar:
    def __init__(self, store: Path):
        self.store = store
        self.path = sidecar_path(store)

    def _folder(self, name: str) -> Path:
        folder = self.path / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot create the store's lock folder: {error.strerror or error}") from None
        return folder

    def lock(self, name: str) -> FileLock:
        """An exclusive lock, released by the OS if the holder dies."""
        return FileLock(self._folder("locks") / f"{name}.lock")

    def discard(self, path: Path) -> None:
        """Remove a folder from the store atomically (one rename), then delete it: a reader sees it
        whole or not at all, and a killed delete leaves only trash."""
        if not path.exists():
            return
        target = self._folder("trash") / f"{path.name}.{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, target)
        except OSError as error:
            raise StoreError(f"{path}: cannot remove: {error.strerror or error}") from None
        shutil.rmtree(target, ignore_errors=True)

    def empty_trash(self) -> None:
        trash = self.path / "trash"
        if trash.is_dir():
            for item in trash.iterdir():
                shutil.rmtree(item, ignore_errors=True)


def remove_stale_partials(folder: Path, max_age: float = STALE_PARTIAL_SECONDS) -> int:
    """Delete Zarr's temporary `*.partial` files that a killed writer left in `folder` (not below)."""
    removed = 0
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if name.endswith(".partial"):
            path = folder / name
            try:
                if now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed
