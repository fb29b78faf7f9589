"""Long videos in chunk-aligned segments: the same store as an unsplit extract, serial or in
parallel, and crash-safe at every step (a killed run leaves the old version or the new one)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from commands import extract_cmd
from scale_helpers import assert_identical
from snapshots import assert_intact, assert_same, snapshot
from videos import Square, make_video

from vadctl import api
from vadctl.common.faults import EXIT_CODE
from vadctl.store import FeatureStore

# motion's grid is sized so its clip rows chunk by 8 (its segments then align on 64 frames, like flow's)
pytestmark = pytest.mark.usefixtures("chunk_sized_shards")  # 64-frame segments (see conftest)
FEATURES = ("frames", "flow", "regions", "velocity", "motion")
PARAMS = {"motion": {"rows": 60, "cols": 80}}
SEGMENT = 64  # frames; chunk rows of flow here are 64, so segments are 64 frames


def long_video(root: Path, version: int, frames: int = 136) -> Path:
    squares = [Square(2, 20 + 10 * version, 1.5 + version, 0.3, size=18), Square(150, 90, -1.0, -0.2, size=16)]
    make_video(root / "long.avi", frames, seed=version, height=120, width=160, squares=squares)
    return root


def extract(root: Path, store: Path, **options):
    report = api.extract([root], store, "train", FEATURES, PARAMS, **options)
    assert not report.failed, report.failed
    return report


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("segments")
    roots = {v: long_video(base / f"v{v}", v) for v in (1, 2)}
    for v, root in roots.items():
        extract(root, base / f"whole{v}.zarr")  # serial and unsplit: the reference
    return {"base": base, "roots": roots}


@pytest.mark.parametrize("workers", [1, 2])
def test_segments_equal_an_unsplit_extract(versions, tmp_path: Path, workers: int):
    store = tmp_path / "s.zarr"
    report = extract(versions["roots"][1], store, workers=workers, segment_frames=SEGMENT)
    assert report.results[0].segments == 3  # 64 + 64 + 8 frames
    assert_identical(store, versions["base"] / "whole1.zarr")
    video = FeatureStore(store, read_only=True).video_dir("train", "long")
    assert len([p for p in video.iterdir() if p.is_dir()]) == 1 + len(FEATURES)  # parts removed after the commit
    assert api.gc(store).removals == []


def test_an_update_in_segments_reads_what_is_stored(versions, tmp_path: Path):
    store = tmp_path / "s.zarr"
    api.extract([versions["roots"][1]], store, "train", ["flow"], segment_frames=SEGMENT)
    report = api.extract([versions["roots"][1]], store, "train", ["motion"], PARAMS, segment_frames=SEGMENT)
    assert report.results[0].read == [next(k for k in report.results[0].read if k.startswith("flow@"))]
    assert report.results[0].segments == 3
    expected = {
        k: v for k, v in snapshot(versions["base"] / "whole1.zarr").items() if k[1] in ("flow", "motion", "clips")
    }
    assert_same(snapshot(store), expected)


POINTS = (
    "extract.segments.prepared",
    "extract.segment.written@2",
    "extract.segments.joined",
    "store.commit.after_switch",
    "extract.segments.committed",
)


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_at_each_step_of_a_segmented_video_leaves_old_or_new(versions, tmp_path: Path, point: str):
    store = tmp_path / "s.zarr"
    shutil.copytree(versions["base"] / "whole1.zarr", store)
    root = tmp_path / "videos"
    shutil.copytree(versions["roots"][2], root)  # the video changed: same id, other content
    params = ["-p", "motion.rows=60", "-p", "motion.cols=80", "--features", ",".join(FEATURES)]
    command = extract_cmd(root, store, "--segment-frames", str(SEGMENT), *params)
    done = subprocess.run(command, env={**os.environ, "VADCTL_FAULT": point}, capture_output=True, text=True)
    assert done.returncode == EXIT_CODE, done.stderr
    old, new = (snapshot(versions["base"] / f"whole{v}.zarr") for v in (1, 2))
    switched = point in ("store.commit.after_switch", "extract.segments.committed")
    assert_same(snapshot(store), new if switched else old)
    assert_intact(store)
    rerun = extract(root, store, segment_frames=SEGMENT)
    assert rerun.count("extracted") == (0 if switched else 1)
    assert_identical(store, versions["base"] / "whole2.zarr")
    report = api.gc(store, apply=True)  # what the kill left is unreferenced data, nothing else
    assert all(r.what.startswith("orphan") or r.what.startswith("sidecar") for r in report.removals)
    assert_identical(store, versions["base"] / "whole2.zarr")
