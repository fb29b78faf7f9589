"""Killed runs and concurrent runs, with real processes on a real store."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from commands import extract_cmd
from snapshots import assert_same, snapshot
from videos import Square, make_video

from vadctl.store import FeatureStore

FEATURES = ("frames", "flow", "regions", "velocity")


def archive(root: Path, n: int = 6, frames: int = 90) -> Path:
    for i in range(n):
        make_video(
            root / f"v{i}.avi",
            frames,
            seed=i,
            height=120,
            width=160,
            squares=[Square(5 + 7 * i, 30, 3.0, 0.5, size=20), Square(140, 80, -2.5, -0.5, size=18)],
        )
    return root


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    root = archive(tmp_path_factory.mktemp("arch") / "videos")
    store = root.parent / "reference.zarr"
    subprocess.run(extract_cmd(root, store), check=True, capture_output=True)
    return root, snapshot(store)


def test_killed_run_leaves_nothing_complete_that_is_not_and_rerun_completes(reference, tmp_path: Path):
    root, expected = reference
    store = tmp_path / "killed.zarr"
    proc = subprocess.Popen(extract_cmd(root, store), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some, not all, work is committed, then kill mid-write
        time.sleep(0.05)
        if (store / "zarr.json").exists():
            committed = sum(len(r.features) for r in FeatureStore(store, read_only=True).videos("train"))
            if committed >= 2:
                break
    time.sleep(0.15)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = FeatureStore(store, read_only=True).videos("train")
    total = sum(len(r.features) for r in partial)
    assert 0 < total < 6 * len(FEATURES), "kill landed before or after the work; make the archive longer"
    got = snapshot(store)  # whatever reads as committed must be whole and right
    for key, value in got.items():
        np.testing.assert_array_equal(value, expected[key], err_msg=str(key))
    rerun = subprocess.run(extract_cmd(root, store), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["extracted"] >= 1 and report["failed"] == 0
    assert_same(snapshot(store), expected)


def test_two_concurrent_runs_share_the_work_without_corruption(reference, tmp_path: Path):
    root, expected = reference
    store = tmp_path / "shared.zarr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(extract_cmd(root, store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    reports = [json.loads(stdout) for stdout, _ in outputs]
    assert sum(r["extracted"] for r in reports) == 6  # every video extracted exactly once
    assert all(r["extracted"] + r["up_to_date"] == 6 for r in reports)
    assert_same(snapshot(store), expected)


def test_installed_console_script(tmp_path: Path):
    script = Path(sys.executable).with_name("vadctl")
    assert script.exists(), "vadctl is not installed in this environment"
    make_video(tmp_path / "v" / "one.avi", 12)
    result = subprocess.run(
        [
            str(script),
            "extract",
            str(tmp_path / "v"),
            "--store",
            str(tmp_path / "s.zarr"),
            "--features",
            "regions",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["extracted"] == 1
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("vadctl ")
