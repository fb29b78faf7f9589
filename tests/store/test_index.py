"""The records index: a split's records come from one file when nothing changed, from the records
whenever they changed (whoever wrote them), and `verify` reports an index that disagrees."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from vadctl import api
from vadctl.common.specs import Fingerprint
from vadctl.errors import StoreError
from vadctl.store import FeatureStore, VideoRecord
from vadctl.store import feature_store as feature_store_module
from vadctl.store.index import INDEX_ENTRY

IDS = [f"v{i}" for i in range(6)]


def make_store(path: Path, ids=IDS) -> FeatureStore:
    store = FeatureStore(path, create=True)
    for video_id in ids:
        record = VideoRecord("train", video_id, f"/data/{video_id}.mp4", Fingerprint(1, 2, "ab"), n_frames=8, fps=10.0)
        store.add_video(record, np.array([[0, 8]]))
    return store


def truth(path: Path) -> list[dict]:
    """Every record read from its folder (no index)."""
    store = FeatureStore(path, read_only=True)
    store.use_index = False
    return [r.to_attrs() for r in store.videos("train")]


def no_record_reads(monkeypatch) -> None:
    def refuse(folder):
        raise AssertionError(f"read a record from disk: {folder}")

    monkeypatch.setattr(feature_store_module, "stamped_record_at", refuse)


def index_file(path: Path) -> Path:
    return path.parent / f"{path.name}.vadctl" / "index" / "train.json"


def test_a_fresh_index_answers_without_reading_any_record(tmp_path: Path, monkeypatch):
    path = tmp_path / "s.zarr"
    make_store(path)
    first = FeatureStore(path, read_only=True)
    assert [r.video_id for r in first.videos("train")] == IDS
    assert first.last_scan_reads == len(IDS) and index_file(path).is_file()  # built by the first reader
    no_record_reads(monkeypatch)
    again = FeatureStore(path, read_only=True)
    assert [r.to_attrs() for r in again.videos("train")] == truth(path)
    assert again.last_scan_reads == 0


def test_a_record_written_after_the_index_is_read_from_disk_and_the_index_refreshed(tmp_path: Path):
    path = tmp_path / "s.zarr"
    store = make_store(path)
    store.videos("train")
    record = store.video("train", "v3")
    record.status, record.error, record.failure, record.attempts = "failed", "disk full", "transient", 1
    store.save_video(record)  # a writer that never touches the index (a worker, a killed run)
    reader = FeatureStore(path, read_only=True)
    got = {r.video_id: r for r in reader.videos("train")}
    assert reader.last_scan_reads == 1 and got["v3"].failure_kind == "transient"
    assert [r.to_attrs() for r in got.values()] == truth(path)
    reader.videos("train")
    assert reader.last_scan_reads == 0  # refreshed


def test_new_and_removed_videos_are_seen(tmp_path: Path):
    path = tmp_path / "s.zarr"
    store = make_store(path)
    store.videos("train")
    store.delete_video("train", "v0")
    make_store(path, ["w1"])
    reader = FeatureStore(path, read_only=True)
    assert [r.video_id for r in reader.videos("train")] == [*IDS[1:], "w1"]
    assert reader.last_scan_reads == 1


@pytest.mark.parametrize("damage", ["missing", "corrupt", "foreign", "bad record"])
def test_a_missing_or_unusable_index_is_rebuilt_from_the_records(tmp_path: Path, damage: str):
    path = tmp_path / "s.zarr"
    make_store(path).videos("train")
    target = index_file(path)
    if damage == "missing":
        target.unlink()
    elif damage == "corrupt":
        target.write_text('{"format": 1, "split": "tr')
    elif damage == "foreign":
        target.write_text(json.dumps({"format": 99, "split": "train", "videos": {}}))
    else:  # a cached record that no longer parses: never trusted, the whole index is rebuilt
        data = json.loads(target.read_text())
        data["videos"]["v2"]["record"] = {"nonsense": 1}
        target.write_text(json.dumps(data))
    reader = FeatureStore(path, read_only=True)
    assert [r.to_attrs() for r in reader.videos("train")] == truth(path)
    assert reader.last_scan_reads == len(IDS)
    reader.videos("train")
    assert reader.last_scan_reads == 0


def test_an_unreadable_record_is_reported_every_time_not_cached(tmp_path: Path):
    path = tmp_path / "s.zarr"
    make_store(path).videos("train")
    meta = path / "videos" / "train" / "v1" / "zarr.json"
    meta.write_text("{not json")
    reader = FeatureStore(path, read_only=True)
    for _ in range(2):
        records, problems = reader.scan("train")
        assert [r.video_id for r in records] == [i for i in IDS if i != "v1"]
        assert [p.video for p in problems] == ["v1"] and "corrupt" in problems[0].problem
    with pytest.raises(StoreError, match="corrupt"):
        reader.videos("train")


def test_verify_reports_an_index_that_disagrees_with_a_record_and_rebuilds_it(tmp_path: Path):
    path = tmp_path / "s.zarr"
    make_store(path).videos("train")
    target = index_file(path)
    data = json.loads(target.read_text())
    data["videos"]["v4"]["record"]["status"] = "failed"  # same stamp, other content: a wrong cache
    target.write_text(json.dumps(data))
    checked, problems = api.verify(path)
    assert [(p.video, p.entry) for p in problems] == [("v4", INDEX_ENTRY)]
    assert "no feature is affected" in problems[0].problem
    assert [r.to_attrs() for r in FeatureStore(path, read_only=True).videos("train")] == truth(path)
    assert api.verify(path) == (checked, [])
    # taking damaged data out of use never touches a video for an index problem
    data = json.loads(target.read_text())
    data["videos"]["v4"]["record"]["status"] = "failed"
    target.write_text(json.dumps(data))
    _, problems = api.verify(path, forget_damaged=True)
    assert [p.entry for p in problems] == [INDEX_ENTRY]
    assert [r.to_attrs() for r in FeatureStore(path, read_only=True).videos("train")] == truth(path)
    assert [r.video_id for r in FeatureStore(path, read_only=True).videos("train")] == IDS


def test_a_store_whose_sidecar_cannot_be_written_reads_its_records(tmp_path: Path):
    path = tmp_path / "s.zarr"
    make_store(path)
    index_dir = index_file(path).parent
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    index_dir.write_text("not a folder")  # the index cannot be written here
    reader = FeatureStore(path, read_only=True)
    assert [r.to_attrs() for r in reader.videos("train")] == truth(path)
    assert reader.last_scan_reads == len(IDS)


def test_temporary_files_of_killed_index_writers_are_removed_once_old(tmp_path: Path):
    path = tmp_path / "s.zarr"
    make_store(path).videos("train")
    target = index_file(path)
    old, recent = target.with_name(".train.json.0badc0de.tmp"), target.with_name(".train.json.5eed5eed.tmp")
    for leftover in (old, recent):
        leftover.write_text("{")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    target.unlink()
    FeatureStore(path, read_only=True).videos("train")  # rebuilds the index
    assert target.is_file() and not old.exists() and recent.exists()  # a recent one may be a live writer's
