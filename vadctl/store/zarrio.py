"""How vadctl uses Zarr: codecs, chunking, and a local store that never reads a missing chunk as data.

Zarr reads a missing chunk as its fill value, so a deleted chunk file would silently read as
zeros. vadctl writes every chunk (`write_empty_chunks`), so a missing chunk is always damage:
`StrictLocalStore` raises `MissingChunkError` instead of returning nothing. Chunks are checksummed
(crc32c after compression), so flipped bytes raise on read instead of decoding to garbage. Chunk
files sit flat in their array's folder (`c.0.0`), so an array is one directory listing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.storage import LocalStore

from vadctl.errors import StoreError

CHUNK_BYTES = 2 * 1024 * 1024
COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), Crc32cCodec())
CHUNK_KEYS = {"name": "default", "separator": "."}
ARRAY_CONFIG = {"write_empty_chunks": True}
_CHUNK = re.compile(r"(^|/)c([./]\d+)*$")


class MissingChunkError(StoreError):
    """A chunk the array's shape says exists is not on disk: damage, never zeros."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"missing chunk {key}")


def is_chunk_key(key: str) -> bool:
    return bool(_CHUNK.search(key))


class StrictLocalStore(LocalStore):
    """A LocalStore that raises on a missing chunk instead of letting Zarr fill it in."""

    async def get(self, key, prototype=None, byte_range=None):
        value = await super().get(key, prototype, byte_range)
        if value is None and is_chunk_key(key):
            raise MissingChunkError(key)
        return value

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        values = await super().get_partial_values(prototype, key_ranges)
        for (key, _), value in zip(key_ranges, values, strict=True):
            if value is None and is_chunk_key(key):
                raise MissingChunkError(key)
        return values


def open_root(path: Path, read_only: bool, strict: bool) -> zarr.Group:
    """The store's root group. Readers use the strict store; writers the plain one, since writing a
    partial chunk for the first time legitimately finds no chunk to merge with."""
    store_cls = StrictLocalStore if strict else LocalStore
    return zarr.open_group(store=store_cls(str(path), read_only=read_only), mode="r" if read_only else "r+")


def chunk_rows(row_bytes: int, n_rows: int | None = None) -> int:
    """Rows per chunk: the largest power of two with at most CHUNK_BYTES per chunk (powers of two
    keep chunk boundaries aligned across arrays, so segments of a video can be written apart)."""
    fit = max(1, CHUNK_BYTES // max(row_bytes, 1))
    rows = 1 << (fit.bit_length() - 1)
    if n_rows is not None:  # a small array needs no chunk larger than itself (rounded up to a power of two)
        rows = min(rows, 1 << max(0, (max(n_rows, 1) - 1).bit_length()))
    return rows


def create_array(
    group: zarr.Group,
    name: str,
    *,
    shape: tuple[int, ...],
    dtype: str,
    dims: Iterable[str],
    chunks: tuple[int, ...] | None = None,
    attrs: Mapping[str, Any] | None = None,
    data: np.ndarray | None = None,
) -> zarr.Array:
    """An array with vadctl's codecs, flat chunk keys, every chunk written, named dimensions."""
    if chunks is None:
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
        chunks = (chunk_rows(row_bytes, shape[0]), *shape[1:])
    array = group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        compressors=COMPRESSORS,
        fill_value=0,
        chunk_key_encoding=CHUNK_KEYS,
        dimension_names=tuple(dims),
        attributes=dict(attrs or {}),
        config=ARRAY_CONFIG,
    )
    if data is not None:
        array[...] = data
    return array
