"""Sharded arrays: many inner chunks per file (Zarr v3's `sharding_indexed` codec), written once and
read strictly.

Writing: Zarr writes an inner chunk into a shard by reading, merging and rewriting the whole shard
file (stores have no partial writes), so filling a shard chunk by chunk rewrites it once per
chunk. `ShardWriter` streams instead: each inner chunk is encoded with the array's own codecs
(compression, then a crc32c per inner chunk) and appended to a temporary file; the index (offset
and length of every inner chunk, with its own crc32c: Zarr's default index codecs) goes at the end
and the file is renamed into place. Every shard is thus written once, and memory holds one inner
chunk at a time whatever the shard's size. Zarr reads the files as it reads its own.

Reading: Zarr reads an inner chunk that a shard's index marks empty as fill values. vadctl writes
every inner chunk inside the array's shape, so an empty one is damage: `StrictShardingCodec`,
registered as Zarr's implementation of the codec for the whole process, raises `MissingChunkError`
instead. A missing shard file is the strict store's to catch (`zarrio.StrictLocalStore`).
Zarr decodes a shard into a buffer of its own and copies that into the result, which cost 17-35 %
more CPU than reading unsharded arrays whole (benchmarks/RESULTS.md, "Sharded chunks"); vadctl's reader
(`read_rows`) instead fetches and decodes inner chunks one by one, concurrently, straight into the
result, as Zarr reads unsharded chunks: the index says where each is, its crc32c is checked, and
an inner chunk it lacks raises as above.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import RangeByteRequest, SuffixByteRequest
from zarr.codecs.sharding import MAX_UINT_64, ShardingCodec, _ShardIndex
from zarr.core.array_spec import ArrayConfig, ArraySpec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import NDBuffer
from zarr.core.common import concurrent_map
from zarr.core.sync import sync
from zarr.registry import register_codec

from vadctl.errors import StoreError


class MissingChunkError(StoreError):
    """A chunk the array's shape says exists is not on disk: damage, never zeros."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"missing chunk {key}")


