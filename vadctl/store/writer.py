"""Writing one entry of one video, window by window, in chunk-aligned pieces.

Dense arrays are preallocated to the known index length and filled in order; ragged arrays grow
by appends. Rows are buffered until a whole chunk is ready, so no chunk is rewritten; in a sharded
array each whole inner chunk is streamed into its shard's file (`shards.ShardWriter`), so no shard
is rewritten either and memory holds no more than a chunk per array. Nothing written here is
visible until the store commits the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

from vadctl.common.specs import ArraySpec, FeatureSpec
from vadctl.store.shards import ShardWriter
from vadctl.store.zarrio import ARRAY_CONFIG, chunk_rows, create_array, shard_rows


def first_dimension(spec: FeatureSpec, aspec: ArraySpec) -> str:
    """The name of an array's first axis: rows of ragged arrays, else frames or clips."""
    return "row" if aspec.ragged else spec.axis


def array_chunk_rows(aspec: ArraySpec, n_index: int) -> int:
    """Rows per chunk of one array of an entry (ragged arrays grow, so they are not sized to the index)."""
    row_bytes = int(np.prod(aspec.tail, dtype=np.int64)) * np.dtype(aspec.dtype).itemsize
    return chunk_rows(row_bytes, None if aspec.ragged else n_index)


def array_shard_rows(aspec: ArraySpec, n_index: int) -> int:
    """Rows per shard of one array of an entry (chunk rows when unsharded): the unit that has one
    writer, so segments of a long video are cut on it."""
    row_bytes = int(np.prod(aspec.tail, dtype=np.int64)) * np.dtype(aspec.dtype).itemsize
    return shard_rows(array_chunk_rows(aspec, n_index), row_bytes, None if aspec.ragged else n_index)


def _shard_rows_of(array: zarr.Array) -> int:
    """Rows per shard of an array on disk (chunk rows for an unsharded one, as written before)."""
    return int((array.shards or array.chunks)[0])


def create_entry_arrays(
    group: zarr.Group, spec: FeatureSpec, arrays: Mapping[str, ArraySpec], n_index: int
) -> dict[str, zarr.Array]:
    """An entry's arrays, empty: dense ones sized to the index, ragged ones with no rows yet."""
    created = {}
    for name, aspec in arrays.items():
        rows = array_chunk_rows(aspec, n_index)
        created[name] = create_array(
            group,
            name,
            shape=(0 if aspec.ragged else n_index, *aspec.tail),
            chunks=(rows, *aspec.tail),
            shards=(array_shard_rows(aspec, n_index), *aspec.tail),
            dtype=aspec.dtype,
            dims=aspec.dimension_names(first_dimension(spec, aspec)),
            attrs=aspec.attrs,
        )
    return created


