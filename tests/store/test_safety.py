"""Every path that replaces data in the store is crash-safe at each step: a real `vadctl extract`
process is killed at each commit point in turn (fault injection), the store must then read as the
old or the new version of each video (never a mix, never a crash), and a rerun must complete it to
exactly what a clean run writes. Readers running while a video is rewritten never crash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from commands import extract_cmd
from snapshots import assert_intact, assert_same, snapshot
from videos import Square, make_video

from vadctl import api
from vadctl.common.faults import EXIT_CODE
from vadctl.common.specs import FeatureSpec
from vadctl.store import FeatureStore
from vadctl.store import feature_store as feature_store_module

FEATURES = ("frames", "flow", "regions", "velocity")
POINTS = ("extract.written", "store.commit.before_switch", "store.commit.after_switch", "store.commit.removing")
IDS = ("a", "b", "c")
CHOSEN = ("--features", ",".join(FEATURES))  # the CLI runs what the API runs, not the default set


def write_archive(root: Path, version: int) -> Path:
    """Three small lossless videos; `version` 2 has other content (a 'changed source')."""
    for i, name in enumerate(IDS):
        square = Square(4 + 6 * i, 10 + 14 * version, 2.0 + version, 0.5, size=14)
        make_video(root / f"{name}.avi", 24 + 4 * i, seed=10 * version + i, squares=[square])
    return root


def clean_store(root: Path, path: Path) -> dict:
    report = api.extract([root], path, "train", FEATURES)
    assert not report.failed
    return snapshot(path)


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("safety")
    old_root = write_archive(base / "old", 1)
    new_root = write_archive(base / "new", 2)
    old = clean_store(old_root, base / "old.zarr")
    new = clean_store(new_root, base / "new.zarr")
    return {"base": base, "old_root": old_root, "new_root": new_root, "old": old, "new": new}


def killed(command: list[str], point: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env={**os.environ, "VADCTL_FAULT": point}, capture_output=True, text=True)
    assert done.returncode == EXIT_CODE, f"not killed at {point}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def per_video(data: dict) -> dict[str, dict]:
    videos: dict[str, dict] = {}
    for key, value in data.items():
        videos.setdefault(key[0], {})[key] = value
    return videos


def assert_old_or_new(got: dict, old: dict, new: dict) -> list[str]:
    """Each video reads exactly as its old or its new version; returns the ids that are new."""
    now, before, after = per_video(got), per_video(old), per_video(new)
    assert set(now) == set(before), "a video vanished or appeared"
    switched = []
    for video, data in now.items():
        try:
            assert_same(data, before[video])
        except AssertionError:
            assert_same(data, after[video])
            switched.append(video)
    return switched


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("nth", [1, 2])
def test_changed_sources_killed_at_each_commit_point_then_rerun(versions, tmp_path: Path, point: str, nth: int):
    store = tmp_path / "store.zarr"
    shutil.copytree(versions["base"] / "old.zarr", store)
    root = tmp_path / "videos"
    shutil.copytree(versions["old_root"], root)
    for name in IDS:  # the archive's files change (same ids, other content)
        shutil.copy2(versions["new_root"] / f"{name}.avi", root / f"{name}.avi")
    # removal happens once per superseded node (clip table + 4 entries): the n-th video's first one
    reached = 1 + (nth - 1) * (1 + len(FEATURES)) if point == "store.commit.removing" else nth
    killed(extract_cmd(root, store, *CHOSEN), f"{point}@{reached}")
    switched = assert_old_or_new(snapshot(store), versions["old"], versions["new"])
    expected_switched = nth - 1 + (point in ("store.commit.after_switch", "store.commit.removing"))
    assert len(switched) == expected_switched, (point, nth, switched)
    assert_intact(store)
    rerun = api.extract([root], store, "train", FEATURES)
    assert not rerun.failed and rerun.count("extracted") == len(IDS) - expected_switched
    assert_same(snapshot(store), versions["new"])
    assert_intact(store)
    report = api.gc(store, apply=True)  # whatever a kill left behind goes, nothing else
    assert all(r.what.startswith("orphan") or r.what.startswith("sidecar") for r in report.removals)
    assert_same(snapshot(store), versions["new"])


@pytest.mark.parametrize("point", POINTS[:3])
def test_forced_reextract_killed_at_each_commit_point(versions, tmp_path: Path, point: str):
    store = tmp_path / "store.zarr"
    shutil.copytree(versions["base"] / "new.zarr", store)
    killed(extract_cmd(versions["new_root"], store, "--force", *CHOSEN), point)
    assert_same(snapshot(store), versions["new"])  # same input: old and new versions are equal
    assert_intact(store)
    api.extract([versions["new_root"]], store, "train", FEATURES, force=True)
    assert_same(snapshot(store), versions["new"])
    assert api.gc(store).removals == []  # the rerun left no leftovers


def test_new_videos_killed_before_their_commit_are_extracted_by_the_rerun(versions, tmp_path: Path):
    store = tmp_path / "store.zarr"
    killed(extract_cmd(versions["new_root"], store, *CHOSEN), "store.commit.before_switch@2")
    assert [r.video_id for r in FeatureStore(store, read_only=True).videos("train")] == ["a"]
    rerun = api.extract([versions["new_root"]], store, "train", FEATURES)
    assert rerun.count("extracted") == 2 and rerun.count("up to date") == 1
    assert_same(snapshot(store), versions["new"])


def test_killed_between_record_commits_and_the_index_rewrite_the_next_planning_sees_the_truth(
    versions, tmp_path: Path, monkeypatch
):
    """The records index is a cache: records committed after it was written (the run was killed
    before anything rewrote it) are read from disk by the next planning; a kill while the index
    itself is being rewritten leaves no index (only a temporary file), and the truth is read."""
    store = tmp_path / "store.zarr"
    shutil.copytree(versions["base"] / "old.zarr", store)
    root = tmp_path / "videos"
    shutil.copytree(versions["new_root"], root)
    FeatureStore(store, read_only=True).videos("train")  # a fresh index of the old records
    killed(extract_cmd(root, store, *CHOSEN), "store.commit.after_switch@2")
    reader = FeatureStore(store, read_only=True)
    assert assert_old_or_new(snapshot(store), versions["old"], versions["new"]) == ["a", "b"]
    plan = api.plan_extract([root], store, "train", FEATURES)
    assert [(p.video_id, p.action) for p in plan] == [("a", "skip"), ("b", "skip"), ("c", "replace")]
    direct = FeatureStore(store, read_only=True)
    direct.use_index = False
    assert [r.to_attrs() for r in reader.videos("train")] == [r.to_attrs() for r in direct.videos("train")]
    assert reader.last_scan_reads == 0  # plan_extract's scan read the 2 new records and refreshed the index
    index = store.parent / f"{store.name}.vadctl" / "index" / "train.json"
    index.unlink()  # the next run's planning rebuilds it, and is killed before its rename
    killed(extract_cmd(root, store, *CHOSEN), "store.index.before_rename")
    assert not index.exists() and list(index.parent.glob(".train.json.*.tmp"))
    assert [(p.video_id, p.action) for p in api.plan_extract([root], store, "train", FEATURES)] == [
        ("a", "skip"),
        ("b", "skip"),
        ("c", "replace"),
    ]
    rerun = api.extract([root], store, "train", FEATURES)
    assert rerun.count("extracted") == 1
    assert_same(snapshot(store), versions["new"])
    assert [p.action for p in api.plan_extract([root], store, "train", FEATURES)] == ["skip"] * 3

    def refuse(folder):
        raise AssertionError(f"planning read a record from disk: {folder}")

    monkeypatch.setattr(feature_store_module, "stamped_record_at", refuse)  # the index is fresh now
    assert [p.action for p in api.plan_extract([root], store, "train", FEATURES)] == ["skip"] * 3


def test_readers_never_crash_while_videos_are_rewritten(versions, tmp_path: Path):
    store = tmp_path / "store.zarr"
    shutil.copytree(versions["base"] / "new.zarr", store)
    expected = versions["new"]
    writer = subprocess.Popen(
        [sys.executable, "-c", _REWRITE.format(root=str(versions["new_root"]), store=str(store))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reads, errors = 0, []
    stop = threading.Event()
    try:
        while writer.poll() is None and not stop.is_set():
            try:
                got = snapshot(store)
            except Exception as error:  # any exception is a failure of the promise
                errors.append(f"{type(error).__name__}: {error}")
                continue
            for key, value in got.items():
                np.testing.assert_array_equal(value, expected[key], err_msg=str(key))
            reads += 1
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0, writer.stderr
    assert errors == [] and reads >= 3, (reads, errors[:3])
    assert_same(snapshot(store), expected)


_REWRITE = """
from vadctl import api
for _ in range(4):
    report = api.extract([{root!r}], {store!r}, "train", ("frames", "flow", "regions", "velocity"), force=True)
    assert not report.failed
