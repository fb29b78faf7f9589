"""A small archive for `vadctl run` tests: a fitted AI-VAD model, a camera folder of test videos
(three with a fast square), a store they are already extracted into, and a job file that names
them all by paths relative to itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
from videos import Square, make_video

FEATURES = ["flow", "regions", "velocity"]
N_FRAMES = 40
JOB = """\
store = "archive.zarr"
results = "results"
log = "vadctl.log"

[extract]
features = ["flow", "regions", "velocity"]

[[sources]]
root = "cam1"
scene = "cam1"

[[models]]
path = "models/aivad.safetensors"

[scoring]
part_videos = 2

[events]
min_len = 2
min_gap = 3
"""


def walkers(rng: np.random.Generator, n: int) -> list[Square]:
    return [
        Square(float(rng.uniform(-10, 60)), float(rng.uniform(28, 44)), float(rng.uniform(2.5, 3.5)), 0.0)
        for _ in range(n)
    ]


def camera_video(path: Path, seed: int, fast: bool = True) -> Path:
    """Walkers, and (when `fast`) a square crossing three times faster than any of them."""
    rng = np.random.default_rng(seed)
    squares = walkers(rng, 2) + ([Square(-40.0, float(rng.uniform(28, 40)), 9.0, 0.0)] if fast else [])
    return make_video(path, N_FRAMES, seed=seed, squares=squares)


def build_archive(root: Path) -> Path:
    """Everything a job needs, extracted and fitted; returns the job file."""
    from vadctl import api

    rng = np.random.default_rng(0)
    for i in range(4):
        make_video(root / "train" / f"t{i}.avi", N_FRAMES, seed=i, squares=walkers(rng, 3))
    for i in range(4):
        camera_video(root / "cam1" / f"c{i}.avi", seed=10 + i, fast=i > 0)
    api.extract([root / "train"], root / "archive.zarr", "train", FEATURES)
    api.extract([root / "cam1"], root / "archive.zarr", "test", FEATURES, scene="cam1")
    # The model these tests deploy: AI-VAD on speed alone, as the archive was written for (four short
    # training videos; with today's defaults, speed with position and σ = 6, it also flags events in
    # the camera without anomalies, c0: measured, not what these plumbing tests are about).
    params = {"n_velocity_bins": 4, "velocity_position": "none", "smoothing_sigma": 3.0}
    api.fit("aivad", root / "archive.zarr", root / "models" / "aivad.safetensors", params)
    job = root / "job.toml"
    job.write_text(JOB)
    return job


def copy_archive(job: Path, dest: Path) -> Path:
    shutil.copytree(job.parent, dest)
    return dest / job.name


def vadctl_run(job: Path, *args: str, env: dict | None = None, cwd: Path | None = None, **kwargs):
    """`python -m vadctl run JOB --json …` as a real process."""
    command = [sys.executable, "-m", "vadctl", "run", str(job), "--json", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, **kwargs)


def frame_counts(results: Path) -> tuple[int, int]:
    """(rows, distinct (video, frame, model_sha256, video_fingerprint)) of the frames dataset, by DuckDB."""
    glob = str(results / "frames" / "**" / "*.parquet")
    return duckdb.sql(
        f"select count(*), count(distinct (video, frame, model_sha256, video_fingerprint)) "
        f"from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()[0]