class EntryWriter:
    """Writes an entry's rows in order. By default the whole entry into fresh arrays; a segment of
    a long video writes dense rows [first, stop) into arrays prepared for the whole video
    (`create=False`, `first` on a shard boundary, so every shard has one writer) and its ragged
    rows into a part group of its own (`ragged_group`), joined in order at the end."""

    def __init__(
        self,
        group: zarr.Group,
        spec: FeatureSpec,
        arrays: Mapping[str, ArraySpec],
        n_index: int,
        *,
        first: int = 0,
        stop: int | None = None,
        ragged_group: zarr.Group | None = None,
        create: bool = True,
    ):
        self.group = group
        self.spec = spec
        self.specs = dict(arrays)
        self.n_index = n_index
        self.first = first
        self.stop = n_index if stop is None else stop
        self.ragged_group = ragged_group
        self._counts: list[np.ndarray] = []
        self._buffers: dict[str, list[np.ndarray]] = {name: [] for name in self.specs}
        self._buffered: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._written: dict[str, int] = {name: 0 if a.ragged else first for name, a in self.specs.items()}
        ragged = {name: a for name, a in self.specs.items() if a.ragged}
        if create:
            self._arrays = create_entry_arrays(group, spec, self.specs, n_index)
        else:  # arrays made earlier: open them with vadctl's config again (every chunk written, even zeros)
            self._arrays = {name: group[name].with_config(ARRAY_CONFIG) for name in self.specs}
        if ragged_group is not None:  # a segment's ragged rows go to its part
            self._arrays.update(create_entry_arrays(ragged_group, spec, ragged, n_index))
        for name, aspec in self.specs.items():  # the layout on disk decides (older stores: unsharded)
            if not aspec.ragged and first % _shard_rows_of(self._arrays[name]) and first != self.stop:
                raise ValueError(f"{spec.key}.{name}: rows start at {first}, not on a shard boundary")
        self._chunk_rows = {name: int(array.chunks[0]) for name, array in self._arrays.items()}
        self._shards = {
            name: ShardWriter(array, self._written[name]) if array.shards else None
            for name, array in self._arrays.items()
        }
        self._ragged = bool(ragged)

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
        shards = self._shards[name]
        if n_out == 0 and not (final and shards is not None):
            return
        buffers = self._buffers[name]
        aspec = self.specs[name]
        if buffers:
            data = np.concatenate(buffers) if len(buffers) > 1 else buffers[0]
        else:
            data = np.zeros((0, *aspec.tail), aspec.dtype)
        out, rest = data[:n_out], data[n_out:]
        array = self._arrays[name]
        start = self._written[name]
        if not aspec.ragged and start + n_out > self.stop:
            raise ValueError(f"{self.spec.key}.{name}: more rows than the {self.stop} expected")
        if shards is not None:
            shards.write(out, final=final, at_end=aspec.ragged or self.stop == self.n_index)
            if final and aspec.ragged:
                array.resize((start + n_out, *aspec.tail))
        elif aspec.ragged:
            array.append(out)
        else:
            array[start : start + n_out] = out
        self._written[name] = start + n_out
        self._buffers[name] = [rest] if len(rest) else []
        self._buffered[name] = len(rest)

    def finish(self, extra: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
        """Flush everything, write offsets and extra arrays; returns the entry summary to commit.
        A segment's writer instead keeps its per-index row counts in its part (`finish_part`)."""
        self._flush_all()
        summary: dict[str, Any] = {"index": self.n_index}
        if self._ragged:
            counts = self.counts()
            if len(counts) != self.n_index:
                raise ValueError(f"{self.spec.key}: counts for {len(counts)} of {self.n_index} indices")
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            create_array(
                self.group,
                "offsets",
                shape=offsets.shape,
                dtype="int64",
                dims=("offset",),
                attrs={"description": f"rows of {self.spec.axis} i are [offsets[i], offsets[i + 1])"},
                data=offsets,
            )
            summary["rows"] = int(offsets[-1])
        for name, values in (extra or {}).items():
            values = np.asarray(values)
            dims = (self.spec.axis, "bound") if name == "clips" else (f"{name}_{i}" for i in range(values.ndim))
            create_array(self.group, name, shape=values.shape, dtype=str(values.dtype), dims=dims, data=values)
        return summary

    def finish_part(self) -> None:
        """A segment's end: dense rows flushed, ragged rows' per-index counts stored in its part."""
        self._flush_all()
        if self._ragged:
            counts = self.counts()
            if len(counts) != self.stop - self.first:
                raise ValueError(f"{self.spec.key}: counts for {len(counts)} of {self.stop - self.first} indices")
            create_array(
                self.ragged_group, PART_COUNTS, shape=counts.shape, dtype="int64", dims=("index",), data=counts
            )

    def counts(self) -> np.ndarray:
        return np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)

    def _flush_all(self) -> None:
        for name in self.specs:
            self._flush(name, final=True)
        for name, aspec in self.specs.items():
            if not aspec.ragged and self._written[name] != self.stop:
                raise ValueError(f"{self.spec.key}.{name}: wrote rows up to {self._written[name]} of {self.stop}")


PART_COUNTS = "counts"
