"""`--workers N`: whole videos in N local processes, a store equal to a serial one, progress
forwarded to the caller, dead workers cost only their video, bad options refused."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from scale_helpers import archive, assert_identical, worker_pids
from typer.testing import CliRunner

from vadctl import api
from vadctl.cli import app
from vadctl.store import FeatureStore

FEATURES = ("frames", "flow", "regions", "velocity")
N_FRAMES = 48


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> tuple[Path, Path]:
    root = archive(tmp_path_factory.mktemp("workers") / "videos", frames=N_FRAMES)
    store = root.parent / "serial.zarr"
    assert not api.extract([root], store, "train", FEATURES).failed
    return root, store


def test_two_workers_write_the_serial_store_and_forward_progress(serial, tmp_path: Path):
    root, reference = serial
    events: list[tuple[str, dict]] = []
    report = api.extract(
        [root], tmp_path / "s.zarr", "train", FEATURES, workers=2, progress=lambda e, **f: events.append((e, f))
    )
    assert report.count("extracted") == 4 and not report.failed
    assert_identical(tmp_path / "s.zarr", reference)
    names = [e for e, _ in events]
    assert names.count("planned") == 1 and names.count("video_finished") == 4
    assert sorted(f["video_id"] for e, f in events if e == "video_started") == ["v0", "v1", "v2", "v3"]
    assert sum(f["n"] for e, f in events if e == "frames_done") == 4 * N_FRAMES


def test_a_worker_killed_mid_video_costs_only_that_video_which_is_retried(serial, tmp_path: Path):
    root, reference = serial
    killed: list[int] = []

    def kill_a_worker(event, **fields):
        if event == "frames_done" and not killed:  # every worker is busy: 4 videos, 2 workers
            pid = worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    report = api.extract([root], tmp_path / "s.zarr", "train", FEATURES, workers=2, progress=kill_a_worker)
    assert killed, "no worker was killed"
    assert report.count("extracted") == 4 and not report.failed
    assert_identical(tmp_path / "s.zarr", reference)


def test_a_video_that_kills_its_worker_every_time_is_recorded_failed(serial, tmp_path: Path, monkeypatch):
    root, reference = serial
    store = tmp_path / "s.zarr"
    monkeypatch.setenv("VADCTL_FAULT", "extract.started:v1")  # any worker starting v1 dies there
    report = api.extract([root], store, "train", FEATURES, workers=2)
    by_video = {r.video_id: r for r in report.results}
    assert by_video["v1"].status == "failed" and "died" in by_video["v1"].error
    assert [v for v, r in by_video.items() if r.status == "extracted"] == ["v0", "v2", "v3"]
    record = FeatureStore(store, read_only=True).video("train", "v1")
    assert record.status == "failed" and "died" in record.error
    assert (record.failure_kind, record.attempts) == ("transient", 1)  # the machine's doing, maybe not the video's
    monkeypatch.delenv("VADCTL_FAULT")
    rerun = api.extract([root], store, "train", FEATURES, workers=2)  # tried again without --retry-failed
    assert rerun.count("extracted") == 1 and rerun.count("up to date") == 3
    assert_identical(store, reference)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--workers", "0"], "--workers 0"),
        (["--executor", "spark"], "--executor 'spark'"),
        (["--executor", "ray", "--ray-address", "not an address"], "--ray-address"),
        (["--ray-address", "auto"], "--ray-address applies to --executor ray"),
        (["--segment-frames", "-5"], "--segment-frames -5"),
    ],
)
def test_bad_executor_options_exit_2_naming_the_option_and_write_nothing(tmp_path: Path, options, says):
    root = archive(tmp_path / "videos", n=1, frames=8)
    store = tmp_path / "s.zarr"
    result = CliRunner().invoke(app, ["extract", str(root), "--store", str(store), *options])
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1
    assert not store.exists()


def test_executor_ray_without_ray_installed_is_a_one_line_error(tmp_path: Path, monkeypatch):
    from vadctl.executors import choose

    monkeypatch.setattr(choose, "find_spec", lambda name: None)
    root = archive(tmp_path / "videos", n=1, frames=8)
    result = CliRunner().invoke(app, ["extract", str(root), "--store", str(tmp_path / "s.zarr"), "--executor", "ray"])
    assert result.exit_code == 2 and "pip install 'vadctl[ray]'" in result.output
    assert not (tmp_path / "s.zarr").exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_workers_and_keeps_what_is_committed(serial, tmp_path: Path):
    import subprocess
    import time

    from commands import extract_cmd
    from snapshots import snapshot

    from vadctl.common.faults import STALL_ENV

    root, reference = serial
    store = tmp_path / "s.zarr"
    command = extract_cmd(root, store, "--workers", "2", "--features", ",".join(FEATURES))
    # v3's worker waits at its start until signalled, so the run is still going when Ctrl-C comes
    env = {**os.environ, STALL_ENV: "extract.started:v3"}
    # a runner started in the background (`cmd &` in a script) ignores SIGINT, and Python keeps an
    # ignored SIGINT ignored: give the child Ctrl-C's default, as a terminal would
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=_default_sigint
    )
    workers: set[int] = set()
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # interrupt once the other three are committed
        workers.update(worker_pids(proc.pid))
        if (store / "zarr.json").exists() and len(FeatureStore(store, read_only=True).videos("train")) == 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert b"interrupted" in stderr
    left = list(workers)
    for _ in range(100):  # orphans are reaped by init: give it a moment on a loaded machine
        left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        if not left:
            break
        time.sleep(0.1)
    assert workers and not left, "workers left running"
    committed = snapshot(store)
    expected = snapshot(reference)
    assert committed and all((committed[k] == expected[k]).all() for k in committed)
    rerun = api.extract([root], store, "train", FEATURES, workers=2)
    assert not rerun.failed
    assert_identical(store, reference)
