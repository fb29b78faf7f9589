"""Read access to one committed feature entry of one video.

Reads never crash on a concurrent writer: if the entry's data vanished because another process
replaced the video (new version written beside the old, switched, old removed), the read follows
the record to the new version. Data that is gone or corrupt while the record still points to it is
damage: a one-line `StoreError` naming the video and the entry, never zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np
import zarr

from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, StoreError, VadctlError
from vadctl.store.records import VideoRecord
from vadctl.store.shards import read_rows


class FeatureStore(Protocol):
    """What an entry reads of its store: the video's current record and the entry's Zarr node."""

    def video(self, split: str, video_id: str) -> VideoRecord | None: ...

    def node(self, record: VideoRecord, name: str) -> Any: ...


T = TypeVar("T")
RETRIES = 3


class _Missing(Exception):
    """An array (or every array) of the bound group is not there: the entry was replaced and its
    old group removed while being read (follow the record), or the name is wrong (say so)."""


class Entry:
    def __init__(self, store: FeatureStore, record: VideoRecord, spec: FeatureSpec):
        self.store = store
        self.spec = spec
        self._bind(record)

    def _bind(self, record: VideoRecord) -> None:
        summary = record.features.get(self.spec.key)
        if summary is None:
            raise FeatureError(f"video {record.split}/{record.video_id} has no committed feature {self.spec.key}")
        self.record = record
        self.summary = dict(summary)
        self.group_name = record.group_of(self.spec.key)
        self._group: zarr.Group | None = None

    @property
    def video_id(self) -> str:
        return self.record.video_id

    @property
    def where(self) -> str:
        return f"feature {self.spec.key} of video {self.record.split}/{self.record.video_id}"

    def _guarded(self, read: Callable[[], T]) -> T:
        """Run a read; on vanished or unreadable data, follow a newer record or report damage."""
        for _ in range(RETRIES):
            try:
                return read()
            except (KeyboardInterrupt, SystemExit, FeatureError):
                raise
            except Exception as error:  # zarr/codec errors come in many types; all mean the same here
                fresh = self.store.video(self.record.split, self.record.video_id)
                if fresh is None or self.spec.key not in fresh.features:
                    raise StoreError(f"{self.where} was removed while being read; run again") from None
                if fresh.group_of(self.spec.key) == self.group_name:
                    if isinstance(error, _Missing):
                        raise FeatureError(f"{self.where} has {error}") from None
                    reason = str(error) if isinstance(error, VadctlError) else f"{type(error).__name__}: {error}"
                    raise StoreError(
                        f"{self.where} is damaged ({reason.splitlines()[0][:200]}); "
                        "`vadctl store verify` lists damage and `vadctl extract` redoes it"
                    ) from None
                self._bind(fresh)  # replaced meanwhile by another process: read the new version
        raise StoreError(f"{self.where} kept changing while being read; run again")

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            self._group = self._guarded(lambda: self.store.node(self.record, self.group_name))
        return self._group

    def array(self, name: str) -> zarr.Array:
        """The lazy Zarr array (for slices, use `read`)."""

        def open_array() -> zarr.Array:
            group = self.store.node(self.record, self.group_name)
            if name not in group:
                raise _Missing(f"no array {name!r}")
            return group[name]

        return self._guarded(open_array)

    def read(self, name: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of an array (all rows by default), read safely."""
        return self._guarded(lambda: read_rows(self.array(name), start, stop))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)

    def attrs(self, name: str) -> dict[str, Any]:
        return dict(self.array(name).attrs)

    @property
    def array_names(self) -> list[str]:
        return sorted(k for k in self._keys() if k != "offsets")

    @property
    def offsets(self) -> np.ndarray | None:
        return self.read("offsets") if "offsets" in self._keys() else None

    def _keys(self) -> list[str]:
        """Every array of the entry's group, following the record if the group goes away."""

        def keys() -> list[str]:
            found = list(self.store.node(self.record, self.group_name).array_keys())
            if not found:  # a committed entry always holds arrays: its group went away under us
                raise _Missing("no arrays")
            return found

        return self._guarded(keys)

    def row_index(self) -> np.ndarray:
        """For ragged entries: the frame (or clip) index of every row."""
        offsets = self.offsets
        if offsets is None:
            raise FeatureError(f"feature {self.spec.key} is not ragged")
        return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))

    def clips(self) -> np.ndarray:
        """For clip-level entries: the (n_clips, 2) [start, stop) frame range of every row."""
        if "clips" not in self._keys():
            raise FeatureError(f"feature {self.spec.key} is frame-level; it has no clip table")
        return self.read("clips")