"""


# ----- deleting or replacing some entries of a video: the others must survive any kill ---------------


def entries_of(store: Path) -> dict[tuple[str, str, str], np.ndarray]:
    """Every array of every committed entry, keyed by (video, entry key, array)."""
    fs = FeatureStore(store, read_only=True)
    data = {}
    for record in fs.videos("train"):
        for key, summary in record.features.items():
            entry = fs.entry(record, FeatureSpec.from_dict(summary))
            for name in entry.array_names + (["offsets"] if entry.offsets is not None else []):
                data[(record.video_id, key, name)] = entry[name]
    return data


def only(data: dict, keys: set[str]) -> dict:
    return {k: v for k, v in data.items() if k[1] in keys}


@pytest.fixture(scope="module")
def wide(versions) -> dict:
    """The new archive's store plus velocity with n_bins=8 in every video, committed later."""
    store = versions["base"] / "wide.zarr"
    shutil.copytree(versions["base"] / "new.zarr", store)
    time.sleep(1.1)  # commit times have one-second resolution: the n_bins=8 entries are newer
    assert not api.extract([versions["new_root"]], store, "train", ["velocity"], {"velocity": {"n_bins": 8}}).failed
    record = FeatureStore(store, read_only=True).video("train", "a")
    velocity = {s["params"]["n_bins"]: k for k, s in record.features.items() if s["name"] == "velocity"}
    return {"store": store, "default": velocity[16], "n8": velocity[8], "data": entries_of(store)}


