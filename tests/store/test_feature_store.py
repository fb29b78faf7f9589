import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from vadctl.common.specs import ArraySpec, FeatureSpec, Fingerprint
from vadctl.errors import FeatureError, StoreError
from vadctl.store import FeatureStore, VideoRecord, video_key

SPEC = FeatureSpec("toy", 1, {"k": 3})


def new_video(store: FeatureStore, video_id: str = "v1", split: str = "train", n: int = 10) -> VideoRecord:
    record = VideoRecord(split, video_id, f"/data/{video_id}.mp4", Fingerprint(1, 2, "ab"), n_frames=n, fps=10.0)
    store.add_video(record, np.array([[0, n]]))
    return record


def write_toy(store: FeatureStore, record: VideoRecord, windows: list[int], commit: bool = True):
    """Dense (n, 3) rows = frame index; ragged rows: frame t has t % 3 rows of value t."""
    arrays = {"dense": ArraySpec((3,), "float32"), "rows": ArraySpec((2,), "int32", ragged=True)}
    writer = store.entry_writer(record, SPEC, arrays, record.n_frames)
    start = 0
    for size in windows:
        idx = np.arange(start, start + size)
        counts = idx % 3
        writer.write(
            dense={"dense": np.repeat(idx[:, None], 3, 1)},
            ragged={"rows": np.repeat(np.repeat(idx, counts)[:, None], 2, 1)},
            counts=counts,
        )
        start += size
    summary = writer.finish()
    if commit:
        store.commit_entry(record, writer, summary)
    return summary


def test_create_then_reopen_and_reject_foreign_folders(tmp_path: Path):
    with pytest.raises(StoreError, match="no feature store"):
        FeatureStore(tmp_path / "missing.zarr")
    FeatureStore(tmp_path / "s.zarr", create=True)
    assert FeatureStore(tmp_path / "s.zarr").info["schema"] == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(StoreError, match="not an empty folder"):
        FeatureStore(tmp_path / "full", create=True)
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(StoreError, match="not a vadctl feature store"):
        FeatureStore(tmp_path / "plain.zarr")


def test_other_schema_is_refused(store_path: Path):
    FeatureStore(store_path, create=True)
    meta = store_path / "zarr.json"
    data = json.loads(meta.read_text())
    data["attributes"]["vadctl_store"]["schema"] = 999
    meta.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="schema 999"):
        FeatureStore(store_path)


@pytest.mark.parametrize("windows", [[10], [3, 3, 3, 1], [1] * 10, [7, 3]])
def test_dense_and_ragged_round_trip_whatever_the_windows(store_path: Path, windows):
    store = FeatureStore(store_path, create=True)
    record = new_video(store)
    summary = write_toy(store, record, windows)
    assert summary["rows"] == sum(t % 3 for t in range(10))
    entry = store.entry(store.video("train", "v1"), SPEC)
    np.testing.assert_array_equal(entry["dense"][:, 0], np.arange(10))
    offsets = entry.offsets
    assert offsets[0] == 0 and len(offsets) == 11
    np.testing.assert_array_equal(np.diff(offsets), np.arange(10) % 3)
    np.testing.assert_array_equal(entry["rows"][:, 0], entry.row_index())
    assert entry.array("dense").chunks[0] >= 1


def test_uncommitted_entry_is_invisible_and_rewritable(store_path: Path):
    store = FeatureStore(store_path, create=True)
    record = new_video(store)
    write_toy(store, record, [4, 6], commit=False)
    reread = store.video("train", "v1")
    assert not reread.has(SPEC)
    with pytest.raises(FeatureError, match="no committed"):
        store.entry(reread, SPEC)
    write_toy(store, reread, [10])  # a rerun replaces the leftovers
    assert store.video("train", "v1").has(SPEC)