class _StrictInnerPipeline:
    """A shard's inner codec pipeline that refuses to read an inner chunk its index lacks."""

    def __init__(self, pipeline: Any):
        self._pipeline = pipeline

    async def read(self, batch_info, out, drop_axes=()) -> None:
        batch_info = list(batch_info)
        for getter, *_ in batch_info:
            if getter.shard_dict.get(getter.chunk_coords) is None:
                raise MissingChunkError(f"{'.'.join(map(str, getter.chunk_coords))} inside a shard")
        await self._pipeline.read(batch_info, out, drop_axes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


class StrictShardingCodec(ShardingCodec):
    """Zarr's sharding codec, except that an inner chunk missing from a shard raises."""

    @property
    def codec_pipeline(self) -> Any:
        return _StrictInnerPipeline(super().codec_pipeline)


register_codec("sharding_indexed", StrictShardingCodec)
zarr.config.set({"codecs.sharding_indexed": f"{__name__}.StrictShardingCodec"})


def _inner_spec(array: zarr.Array, codec: ShardingCodec) -> ArraySpec:
    """How an inner chunk of `array` is encoded: full chunk shape, every chunk written."""
    return ArraySpec(
        shape=tuple(codec.chunk_shape),
        dtype=array.metadata.data_type,
        fill_value=array.metadata.fill_value,
        config=ArrayConfig(order="C", write_empty_chunks=True),
        prototype=default_buffer_prototype(),
    )


def read_rows(array: zarr.Array, start: int | None = None, stop: int | None = None) -> np.ndarray:
    """Rows [start, stop) of an array; a sharded one read inner chunk by inner chunk (module doc)."""
    codec = array.metadata.codecs[0] if array.shards else None
    if not isinstance(codec, ShardingCodec) or array.ndim == 0:
        return array[slice(start, stop)]
    start, stop, _ = slice(start, stop).indices(array.shape[0])
    out = np.empty((max(stop - start, 0), *array.shape[1:]), dtype=array.dtype)
    if len(out):
        sync(_read_into(array, codec, start, stop, out))
    return out


async def _read_into(array: zarr.Array, codec: ShardingCodec, start: int, stop: int, out: np.ndarray) -> None:
    store, inner, shard_rows = array.store_path.store, int(codec.chunk_shape[0]), int(array.shards[0])
    tail = (0,) * (array.ndim - 1)
    per_shard = (shard_rows // inner, *((1,) * len(tail)))
    prototype, spec, pipeline = default_buffer_prototype(), _inner_spec(array, codec), codec.codec_pipeline
    concurrency = zarr.config.get("async.concurrency")

    def key(shard: int) -> str:
        name = array.metadata.encode_chunk_key((shard, *tail))
        return f"{array.path}/{name}" if array.path else name

    shards = range(start // shard_rows, -(-stop // shard_rows))
    size = codec._shard_index_size(per_shard)
    indexes = await concurrent_map(
        [(key(s),) for s in shards], lambda k: store.get(k, prototype, SuffixByteRequest(size)), concurrency
    )
    wanted = []
    for shard, raw in zip(shards, indexes, strict=True):
        if raw is None:  # a plain store; the strict one raises itself
            raise MissingChunkError(key(shard))
        index = await codec._decode_shard_index(raw, per_shard)
        for chunk in range(max(start, shard * shard_rows) // inner, -(-min(stop, (shard + 1) * shard_rows) // inner)):
            where = index.get_chunk_slice((chunk, *tail))
            if where is None:
                raise MissingChunkError(f"{chunk} inside shard {key(shard)}")
            wanted.append((chunk, key(shard), where))

    async def fetch(chunk: int, name: str, where: tuple[int, int]) -> None:
        raw = await store.get(name, prototype, RangeByteRequest(*where))
        if raw is None:  # gone since its index was read (a plain store; the strict one raises)
            raise MissingChunkError(name)
        (decoded,) = await pipeline.decode([(raw, spec)])
        first = chunk * inner
        lo, hi = max(first, start), min(first + inner, stop)
        out[lo - start : hi - start] = decoded.as_numpy_array()[lo - first : hi - first]

    await concurrent_map(wanted, fetch, concurrency)


class ShardWriter:
    """Writes an array's shards in order along its first axis, each file once (see module doc).

    Rows come in whole inner chunks until the last call (`final`), whose last inner chunk may be
    short: it is padded with the fill value, as Zarr does. A shard is closed when full or at the
    final call; a shard closed short anywhere but at the array's end would leave inner chunks
    inside the array's shape unwritten, so it is refused (`at_end`)."""

    BATCH = 8  # inner chunks encoded at once (in Zarr's threads): bounds the encoded bytes held

    def __init__(self, array: zarr.Array, first_row: int = 0):
        codec = array.metadata.codecs[0]
        if not isinstance(codec, ShardingCodec):
            raise TypeError(f"{array.path} is not sharded")
        self.array = array
        self.codec = codec
        self._pipeline = codec.codec_pipeline  # the inner chunks' codecs (compression, crc32c)
        self.inner = tuple(codec.chunk_shape)
        self.shard_rows = int(array.shards[0])
        self.per_shard = self.shard_rows // self.inner[0]
        self.row = first_row
        self.folder = os.path.join(array.store_path.store.root, array.path)
        self._spec = _inner_spec(array, codec)
        self._tail = (0,) * (len(self.inner) - 1)  # inner chunks split the first axis only
        self._file: Any = None
        self._temp = self._key = ""
        self._index = np.zeros(0)
        self._offset = 0

    def write(self, rows: np.ndarray, final: bool = False, at_end: bool = True) -> None:
        """Append rows; `final`: the last ones (then the open shard is closed, short only `at_end`)."""
        step = self.inner[0]
        if len(rows) % step and not final:
            raise ValueError(f"{self.array.path}: {len(rows)} rows is not a whole number of {step}-row chunks")
        lo = 0
        while lo < len(rows):
            if self._file is None:
                self._open()
            room = (self.per_shard - self._position()) * step
            hi = min(len(rows), lo + room, lo + self.BATCH * step)
            self._append(rows[lo:hi])
            lo = hi
            if self._position() == 0:  # the shard is full
                self._close()
        if final and self._file is not None:
            if not at_end:
                self._abort()
                raise ValueError(f"{self.array.path}: a shard would end at row {self.row}, inside the array")
            self._close()

    # ----- one shard ----------------------------------------------------------------------
    def _position(self) -> int:
        """Inner chunks already in the open shard (0 once it is full)."""
        return -(-(self.row % self.shard_rows) // self.inner[0])

    def _open(self) -> None:
        if self.row % self.shard_rows:  # a shard of two writers: one would overwrite the other's rows
            raise ValueError(f"{self.array.path}: rows start at {self.row}, not on a shard boundary")
        self._key = self.array.metadata.encode_chunk_key((self.row // self.shard_rows, *self._tail))
        self._temp = os.path.join(self.folder, f"{self._key}.{uuid.uuid4().hex}.partial")
        os.makedirs(self.folder, exist_ok=True)
        self._file = open(self._temp, "wb")  # noqa: SIM115 (open across calls; closed in _close)
        self._index = np.full((self.per_shard, *((1,) * len(self._tail)), 2), MAX_UINT_64, dtype="<u8")
        self._offset = 0

    def _append(self, rows: np.ndarray) -> None:
        """Encode inner chunks (a short last one padded) and append them to the open shard."""
        step = self.inner[0]
        chunks = []
        for lo in range(0, len(rows), step):
            chunk = rows[lo : lo + step]
            if len(chunk) < step:
                padded = np.full(self.inner, self.array.metadata.fill_value, dtype=rows.dtype)
                padded[: len(chunk)] = chunk
                chunk = padded
            chunks.append((NDBuffer.from_numpy_array(np.ascontiguousarray(chunk)), self._spec))
        position = self._position()
        for i, data in enumerate(sync(self._pipeline.encode(chunks))):
            raw = data.as_numpy_array()
            self._file.write(raw.data)
            self._index[(position + i, *self._tail)] = (self._offset, len(raw))
            self._offset += len(raw)
        self.row += len(rows)

    def _close(self) -> None:
        index = sync(self.codec._encode_shard_index(_ShardIndex(self._index)))
        self._file.write(index.as_numpy_array().data)
        self._file.close()
        self._file = None
        os.replace(self._temp, os.path.join(self.folder, self._key))

    def _abort(self) -> None:
        self._file.close()
        self._file = None
        os.unlink(self._temp)
