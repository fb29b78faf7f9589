"""Small synthetic measurements quoted in RESULTS.md (seconds to run, no data set needed).

  dis      DIS optical flow pairs/s per preset (vadctl's preset table), on 360×240 textured frames
           moving by a few pixels, with OpenCV on 1 thread and on all cores
  startup  wall time of `vadctl --help` and `--version` (the CLI's start-up), of `import vadctl.api`,
           of importing the libraries most commands load (scikit-learn, polars, zarr) and of a
           bare interpreter, side by side; then `python -X importtime`'s heaviest top-level imports
           of `vadctl --help` and `import vadctl.api`, and whether torch, scikit-learn, scipy or
           zarr are among them (they must not be)

Usage: python benchmarks/micro.py [dis] [startup] [--pairs 60] [--repeats 5] [--before OLD_CHECKOUT]
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


def wall(command: list[str], repeats: int, tree: str | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": tree} if tree else None
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, cwd="/")  # no checkout on the path
        times.append(time.perf_counter() - started)
    return statistics.median(times)


HEAVY = ("torch", "sklearn", "scipy", "zarr", "ray", "cv2", "polars")


def import_times(command: list[str]) -> list[tuple[str, float]]:
    """Packages a command imports (at any depth), each with the summed self time of its modules in
    seconds, largest first: what `python -X importtime` says the start-up is made of."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True, cwd="/")
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        top = name.split(".")[0]
        found[top] = found.get(top, 0.0) + int(own) / 1e6
    return sorted(found.items(), key=lambda item: -item[1])


def startup(repeats: int, before: str | None = None) -> None:
    commands = {
        "bare interpreter (python -c pass)": ["-c", "pass"],
        "vadctl --help": ["-m", "vadctl", "--help"],
        "vadctl --version": ["-m", "vadctl", "--version"],
        "import vadctl.api": ["-c", "import vadctl.api"],
        "import sklearn.mixture, polars, zarr": ["-c", "import sklearn.mixture, polars, zarr"],
    }
    print(f"start-up, median of {repeats}, one after another (load average {os.getloadavg()[0]:.1f})")
    if before:
        print(f"  (before: the same commands with PYTHONPATH={before}, run alternately with these)")
    bare = None
    for label, args in commands.items():
        seconds = wall([sys.executable, *args], repeats)
        bare = seconds if bare is None else bare
        line = f"  {label:<38} {seconds:6.3f} s  ({seconds - bare:+.3f} s over the bare interpreter)"
        if before:
            line += f"   before {wall([sys.executable, *args], repeats, before):6.3f} s"
        print(line)
    for label, args in (
        ("vadctl --help", ["-m", "vadctl", "--help"]),
        ("import vadctl.api", ["-c", "import vadctl.api"]),
    ):
        times = import_times(args)
        heavy = sorted(name for name, _ in times if name in HEAVY)
        shown = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in times[:8])
        print(f"  {label}: heaviest imports {shown}; heavy libraries loaded: {', '.join(heavy) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help="dis, startup (default: both)")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", help="a checkout of an earlier vadctl to time beside this one (startup)")
    args = parser.parse_args()
    args.which = args.which or ["dis", "startup"]
    if set(args.which) - {"dis", "startup"}:
        parser.error(f"unknown measurement(s): {', '.join(sorted(set(args.which) - {'dis', 'startup'}))}")
    if "dis" in args.which:
        dis(args.pairs)
    if "startup" in args.which:
        startup(args.repeats, args.before)


if __name__ == "__main__":
    main()
