"""Sharded entries: a few files per array, each written once, read back as written; an inner chunk
missing from a shard or a damaged shard is damage (never zeros); a store of the unsharded layout
reads as it is and what is written into it from now on is sharded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from snapshots import assert_same, snapshot
from videos import Square, make_video
from zarr.core.sync import sync

from vadctl import api
from vadctl.common.specs import ArraySpec, FeatureSpec
from vadctl.errors import StoreError
from vadctl.store import FeatureStore, MissingChunkError, VideoRecord, zarrio
from vadctl.store.records import Fingerprint
from vadctl.store.shards import _ShardIndex

N = 300
SPEC = FeatureSpec("prop", 1, {})
ARRAYS = {"dense": ArraySpec((16,), "float32"), "rows": ArraySpec((3, 2), "int32", ragged=True)}
WINDOWS = (7, 30, 1, 100, 62, 100)


@pytest.fixture
def small(monkeypatch):
    """1 KiB chunks in 8 KiB shards: 16-row chunks, 8 per shard of `dense` (3 shards)."""
    monkeypatch.setattr(zarrio, "CHUNK_BYTES", 1024)
    monkeypatch.setenv(zarrio.SHARD_BYTES_ENV, str(8 * 1024))


def data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 5, N)
    dense = rng.normal(size=(N, 16)).astype(np.float32)
    dense[16:48] = 0  # whole chunks of fill values are written like any other
    return {
        "dense": dense,
        "counts": counts,
        "rows": rng.integers(-9, 9, (int(counts.sum()), 3, 2)).astype(np.int32),
        "offsets": np.concatenate([[0], np.cumsum(counts)]),
    }


def write_entry(path: Path, values: dict, video: str = "v") -> FeatureStore:
    store = FeatureStore(path, create=True)
    record = VideoRecord("train", video, f"/x/{video}.mp4", Fingerprint(1, 1, video), n_frames=N, fps=10.0)
    store.add_video(record, np.array([[0, N]]))
    writer = store.entry_writer(record, SPEC, ARRAYS, N)
    start, offsets = 0, values["offsets"]
    for size in WINDOWS:
        stop = start + size
        rows = values["rows"][offsets[start] : offsets[stop]]
        dense = {"dense": values["dense"][start:stop]}
        writer.write(dense=dense, ragged={"rows": rows}, counts=values["counts"][start:stop])
        start = stop
    store.commit_entry(record, writer, writer.finish())
    return store


def entry_dir(path: Path, video: str = "v") -> Path:
    record = FeatureStore(path, read_only=True).video("train", video)
    return path / "videos" / "train" / video / record.group_of(SPEC.key)


def read(path: Path, name: str, video: str = "v") -> np.ndarray:
    fs = FeatureStore(path, read_only=True)
    return fs.entry(fs.video("train", video), SPEC)[name]


def test_an_entry_is_a_shard_file_per_shard_each_written_once_and_read_back(small, tmp_path: Path, monkeypatch):
    values = data()
    replaced = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: replaced.append(Path(b)) or replace(a, b))
    write_entry(tmp_path / "sharded.zarr", values)
    monkeypatch.setattr(os, "replace", replace)
    folder = entry_dir(tmp_path / "sharded.zarr")
    assert sorted(os.listdir(folder / "dense")) == ["c.0.0", "c.1.0", "c.2.0", "zarr.json"]  # 19 chunks before
    shards = [path for path in replaced if path.name.startswith("c.")]  # ours, and those Zarr wrote
    assert len(shards) == len(set(shards)) == 3 + 3 + 1 + 1  # each once: dense, rows, offsets, clips
    meta = json.loads((folder / "dense" / "zarr.json").read_text())
    sharding = meta["codecs"][0]
    assert sharding["name"] == "sharding_indexed" and sharding["configuration"]["chunk_shape"] == [16, 16]
    assert [c["name"] for c in sharding["configuration"]["codecs"]][-1] == "crc32c"  # one per inner chunk
    assert [c["name"] for c in sharding["configuration"]["index_codecs"]][-1] == "crc32c"
    for name in ("dense", "rows", "offsets"):
        np.testing.assert_array_equal(read(tmp_path / "sharded.zarr", name), values[name])
    fs = FeatureStore(tmp_path / "sharded.zarr", read_only=True)
    entry = fs.entry(fs.video("train", "v"), SPEC)
    for start, stop in ((33, 277), (0, 1), (120, 136), (299, None), (-40, -3)):  # across shards, in one, at the end
        np.testing.assert_array_equal(entry.read("dense", start, stop), values["dense"][start:stop])
    assert not list(folder.rglob("*.partial"))
    assert FeatureStore(tmp_path / "sharded.zarr", read_only=True).verify(deep=True) == (1, [])
    monkeypatch.setenv(zarrio.SHARD_BYTES_ENV, "0")  # the layout before: one file per chunk, same data
    write_entry(tmp_path / "chunked.zarr", values)
    assert len(os.listdir(entry_dir(tmp_path / "chunked.zarr") / "dense")) == 19 + 1
    assert_same(snapshot(tmp_path / "chunked.zarr"), snapshot(tmp_path / "sharded.zarr"))


def test_segments_write_whole_shards_and_equal_one_writer(small, tmp_path: Path):
    values = data(1)
    whole = write_entry(tmp_path / "whole.zarr", values)
    store = FeatureStore(tmp_path / "parts.zarr", create=True)
    record = VideoRecord("train", "v", "/x/v.mp4", Fingerprint(1, 1, "v"), n_frames=N, fps=10.0)
    store.add_video(record, np.array([[0, N]]))
    group = store.prepare_entry(record, SPEC, ARRAYS, N, "t")
    offsets, parts = values["offsets"], []
    with pytest.raises(ValueError, match="not on a shard boundary"):
        store.segment_writer(record, SPEC, ARRAYS, N, group, (16, 144), "misaligned")  # a chunk, not a shard
    for index, (first, stop) in enumerate(((256, N), (0, 128), (128, 256))):  # any order, as workers finish
        part = f"{group}.part{index}"
        writer = store.segment_writer(record, SPEC, ARRAYS, N, group, (first, stop), part)
        rows = values["rows"][offsets[first] : offsets[stop]]
        dense = {"dense": values["dense"][first:stop]}
        writer.write(dense=dense, ragged={"rows": rows}, counts=values["counts"][first:stop])
        writer.finish_part()
        parts.append((first, part))
    summary = store.join_entry(record, SPEC, ARRAYS, N, group, [p for _, p in sorted(parts)])
    store.commit_video(record, {SPEC.key: (SPEC, summary, group)})
    folder, reference = entry_dir(tmp_path / "parts.zarr"), entry_dir(whole.path)
    for name in ("dense", "rows", "offsets"):
        files = sorted(os.listdir(reference / name))
        assert sorted(os.listdir(folder / name)) == files
        same = [(folder / name / f).read_bytes() == (reference / name / f).read_bytes() for f in files]
        assert all(same)  # shard for shard, byte for byte (metadata included)
        np.testing.assert_array_equal(read(tmp_path / "parts.zarr", name), values[name])


def rewrite_index(shard: Path, array: zarr.Array, change) -> None:
    """Rewrite a shard's index through `change(offsets_and_lengths)`, with a valid checksum: what a
    writer that skipped an inner chunk would have left."""
    codec = array.metadata.codecs[0]
    per_shard = (array.shards[0] // array.chunks[0], *([1] * (array.ndim - 1)))
    size = codec._shard_index_size(per_shard)
    raw = shard.read_bytes()
    index = sync(codec._decode_shard_index(zarr.core.buffer.cpu.Buffer.from_bytes(raw[-size:]), per_shard))
    table = index.offsets_and_lengths.copy()
    change(table)
    encoded = sync(codec._encode_shard_index(_ShardIndex(table)))
    shard.write_bytes(raw[:-size] + encoded.to_bytes())


def test_an_inner_chunk_missing_from_a_shard_is_damage_never_zeros(small, tmp_path: Path):
    path = tmp_path / "s.zarr"
    write_entry(path, data())
    folder = entry_dir(path)
    array = zarr.open_array(zarrio.StrictLocalStore(str(folder / "dense")), mode="r")
    rewrite_index(folder / "dense" / "c.1.0", array, lambda table: table.__setitem__((2, 0), np.uint64(2**64 - 1)))
    np.testing.assert_array_equal(array[:160], data()["dense"][:160])  # the rest reads
    with pytest.raises(MissingChunkError, match="inside a shard"):
        array[160:170]  # inner chunk 2 of shard 1: rows 160-175
    with pytest.raises(StoreError, match="damaged"):
        read(path, "dense")
    fs = FeatureStore(path, read_only=True)
    (problem,) = fs.verify(deep=True)[1]  # same size (the index is shorter than a chunk): hashes tell
    assert "dense/c.1.0 does not hash as written" in problem.problem


@pytest.mark.parametrize("where", ["inner chunk", "index"])
def test_flipped_bytes_in_a_shard_raise_and_the_deep_check_finds_them(small, tmp_path: Path, where: str):
    path = tmp_path / "s.zarr"
    write_entry(path, data())
    shard = entry_dir(path) / "dense" / "c.0.0"
    raw = bytearray(shard.read_bytes())
    raw[40 if where == "inner chunk" else len(raw) - 10] ^= 0xFF  # same size: only hashes and checksums tell
    shard.write_bytes(bytes(raw))
    fs = FeatureStore(path, read_only=True)
    assert fs.verify()[1] == []
    (problem,) = fs.verify(deep=True)[1]
    assert "does not hash as written" in problem.problem
    with pytest.raises(StoreError, match="damaged"):
        read(path, "dense")


def test_a_store_of_the_unsharded_layout_reads_as_it_is_and_new_writes_are_sharded(tmp_path: Path, monkeypatch):
    videos = tmp_path / "videos"
    for i in range(2):
        make_video(videos / f"v{i}.avi", 24, seed=i, squares=[Square(4 + 9 * i, 20, 3.0, 0.0)])
    monkeypatch.setenv(zarrio.SHARD_BYTES_ENV, "0")  # today's layout: one file per chunk
    store = tmp_path / "old.zarr"
    api.extract([videos / "v0.avi"], store, "train", ["flow", "regions"])
    before = snapshot(store)
    old_files = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    assert not any("sharding" in p.read_text() for p in store.rglob("zarr.json"))
    monkeypatch.delenv(zarrio.SHARD_BYTES_ENV)
    assert_same(snapshot(store), before)  # reads as it is
    report = api.extract([videos], store, "train", ["flow", "regions", "velocity"])
    assert report.count("extracted") == 2 and not report.failed
    fs = FeatureStore(store, read_only=True)
    assert fs.verify(deep=True)[1] == []
    kept = {k: v for k, v in snapshot(store).items() if k[0] == "v0" and k[1] in ("flow", "regions", "clips")}
    assert_same(kept, before)
    assert all((store / p).is_file() for p in old_files)  # the old entries were not rewritten
    record = fs.video("train", "v0")
    velocity = next(k for k in record.features if k.startswith("velocity@"))
    meta = fs.video_dir("train", "v0") / record.group_of(velocity) / "count" / "zarr.json"
    assert json.loads(meta.read_text())["codecs"][0]["name"] == "sharding_indexed"  # new: sharded
    new = fs.video_dir("train", "v1")
    assert all(json.loads(p.read_text())["codecs"][0]["name"] == "sharding_indexed" for p in new.glob("*/*/zarr.json"))
