"""`store gc`: an entry made with other parameters than a newer one is not garbage by itself (a
model fitted on it needs it to score); gc removes it only when told what is in use and nothing
of that needs it. Told nothing, gc keeps every committed entry."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vadctl import api
from vadctl.store import FeatureStore
from vadctl.store.maintenance import gc


def two_velocity_entries(video_dir: Path, store: Path) -> tuple[str, str]:
    """(older default velocity key, newer velocity n_bins=8 key), in every video."""
    assert not api.extract([video_dir], store, "train", ["velocity"]).failed
    time.sleep(1.1)  # commit times have one-second resolution: make the second one newer
    api.extract([video_dir], store, "train", ["velocity"], ["velocity.n_bins=8"])
    record = FeatureStore(store, read_only=True).video("train", "a")
    keys = sorted(record.features, key=lambda k: record.features[k]["committed_at"])
    velocity = [k for k in keys if k.startswith("velocity@")]
    assert len(velocity) == 2 and record.features[velocity[1]]["params"]["n_bins"] == 8
    return velocity[0], velocity[1]


def velocity_arrays(store: Path, video: str, key: str) -> dict[str, np.ndarray]:
    fs = FeatureStore(store, read_only=True)
    entry = fs.entry(fs.video("train", video), fs.resolve(key, "train"))
    return {name: entry[name] for name in entry.array_names}


def test_gc_told_nothing_keeps_entries_with_other_parameters(video_dir: Path, store_path: Path):
    older, newer = two_velocity_entries(video_dir, store_path)
    before = velocity_arrays(store_path, "a", older)
    report = api.gc(store_path, apply=True)
    assert report.removals == [] and not report.in_use_known
    assert sorted({k.key for k in report.kept}) == [older] and len(report.kept) == 3
    for video in ("a", "b", "cam/c"):
        assert set(FeatureStore(store_path, read_only=True).video("train", video).features) >= {older, newer}
    for name, values in velocity_arrays(store_path, "a", older).items():
        np.testing.assert_array_equal(values, before[name])


def test_gc_removes_an_older_entry_only_when_nothing_in_use_needs_it(video_dir: Path, store_path: Path):
    older, newer = two_velocity_entries(video_dir, store_path)
    fs = FeatureStore(store_path)
    needed = gc(fs, apply=True, in_use={older: {"model deployed.safetensors"}})
    assert needed.removals == [] and {k.why for k in needed.kept} == {"needed by model deployed.safetensors"}
    assert older in fs.video("train", "a").features
    unused = gc(fs, apply=True, in_use={newer: {"model new.safetensors"}})
    assert sorted((r.video, r.key) for r in unused.removals) == [("a", older), ("b", older), ("cam/c", older)]
    for video in ("a", "b", "cam/c"):
        record = fs.video("train", video)
        assert set(record.features) == {newer, *(k for k in record.features if not k.startswith("velocity"))}
    assert gc(fs, apply=True, in_use={}).removals == []  # nothing left over: the data went with the entry
    assert fs.verify(deep=True)[1] == []


def test_gc_dry_run_lists_and_removes_nothing(video_dir: Path, store_path: Path):
    older, _ = two_velocity_entries(video_dir, store_path)
    report = gc(FeatureStore(store_path), apply=False, in_use={})
    assert len(report.removals) == 3 and not report.applied
    assert older in FeatureStore(store_path, read_only=True).video("train", "a").features
