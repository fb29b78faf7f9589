"""Opening a store the way every command does: the default path, creating it on request, and
taking either a path or an open store wherever a store is asked for."""

from __future__ import annotations

from vadctl import defaults
from vadctl.common import checks
from vadctl.common.specs import PathLike
from vadctl.store.feature_store import FeatureStore


def open_store(path: PathLike | None = None, *, create: bool = False, read_only: bool = True) -> FeatureStore:
    """The feature store at `path` (default: $VADCTL_STORE or stores/default.zarr), for reading
    unless `read_only=False`; `create=True` makes an empty one when there is none."""
    where = defaults.store_path(path)
    if create and not (where / "zarr.json").is_file():
        checks.output_folder(where, "--store")
    return FeatureStore(where, create=create, read_only=read_only and not create)


def writable(store: PathLike | FeatureStore | None, create: bool = True) -> FeatureStore:
    """`store` opened for writing (created when missing, unless `create` is False)."""
    if isinstance(store, FeatureStore):
        return store
    return open_store(store, create=create, read_only=False)


def readable(store: PathLike | FeatureStore | None) -> FeatureStore:
    """`store` opened for reading."""
    return store if isinstance(store, FeatureStore) else open_store(store)
