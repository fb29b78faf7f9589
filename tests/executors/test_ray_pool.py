"""`--executor ray` on a local Ray cluster (2 CPUs): the store equals a serial one, long videos
split into segments included, and a Ray worker killed mid-task is retried to a complete store."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from scale_helpers import archive, assert_identical

from vadctl import api
from vadctl.extraction.extractor import UP_TO_DATE

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.usefixtures("chunk_sized_shards")  # 64-frame segments (see conftest)
FEATURES = ("frames", "flow", "regions", "velocity")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = archive(tmp_path_factory.mktemp("ray") / "videos", n=3, frames=40, long_frames=136)
    reference = root.parent / "serial.zarr"
    assert not api.extract([root], reference, "train", FEATURES).failed
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False)
    yield root, reference
    ray.shutdown()


def running_ray_tasks() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_run_task"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_ray_tasks_write_the_serial_store_with_segments(cluster, tmp_path: Path):
    root, reference = cluster
    store = tmp_path / "s.zarr"
    report = api.extract([root], store, "train", FEATURES, executor="ray", segment_frames=64)
    assert not report.failed and report.count("extracted") == 4
    assert {r.video_id: r.segments for r in report.results}["long"] == 3
    assert_identical(store, reference)


def test_a_killed_ray_worker_is_retried_and_the_store_ends_complete(cluster, tmp_path: Path):
    root, reference = cluster
    killed: list[int] = []

    def kill_a_worker(event, **fields):
        if event == "frames_done" and not killed:
            pids = running_ray_tasks()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    report = api.extract([root], tmp_path / "s.zarr", "train", FEATURES, executor="ray", progress=kill_a_worker)
    assert killed, "no Ray worker was running a task"
    # a worker killed after its video's commit but before returning it leaves that video whole: the
    # retry finds it up to date (that race is real, and fine); a video failed or missing is not
    assert not report.failed and report.count("extracted") + report.count(UP_TO_DATE) == 4
    assert report.count("extracted") >= 3
    assert_identical(tmp_path / "s.zarr", reference)


def test_losing_the_progress_queue_fails_no_video(cluster, tmp_path: Path, monkeypatch):
    from vadctl.executors import ray_pool

    root, reference = cluster
    pools = []
    original = ray_pool.RayPool.start
    monkeypatch.setattr(ray_pool.RayPool, "start", lambda pool, events: (pools.append(pool), original(pool, events)))
    killed = []

    def kill_the_queue(event, **fields):
        if event == "frames_done" and not killed:
            ray.kill(pools[0].events.actor)  # as when its node is lost: workers' puts fail from now on
            killed.append(True)

    report = api.extract([root], tmp_path / "s.zarr", "train", FEATURES, executor="ray", progress=kill_the_queue)
    assert killed
    assert not report.failed and report.count("extracted") == 4
    assert_identical(tmp_path / "s.zarr", reference)


def test_weighted_features_run_in_actors_and_num_gpus_keeps_the_identity(cluster, tmp_path: Path):
    """A featurizer with weights (a tiny YOLOX detector in onnxruntime: an actor starts in a second,
    where torch took minutes on a loaded machine) runs in actors that load it once."""
    from tiny_models import yolo_onnx

    from vadctl.executors import ray_pool

    root = archive(tmp_path / "videos", n=2, frames=6)
    weights = {"yolox": yolo_onnx(tmp_path / "yolox.onnx", "yolox", [(20, 12, 16, 8, 0, 4.0)])}
    params = {"regions": {"detector": "yolox"}}
    serial = api.extract([root], tmp_path / "serial.zarr", "train", ["regions"], params, weights)
    started = []
    original = ray_pool.RayPool._start_actors
    ray_pool.RayPool._start_actors = lambda self, ray: (started.append(True), original(self, ray))[1]
    try:
        gpus = {"regions": {"detector": "yolox", "num_gpus": 0}}  # where it runs, not what it computes
        report = api.extract([root], tmp_path / "ray.zarr", "train", ["regions"], gpus, weights, executor="ray")
    finally:
        ray_pool.RayPool._start_actors = original
    assert started and not report.failed and report.count("extracted") == 2
    assert [s.key for s in report.specs] == [s.key for s in serial.specs]
    assert_identical(tmp_path / "ray.zarr", tmp_path / "serial.zarr")
