"""Peak RSS of `vadctl extract` against video length and resolution (it must not grow with length).

Writes its own videos (moving textured squares over a noise background, MPEG-4 part 2 in .mp4,
written a frame at a time) to a temporary folder, then extracts each into a fresh store in a fresh
process and reports that process's peak RSS (`ru_maxrss`), with the default features unless told.
Usage:
  python benchmarks/memory.py                       # 360x240: 200, 2,000, 20,000 frames; 1280x720: 3,000
  python benchmarks/memory.py --cases 360x240:200 360x240:4000 --features flow,regions,velocity
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CASES = ("360x240:200", "360x240:2000", "360x240:20000", "1280x720:3000")


def write_video(path: Path, width: int, height: int, n_frames: int, seed: int = 0) -> Path:
    """A synthetic surveillance-like video, one frame at a time (memory flat in its length)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    noise = rng.integers(40, 90, size=(height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    base = cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR)
    size = max(8, height // 12)
    texture = np.clip(150 + rng.integers(-60, 61, (size, size)), 0, 255).astype(np.uint8)
    walkers = [
        (rng.uniform(0, width), rng.uniform(0, height - size), rng.uniform(1, 4), rng.uniform(-1, 1)) for _ in range(4)
    ]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height), True)
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write {path}")
    for t in range(n_frames):
        frame = base.copy()
        for x0, y0, dx, dy in walkers:
            x = int((x0 + dx * t) % (width - size))
            y = int((y0 + dy * t) % (height - size))
            frame[y : y + size, x : x + size] = texture
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def child(video: Path, store: Path, features: str) -> None:
    """One extraction in this (fresh) process; prints its figures as JSON."""
    from vadctl import api

    started = time.perf_counter()
    report = api.extract([video], store, "train", features)
    if report.failed:
        raise SystemExit(f"extract failed: {report.failed[0].error}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": report.frames, "seconds": time.perf_counter() - started, "peak_rss_mb": peak}))


def measure(video: Path, store: Path, features: str) -> dict:
    command = [sys.executable, __file__, "--child", str(video), str(store), "--features", features]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=list(DEFAULT_CASES), help="WIDTHxHEIGHT:FRAMES ...")
    parser.add_argument("--features", default="frames,flow,regions,velocity")
    parser.add_argument("--child", nargs=2, metavar=("VIDEO", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.features)
        return
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load:.1f}")
    print(f"features: {args.features}\n")
    print("| video | frames | extract s | frames/s | peak RSS |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="vadctl-memory-") as tmp:
        for case in args.cases:
            size, frames = case.split(":")
            width, height = (int(v) for v in size.split("x"))
            video = write_video(Path(tmp) / f"{size}_{frames}.mp4", width, height, int(frames))
            result = measure(video, Path(tmp) / f"{size}_{frames}.zarr", args.features)
            rate = result["frames"] / result["seconds"]
            print(
                f"| {size} | {result['frames']:,} | {result['seconds']:.0f} | {rate:.0f} | "
                f"{result['peak_rss_mb']:.0f} MB |",
                flush=True,
            )
            video.unlink()
    print(f"\nload after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
