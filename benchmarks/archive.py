"""`vadctl run` over a growing archive: does a nightly run cost the new work, not the archive size?

Writes an archive of N short videos (default 1,000, in 10 camera folders; one in ten shows a fast
square, so there are events), plus 8 training videos it extracts and fits AI-VAD on (setup, not
timed). Then, each as a real `vadctl run JOB --json` process, timed from outside (start-up included):
1. the first run: extract and score the whole archive;
2. after 10 new videos, a second run; the cost of those 10 videos is what the run itself logged for
   them (extract and score seconds per video, plus committing their part), so
   overhead = wall − that cost (the issue asks for overhead ≤ 5 s);
3. a run with nothing new (the issue asks for < 3 s).
Then the size of the results dataset and the time of DuckDB's "events of the last day" query, and
planning the run with nothing new in this process (`vadctl run --dry-run`'s work: imports and
interpreter start excluded), with the store's records index and without it (every record read
from its `zarr.json`), alternately, side by side.
Usage: python benchmarks/archive.py [--videos 1000] [--new 10] [--frames 20] [--keep DIR]
       python benchmarks/archive.py --planning DIR   (only the planning figures, over a kept DIR)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

FEATURES = ["flow", "regions", "velocity"]
WIDTH, HEIGHT = 96, 64


def write_video(path: Path, n_frames: int, rng: np.random.Generator, fast: bool) -> None:
    """A textured background with two walkers (3 px/frame) and, when `fast`, a square at 9 px/frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    background = cv2.resize(rng.integers(40, 90, (HEIGHT // 4, WIDTH // 4), dtype=np.uint8), (WIDTH, HEIGHT))
    movers = [(float(rng.uniform(-10, 50)), float(rng.uniform(28, 44)), 3.0) for _ in range(2)]
    if fast:
        movers.append((-40.0, float(rng.uniform(28, 40)), 9.0))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (WIDTH, HEIGHT), True)
    for t in range(n_frames):
        frame = background.copy()
        for x0, y0, speed in movers:
            x, y = round(x0 + speed * t), round(y0)
            frame[max(y, 0) : y + 14, max(x, 0) : max(x + 14, 0)] = 200
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def write_archive(root: Path, first: int, count: int, n_frames: int) -> None:
    rng = np.random.default_rng(first)
    for i in range(first, first + count):
        write_video(root / f"cam{i % 10:02d}" / f"clip{i:05d}.avi", n_frames, rng, fast=i % 10 == 3)


def vadctl_run(job: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of the process, report). CPU time is what the run would take on a
    quiet machine (it runs on one core); wall time here includes waiting for a shared CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "vadctl", "run", str(job), "--json"], capture_output=True, text=True, cwd="/"
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"vadctl run exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(done.stdout)


def logged_cost(log: Path, run_id: str) -> dict[str, float]:
    """Seconds the run logged for per-video work: extraction, scoring, committing parts."""
    cost = {"extract": 0.0, "score": 0.0, "commit": 0.0, "model load": 0.0}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event.get("run_id") != run_id:
            continue
        kind = {
            "video_extracted": "extract",
            "video_scored": "score",
            "part_committed": "commit",
            "model_loaded": "model load",
        }.get(event["event"])
        if kind:
            cost[kind] += event.get("seconds", 0.0)
    return cost


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def events_query(results: Path, repeats: int = 5) -> tuple[float, int]:
    """Median seconds of "events of the last day" in a fresh DuckDB connection each time."""
    import duckdb

    sql = (
        f"select * from read_parquet('{results}/events/**/*.parquet', hive_partitioning=true) "
        "where scored_at >= now() - interval 1 day order by peak_score desc"
    )
    times, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = len(duckdb.connect().execute(sql).fetchall())
        times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def planning_times(job: Path, repeats: int = 5) -> dict[bool, tuple[float, float]]:
    """Median (wall, CPU) seconds of planning the job's run (a dry run: what would be extracted and
    scored), with the records index (True) and without (False), alternately in this process; one
    warm-up of each first (imports, and the index brought up to date)."""
    from vadctl import api
    from vadctl.store import FeatureStore

    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    try:
        for round_ in range(repeats + 1):
            for use_index in (False, True):
                FeatureStore.use_index = use_index
                wall, cpu = time.perf_counter(), time.process_time()
                report = api.run(job, dry_run=True)
                if round_:
                    times[use_index].append((time.perf_counter() - wall, time.process_time() - cpu))
                if any(s.to_extract for s in report.sources):
                    raise SystemExit("planning the no-op run found work to do")
    finally:
        FeatureStore.use_index = True
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}


