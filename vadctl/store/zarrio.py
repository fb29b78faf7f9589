"""How vadctl uses Zarr: codecs, chunks and shards, and a local store that never reads a missing
chunk as data.

Zarr reads a missing chunk as its fill value, so a deleted chunk file would silently read as
zeros. vadctl writes every chunk (`write_empty_chunks`), so a missing chunk is always damage:
`StrictLocalStore` raises `MissingChunkError` instead of returning nothing (and `shards` does the
same for an inner chunk missing from a shard). Chunks are checksummed (crc32c after compression),
so flipped bytes raise on read instead of decoding to garbage. Files sit flat in their array's
folder (`c.0.0`), so an array is one directory listing.

Arrays are sharded: inner chunks of ≤ CHUNK_BYTES (how fit reads them) are packed along the first
axis into shard files of ≤ SHARD_BYTES, so a long entry is a few files, not one per 16–32 frames.
Arrays written before (one file per chunk) read as they are: each array's `zarr.json` says which.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.storage import LocalStore

from vadctl.store.shards import MissingChunkError

CHUNK_BYTES = 2 * 1024 * 1024
# Uncompressed bytes per shard (per array): at 64 MiB a shard holds 32 inner chunks of 2 MiB, so
# 1,024 rows of 256x256 frames or 512 of Ped2's flow. Shards are streamed to disk inner chunk by
# inner chunk (`shards.ShardWriter`), so this costs no memory; it sets how far apart segments of a
# long video are cut (each shard has one writer). 0 writes one file per chunk (the layout before).
SHARD_BYTES = 64 * 1024 * 1024
SHARD_BYTES_ENV = "VADCTL_SHARD_BYTES"
COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), Crc32cCodec())
CHUNK_KEYS = {"name": "default", "separator": "."}
ARRAY_CONFIG = {"write_empty_chunks": True}
_CHUNK = re.compile(r"(^|/)c([./]\d+)*$")


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


def shard_bytes() -> int:
    """SHARD_BYTES, or $VADCTL_SHARD_BYTES where set (tests and benchmarks; 0: unsharded)."""
    text = os.environ.get(SHARD_BYTES_ENV, "").strip()
    return int(text) if text else SHARD_BYTES


def shard_rows(rows_per_chunk: int, row_bytes: int, n_rows: int | None = None) -> int:
    """Rows per shard: a power-of-two number of chunks with at most `shard_bytes()` in all (with
    power-of-two chunks, shard boundaries then align across arrays like chunk boundaries), no
    more chunks than the array needs (`n_rows`); `rows_per_chunk` when unsharded."""
    limit = shard_bytes()
    if limit <= 0:
        return rows_per_chunk
    fit = max(1, limit // max(rows_per_chunk * row_bytes, 1))
    per_shard = 1 << (fit.bit_length() - 1)
    if n_rows is not None:
        needed = max(1, -(-n_rows // rows_per_chunk))
        per_shard = min(per_shard, 1 << (needed - 1).bit_length())
    return rows_per_chunk * per_shard


def create_array(
    group: zarr.Group,
    name: str,
    *,
    shape: tuple[int, ...],
    dtype: str,
    dims: Iterable[str],
    chunks: tuple[int, ...] | None = None,
    shards: tuple[int, ...] | None = None,
    attrs: Mapping[str, Any] | None = None,
    data: np.ndarray | None = None,
) -> zarr.Array:
    """An array with vadctl's codecs, flat chunk keys, every chunk written, named dimensions;
    sharded (`shards`: the shard shape, by default from the sizes above) unless `shard_bytes()`
    is 0 and no shard shape is given."""
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    if chunks is None:
        chunks = (chunk_rows(row_bytes, shape[0]), *shape[1:])
    if shards is None:
        shards = (shard_rows(chunks[0], row_bytes, shape[0]), *chunks[1:])
    array = group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        shards=shards if tuple(shards) != tuple(chunks) or shard_bytes() > 0 else None,
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
