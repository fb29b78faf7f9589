"""`--executor ray` on a two-node local Ray cluster (`ray.cluster_utils.Cluster`, one CPU per node)
that loses its worker node mid-run, while that node runs a video: the lost work is run again on
the head node and the store ends equal to a serial one, no video failed. Once with tasks
(weight-free features), once with actors (a weighted featurizer)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from commands import extract_cmd
from scale_helpers import archive, assert_identical

from vadctl import api
from vadctl.extraction.extractor import EXTRACTED, UP_TO_DATE
from vadctl.store import FeatureStore

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

FEATURES = ("frames", "flow", "regions", "velocity")
VIDEOS = 6


@pytest.fixture(scope="module")
def head():
    """A cluster of one head node (1 CPU; the driver's node), this process connected to it."""
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def ray_workers_of(node, name: bytes) -> list[int]:
    """Ray worker processes started by `node`'s raylet that run `name` (e.g. b"ray::_run_task")."""
    raylet = node.all_processes["raylet"][0].process.pid
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == raylet and (entry / "cmdline").read_bytes().startswith(name):
                pids.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def extract_losing_a_node(head, root: Path, store: Path, running: bytes, **options):
    """Extract with a worker node added, removed once the first video is done and the node is
    running work; returns the report, what the worker node ran when removed, and the notes."""
    worker = head.add_node(num_cpus=1)
    head.wait_for_nodes()
    lost: list[list[int]] = []
    notes: list[str] = []

    def remove_the_worker_node(event, **fields):
        if event == "note":
            notes.append(fields["text"])
        if event != "video_finished" or lost:
            return
        deadline = time.monotonic() + 20
        while not (pids := ray_workers_of(worker, running)) and time.monotonic() < deadline:
            time.sleep(0.05)
        lost.append(pids)
        head.remove_node(worker)

    try:
        report = api.extract([root], store, "train", progress=remove_the_worker_node, workers=2, **options)
    finally:
        if not lost:
            head.remove_node(worker)
    return report, lost, notes


def assert_complete(report, n: int) -> None:
    # a video committed on the lost node just before it died is found up to date by its retry
    assert not report.failed, [(r.video_id, r.error) for r in report.failed]
    assert report.count(EXTRACTED) + report.count(UP_TO_DATE) == n


def committed(store: Path, n: int) -> list[str]:
    """Videos v0… the store holds a committed record of (none while it is being created)."""
    try:
        fs = FeatureStore(store, read_only=True)
        return [f"v{i}" for i in range(n) if fs.video("train", f"v{i}") is not None]
    except Exception:
        return []


def test_a_lost_node_fails_no_video_and_extract_exits_0_with_the_serial_store(head, tmp_path: Path):
    """`vadctl extract --executor ray --ray-address … --workers 2` as a process; the worker node is
    removed once a video is committed and the node runs a task."""
    root = archive(tmp_path / "videos", n=VIDEOS, frames=30)
    assert not api.extract([root], tmp_path / "serial.zarr", "train", FEATURES).failed
    worker = head.add_node(num_cpus=1)
    head.wait_for_nodes()
    store = tmp_path / "ray.zarr"
    options = ["--features", ",".join(FEATURES), "--executor", "ray", "--ray-address", head.address, "--workers", "2"]
    run = subprocess.Popen(extract_cmd(root, store, *options), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lost: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            if committed(store, VIDEOS) and (lost := ray_workers_of(worker, b"ray::_run_task")):
                head.remove_node(worker)
                break
            time.sleep(0.05)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        if not lost:
            head.remove_node(worker)
    assert lost, "the run ended before its worker node ran a task after the first commit"
    assert run.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    # a video committed on the lost node just before it died is found up to date by its retry
    assert [v["status"] for v in report["videos"] if v["status"] not in (EXTRACTED, UP_TO_DATE)] == []
    assert len(report["videos"]) == VIDEOS
    assert_identical(store, tmp_path / "serial.zarr")


def test_actors_of_a_lost_node_hand_their_work_to_live_ones(head, tmp_path: Path):
    """Actors (a weighted featurizer: a tiny YOLOX detector in onnxruntime, so an actor starts in a
    second; torch's import took minutes in two actors on a loaded machine)."""
    from tiny_models import yolo_onnx

    root = archive(tmp_path / "videos", n=4, frames=12)
    weights = {"yolox": yolo_onnx(tmp_path / "yolox.onnx", "yolox", [(20, 12, 16, 8, 0, 4.0)])}
    params = {"regions": {"detector": "yolox"}}
    serial = api.extract([root], tmp_path / "serial.zarr", "train", ["regions"], params, weights)
    assert not serial.failed
    report, lost, notes = extract_losing_a_node(
        head,
        root,
        tmp_path / "ray.zarr",
        b"ray::_WorkActor",
        features=["regions"],
        params=params,
        weights=weights,
        executor="ray",
    )
    assert lost and lost[0], "the worker node held no actor when it was removed"
    assert_complete(report, 4)
    assert any("submitted again" in note for note in notes), notes
    assert [s.key for s in report.specs] == [s.key for s in serial.specs]
    assert_identical(tmp_path / "ray.zarr", tmp_path / "serial.zarr")
