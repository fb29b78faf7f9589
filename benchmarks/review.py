"""`vadctl review` on 1,000 events: the first build, then a rerun with nothing new (the target: < 2 s).

A synthetic results dataset (no feature store, so no video is decoded: the first build's cost here
is the matplotlib timelines; the rerun must cost neither): 100 videos of 300 frames, 10 events each,
one model, one night. Each rerun is a fresh `python -m vadctl review` process, start-up included,
as cron or a person runs it. Usage: python benchmarks/review.py [--events 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

FRAMES, PER_VIDEO = 300, 10


def build(results: Path, n_events: int) -> None:
    """frames and events parts as `vadctl run` lays them out (one part each)."""
    rng = np.random.default_rng(0)
    n_videos = n_events // PER_VIDEO
    run, day = "20240501T020000Z-000000", "2024-05-01"
    provenance = {
        "model_sha256": "ab" * 32,
        "run_id": run,
        "scored_at": datetime(2024, 5, 1, 2, tzinfo=UTC),
        "split": "test",
    }
    frames, events = [], []
    for v in range(n_videos):
        video = f"cam{v % 4}/{v:04d}"
        score = rng.gamma(2.0, 0.1, FRAMES)
        for e in range(PER_VIDEO):
            start = 5 + e * (FRAMES // PER_VIDEO)
            score[start : start + 12] += 2.0
            events.append(
                {
                    "video": video,
                    "start_frame": start,
                    "end_frame": start + 11,
                    "n_frames": 12,
                    "start_s": start / 10,
                    "end_s": (start + 12) / 10,
                    "peak_frame": start + 6,
                    "peak_score": float(score[start + 6]),
                    "peak_score_norm": None,
                    "threshold": 1.0,
                    "video_fingerprint": f"{v:064d}",
                    **provenance,
                }
            )
        frames.append(
            pl.DataFrame(
                {
                    "video": [video] * FRAMES,
                    "frame": np.arange(FRAMES),
                    "score": score,
                    "is_anomaly": score > 1.0,
                    "threshold": [1.0] * FRAMES,
                    "video_fingerprint": [f"{v:064d}"] * FRAMES,
                }
            ).with_columns(**{k: pl.lit(val) for k, val in provenance.items()})
        )
    for kind, table in (("frames", pl.concat(frames)), ("events", pl.DataFrame(events))):
        folder = results / kind / "model=synthetic" / f"date={day}"
        folder.mkdir(parents=True)
        table.write_parquet(folder / f"part-{run}-0.parquet", metadata={"vadctl.store": ""})


def review(results: Path, out: Path) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "vadctl", "review", str(results), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    print("   ", done.stdout.strip().splitlines()[-1])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep OUT's dataset and page: time the reruns only")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="vadctl-review-bench-"))
    if not (args.reuse and (root / "review" / "index.html").is_file()):
        shutil.rmtree(root / "results", ignore_errors=True)
        shutil.rmtree(root / "review", ignore_errors=True)
        build(root / "results", args.events)
        first = review(root / "results", root / "review")
        print(f"first build: {first:.1f} s ({args.events} events, {args.events // PER_VIDEO} videos)")
    reruns = [review(root / "results", root / "review") for _ in range(3)]
    print(f"rerun with nothing new: {min(reruns):.2f} s best, {max(reruns):.2f} s worst of 3 (target < 2 s)")
    from vadctl import api

    inside = []
    for _ in range(3):
        started = time.perf_counter()
        api.review(root / "results", root / "review")
        inside.append(time.perf_counter() - started)
    print(f"of which api.review in a warm process: {min(inside):.2f} s best of 3")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