def test_writer_refuses_missing_rows(store_path: Path):
    store = FeatureStore(store_path, create=True)
    record = new_video(store)
    writer = store.entry_writer(record, SPEC, {"dense": ArraySpec((3,), "float32")}, 10)
    writer.write(dense={"dense": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="wrote rows up to 4 of 10"):
        writer.finish()


def test_videos_with_slashes_and_splits(store_path: Path):
    store = FeatureStore(store_path, create=True)
    new_video(store, "cam1/day2/clip", "test")
    new_video(store, "cam1", "test")
    new_video(store, "v1", "train")
    assert store.splits() == ["test", "train"]
    assert [r.video_id for r in store.videos("test")] == ["cam1", "cam1/day2/clip"]
    assert video_key("__x") != "__x" and "/" not in video_key("a/b")


def test_specs_hash_and_resolution(store_path: Path):
    store = FeatureStore(store_path, create=True)
    record = new_video(store)
    write_toy(store, record, [10])
    other = FeatureSpec("toy", 1, {"k": 4})
    assert other.hash != SPEC.hash and FeatureSpec("toy", 2, {"k": 3}).hash != SPEC.hash
    assert store.resolve("toy") == SPEC
    assert store.resolve(f"toy@{SPEC.hash[:4]}") == SPEC
    with pytest.raises(FeatureError, match="has no feature 'flow'"):
        store.resolve("flow")
    writer = store.entry_writer(record, other, {"dense": ArraySpec((1,), "float32")}, 10)
    writer.write(dense={"dense": np.zeros((10, 1))})
    store.commit_entry(record, writer, writer.finish())
    with pytest.raises(FeatureError, match="ambiguous"):
        store.resolve("toy")


def test_delete_video_forgets_everything(store_path: Path):
    store = FeatureStore(store_path, create=True)
    record = new_video(store)
    write_toy(store, record, [10])
    store.delete_video("train", "v1")
    assert store.video("train", "v1") is None
    assert store.videos("train") == []


def test_other_clients_open_the_store_as_it_is(video_dir: Path, tmp_path: Path):
    """xarray and zarr's own walkers read the store with no vadctl code and no warning."""
    import warnings

    import xarray as xr

    from vadctl import api

    store = tmp_path / "s.zarr"
    api.extract([video_dir], store, "test", ["flow", "regions", "velocity"])
    record = FeatureStore(store, read_only=True).video("test", "a")
    flow_key = next(key for key in record.features if key.startswith("flow@"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(zarr.open_group(store, mode="r").members(max_depth=None))
        video = xr.open_zarr(store, group="videos/test/a", consolidated=False)
        flow = xr.open_zarr(store, group=f"videos/test/a/{record.group_of(flow_key)}", consolidated=False)
        tree = xr.open_datatree(store, engine="zarr", consolidated=False)
    assert video["clips"].dims == ("clip", "bound")
    assert flow["data"].dims == ("frame", "y", "x", "component") and flow["data"].dtype.kind == "f"
    entry = FeatureStore(store, read_only=True).entry(record, FeatureSpec.from_dict(record.features[flow_key]))
    np.testing.assert_allclose(flow["data"].values, entry["data"] * entry.attrs("data")["scale_factor"])
    assert "videos/test/a" in tree.groups or "/videos/test/a" in tree.groups


def test_entry_path_finds_an_entry_where_it_lives_after_force(video_dir, tmp_path):
    """After `extract --force` an entry can live under NAME@HASH~xxxxxx: users (and the README's
    xarray example) ask the store for the path instead of writing it by hand."""
    import xarray as xr

    from vadctl import api
    from vadctl.errors import FeatureError

    store = tmp_path / "s.zarr"
    api.extract([video_dir], store, split="train", features=["flow"])
    api.extract([video_dir], store, split="train", features=["flow"], force=True)
    opened = api.open_store(store)
    path = opened.entry_path("train", "a", "flow")
    record = opened.video("train", "a")
    (key,) = record.features
    assert path == f"videos/train/a/{record.group_of(key)}" and path.startswith(f"videos/train/a/{key}~")
    flow = xr.open_zarr(opened.path, group=path, consolidated=False)
    assert flow["data"].shape[0] == record.n_frames
    assert opened.entry_path("train", "a", key) == path  # NAME@HASH names it too
    with pytest.raises(FeatureError, match="no committed 'velocity'"):
        opened.entry_path("train", "a", "velocity")


def test_copy_video_makes_an_up_to_date_copy_in_another_split(video_dir: Path, tmp_path: Path):
    """The demo's weak split holds train/'s videos too: copied, then found up to date by extract."""
    from snapshots import assert_intact, assert_same, snapshot

    from vadctl import api
    from vadctl.errors import UsageError

    path = tmp_path / "s.zarr"
    api.extract([video_dir], path, "train", ["flow", "regions"])
    api.extract([video_dir], path, "train", ["flow"], force=True)  # an entry under a NAME@HASH~xxxxxx group
    store = FeatureStore(path)
    (store.path / "videos" / "weak" / "a" / "leftover").mkdir(parents=True)  # a killed copy's
    copies = [store.copy_video("train", video, "weak") for video in ("a", "cam/c")]
    assert [(r.split, r.video_id) for r in copies] == [("weak", "a"), ("weak", "cam/c")]
    assert store.copy_video("train", "a", "weak") is None  # weak holds it already
    assert store.copy_video("train", "missing", "weak") is None
    with pytest.raises(UsageError, match="onto itself"):
        store.copy_video("train", "a", "train")
    assert not (store.video_dir("weak", "a") / "leftover").exists()
    train = snapshot(path, "train")
    assert_same(snapshot(path, "weak"), {key: value for key, value in train.items() if key[0] != "b"})
    assert_intact(path)  # every file of the copies re-hashed against the manifests
    report = api.extract([video_dir], path, "weak", ["flow", "regions"])
    assert report.count("up to date") == 2 and [r.video_id for r in report.results if r.status == "extracted"] == ["b"]
    assert_same(snapshot(path, "weak"), train)


@pytest.mark.parametrize("point", ["store.copy.node_copied", "store.copy.record_saved"])
def test_a_copy_killed_at_each_step_leaves_no_copy_or_a_whole_one(video_dir: Path, tmp_path: Path, point: str):
    """Killed after a node (no record yet: no copy, and the next copy cleans the leftovers) or after
    the record (a whole copy): the weak split never reads a half-copied video as complete."""
    import os
    import subprocess
    import sys

    from snapshots import assert_intact, assert_same, snapshot

    from vadctl import api
    from vadctl.common.faults import EXIT_CODE

    path = tmp_path / "s.zarr"
    api.extract([video_dir], path, "train", ["flow", "regions"])
    code = f"from vadctl.store import FeatureStore; FeatureStore({str(path)!r}).copy_video('train', 'a', 'weak')"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "VADCTL_FAULT": point}, capture_output=True)
    assert done.returncode == EXIT_CODE, done.stderr
    store = FeatureStore(path)
    copied = store.video("weak", "a")
    assert (copied is not None) == (point == "store.copy.record_saved")
    if copied is None:
        assert store.copy_video("train", "a", "weak") is not None  # the rerun completes it
    assert_intact(path)
    train = snapshot(path, "train")
    assert_same(snapshot(path, "weak"), {key: value for key, value in train.items() if key[0] == "a"})
