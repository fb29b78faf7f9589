"""Writing one entry of one video, window by window, in chunk-aligned pieces.

Dense arrays are preallocated to the known index length and filled in order; ragged arrays grow
by appends. Rows are buffered until a whole chunk is ready, so no chunk is rewritten. Nothing
written here is visible until the store commits the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import zarr

from vadctl.specs import ArraySpec, FeatureSpec
from vadctl.store.zarrio import chunk_rows, create_array


def first_dimension(spec: FeatureSpec, aspec: ArraySpec) -> str:
    """The name of an array's first axis: rows of ragged arrays, else frames or clips."""
    return "row" if aspec.ragged else spec.axis


class EntryWriter:
    def __init__(self, group: zarr.Group, spec: FeatureSpec, arrays: Mapping[str, ArraySpec], n_index: int):
        self.group = group
        self.spec = spec
        self.specs = dict(arrays)
        self.n_index = n_index
        self._counts: list[np.ndarray] = []
        self._buffers: dict[str, list[np.ndarray]] = {name: [] for name in self.specs}
        self._buffered: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._written: dict[str, int] = dict.fromkeys(self.specs, 0)
        self._arrays: dict[str, zarr.Array] = {}
        self._chunk_rows: dict[str, int] = {}
        for name, aspec in self.specs.items():
            row_bytes = int(np.prod(aspec.tail, dtype=np.int64)) * np.dtype(aspec.dtype).itemsize
            rows = chunk_rows(row_bytes, None if aspec.ragged else n_index)
            self._chunk_rows[name] = rows
            self._arrays[name] = create_array(
                group,
                name,
                shape=(0 if aspec.ragged else n_index, *aspec.tail),
                chunks=(rows, *aspec.tail),
                dtype=aspec.dtype,
                dims=aspec.dimension_names(first_dimension(spec, aspec)),
                attrs=aspec.attrs,
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

    def finish(self, extra: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
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