def print_planning(job: Path, videos: int) -> None:
    times = planning_times(job)
    load = os.getloadavg()
    print(
        f"planning the run with nothing new ({videos} videos, in-process, median of 5, load {load[0]:.1f}): "
        f"records index {times[True][0]:.3f} s wall, {times[True][1]:.3f} s CPU; "
        f"without (every record read) {times[False][0]:.3f} s wall, {times[False][1]:.3f} s CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it.")
    parser.add_argument("--planning", type=Path, default=None, help="Only time planning, over a kept folder.")
    args = parser.parse_args()
    if args.planning:
        print_planning(args.planning / "nightly.toml", sum(1 for _ in (args.planning / "cams").rglob("*.avi")))
        return
    from vadctl import api

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="vadctl-archive-")
    site = args.keep or Path(tmp.name)
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    try:
        started = time.perf_counter()
        write_archive(site / "cams", 0, args.videos, args.frames)
        rng = np.random.default_rng(99)
        for i in range(8):
            write_video(site / "train" / f"t{i}.avi", args.frames * 2, rng, fast=False)
        api.extract([site / "train"], site / "archive.zarr", "train", FEATURES)
        api.fit("aivad", site / "archive.zarr", site / "models" / "aivad.safetensors", {"n_velocity_bins": 4})
        setup = time.perf_counter() - started
        job = site / "nightly.toml"
        job.write_text(
            'store = "archive.zarr"\nresults = "results"\nlog = "vadctl.log"\n'
            f"[extract]\nfeatures = {json.dumps(FEATURES)}\n"
            '[[sources]]\nroot = "cams"\n[[models]]\npath = "models/aivad.safetensors"\n'
        )
        startup = min(_timed([sys.executable, "-m", "vadctl", "--version"]) for _ in range(3))  # process start-up alone
        first_s, first_cpu, first = vadctl_run(job)
        write_archive(site / "cams", args.videos, args.new, args.frames)
        second_s, second_cpu, second = vadctl_run(job)
        cost = logged_cost(site / "vadctl.log", second["run_id"])
        noop_s, noop_cpu, noop = vadctl_run(job)
        query_s, n_events = events_query(site / "results")
        sizes = {kind: folder_bytes(site / "results" / kind) for kind in ("frames", "regions", "events")}
        load = os.getloadavg()
        planning = planning_times(job)
    finally:
        if tmp is not None:
            tmp.cleanup()
    new_cost = cost["extract"] + cost["score"] + cost["commit"]
    print(
        f"{args.videos} videos of {args.frames} frames ({WIDTH}×{HEIGHT}, 10 fps), features {', '.join(FEATURES)}, "
        f"AI-VAD; {os.cpu_count()} cores; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        f"setup (writing videos, fitting) {setup:.0f} s; `vadctl --version` start-up {startup:.2f} s"
    )
    print()
    print("| run | wall (CLI process) | CPU of the process | extracted | scored | notes |")
    print("|---|---|---|---|---|---|")
    print(
        f"| first | {first_s:.1f} s | {first_cpu:.1f} s | {first['sources'][0]['extracted']} | "
        f"{first['models'][0]['scored']} | {len(first['models'][0]['units'])} parts per kind |"
    )
    print(
        f"| +{args.new} videos | {second_s:.2f} s | {second_cpu:.2f} s | {second['sources'][0]['extracted']} | "
        f"{second['models'][0]['scored']} | cost of the {args.new} videos as logged: {new_cost:.2f} s "
        f"(extract {cost['extract']:.2f}, score {cost['score']:.2f}, commit {cost['commit']:.2f}); "
        f"overhead {second_s - new_cost:.2f} s wall, of which loading the model {cost['model load']:.2f} s |"
    )
    print(
        f"| nothing new | {noop_s:.2f} s | {noop_cpu:.2f} s | {noop['sources'][0]['extracted']} | "
        f"{noop['models'][0]['scored']} | {noop['models'][0]['up_to_date']} already scored |"
    )
    print()
    total = sum(sizes.values())
    print(
        f"results dataset: {total / 1e6:.2f} MB (frames {sizes['frames'] / 1e6:.2f}, regions "
        f"{sizes['regions'] / 1e6:.2f}, events {sizes['events'] / 1e6:.3f}); "
        f"DuckDB 'events of the last day': {query_s * 1000:.0f} ms median of 5 ({n_events} events)"
    )
    print(
        f"planning the run with nothing new (in-process, median of 5): records index {planning[True][0]:.3f} s "
        f"wall, {planning[True][1]:.3f} s CPU; without (every record read) {planning[False][0]:.3f} s wall, "
        f"{planning[False][1]:.3f} s CPU"
    )


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
