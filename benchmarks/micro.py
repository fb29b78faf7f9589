"""Small synthetic measurements quoted in RESULTS.md (seconds to run, no data set needed).

  dis      DIS optical flow pairs/s per preset (vadctl's preset table), on 360×240 textured frames
           moving by a few pixels, with OpenCV on 1 thread and on all cores
  startup  wall time of `python -m vadctl --version` (the CLI's start-up), of importing the
           libraries most commands load (scikit-learn, polars, zarr), and of a bare interpreter

Usage: python benchmarks/micro.py [dis] [startup] [--pairs 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np


def textured_frames(n: int, height: int = 240, width: int = 360, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height + 64, width + 64), np.uint8), (0, 0), 2.0)
    return [np.ascontiguousarray(base[2 * i % 32 : 2 * i % 32 + height, i % 16 : i % 16 + width]) for i in range(n)]


def dis(pairs: int) -> None:
    from vadctl.features.flow import DIS_PRESETS

    frames = textured_frames(pairs + 1)
    cores = os.cpu_count() or 1
    print(f"DIS optical flow, 360×240 gray, {pairs} pairs per cell, {cores} cores")
    rates = {}
    for threads in (1, cores):
        cv2.setNumThreads(threads)
        for preset in ("fast", "medium"):
            flow = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
            flow.calc(frames[0], frames[1], None)  # warm-up
            started = time.perf_counter()
            for a, b in itertools.pairwise(frames):
                flow.calc(a, b, None)
            rates[preset, threads] = pairs / (time.perf_counter() - started)
            print(f"  preset {preset:<6} threads {threads}: {rates[preset, threads]:7.1f} pairs/s")
    for threads in (1, cores):
        print(f"  fast / medium on {threads} thread(s): {rates['fast', threads] / rates['medium', threads]:.2f}×")


def wall(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def startup(repeats: int) -> None:
    bare = wall([sys.executable, "-c", "pass"], repeats)
    cli = wall([sys.executable, "-m", "vadctl", "--version"], repeats)
    libraries = wall([sys.executable, "-c", "import sklearn.mixture, polars, zarr"], repeats)
    print(f"start-up, median of {repeats} (load average {os.getloadavg()[0]:.1f})")
    print(f"  bare interpreter                      {bare:6.2f} s")
    print(f"  python -m vadctl --version            {cli:6.2f} s")
    print(f"  import sklearn.mixture, polars, zarr  {libraries:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help="dis, startup (default: both)")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    args.which = args.which or ["dis", "startup"]
    if set(args.which) - {"dis", "startup"}:
        parser.error(f"unknown measurement(s): {', '.join(sorted(set(args.which) - {'dis', 'startup'}))}")
    if "dis" in args.which:
        dis(args.pairs)
    if "startup" in args.which:
        startup(args.repeats)


if __name__ == "__main__":
    main()