@pytest.mark.parametrize("point", POINTS)
def test_forced_redo_killed_at_each_commit_point_keeps_entries_of_other_parameters(
    versions, wide, tmp_path: Path, point: str
):
    store = tmp_path / "store.zarr"
    shutil.copytree(wide["store"], store)
    killed(extract_cmd(versions["new_root"], store, "--force", *CHOSEN), point)
    got = entries_of(store)
    assert_same(only(got, {wide["n8"]}), only(wide["data"], {wide["n8"]}))  # never touched
    assert_same(got, wide["data"])  # the redone entries: old or new, equal either way (same input)
    assert_intact(store)
    api.extract([versions["new_root"]], store, "train", FEATURES, force=True)
    assert_same(entries_of(store), wide["data"])
    assert api.gc(store).removals == []  # the rerun left no leftovers


_GC = """
from vadctl.store import FeatureStore
from vadctl.store.maintenance import gc
gc(FeatureStore({store!r}), apply=True, in_use={{{keep!r}: {{"model new.safetensors"}}}})
"""


@pytest.mark.parametrize("point", ["store.gc.switched", "store.gc.removing", "store.gc.switched@2"])
def test_gc_killed_at_each_point_removes_an_unused_entry_whole_or_not_at_all(wide, tmp_path: Path, point: str):
    store = tmp_path / "store.zarr"
    shutil.copytree(wide["store"], store)
    script = _GC.format(store=str(store), keep=wide["n8"])
    killed([sys.executable, "-c", script], point)
    records = {r.video_id: r for r in FeatureStore(store, read_only=True).videos("train")}
    gone = sorted(v for v, r in records.items() if wide["default"] not in r.features)
    assert gone == list(IDS[: 1 + (point == "store.gc.switched@2")])  # switched videos lost it, no other
    others = {key for _, key, _ in wide["data"]} - {wide["default"]}
    got = entries_of(store)
    assert_same(only(got, others), only(wide["data"], others))  # what stays is untouched
    left = {k: v for k, v in wide["data"].items() if k[1] == wide["default"] and k[0] not in gone}
    assert_same(only(got, {wide["default"]}), left)  # the unused entry: whole wherever a record keeps it
    assert_intact(store)
    subprocess.run([sys.executable, "-c", script], check=True)  # the rerun finishes the job
    assert all(wide["default"] not in r.features for r in FeatureStore(store, read_only=True).videos("train"))
    assert_same(entries_of(store), only(wide["data"], others))
    assert api.gc(store).removals == []  # no data left behind
