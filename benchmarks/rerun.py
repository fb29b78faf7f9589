"""Cost of a cron rerun with nothing new, on an archive of many videos.

Writes N small videos (default 1,000), extracts them once (`regions`), then reruns the same
`vadctl extract` twice and reports the planning time the extractor measures itself and the wall
time of the whole CLI run (process start-up included). Then touches 10% of the files (same bytes,
new mtime) and changes 1% (new content) to show what a rerun does with each.
Usage: python benchmarks/rerun.py [--videos 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def write_archive(root: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = root / f"cam{i % 10:02d}" / f"clip{i:05d}.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48), True)
        base = rng.integers(40, 200, (48, 64, 3), dtype=np.uint8)
        for t in range(6):
            frame = base.copy()
            frame[10:26, 4 + 6 * t : 20 + 6 * t] = 255
            writer.write(frame)
        writer.release()
        paths.append(path)
    return paths


def extract(root: Path, store: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vadctl",
            "extract",
            str(root),
            "--store",
            str(store),
            "--features",
            "regions",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vadctl-rerun-") as tmp:
        root, store = Path(tmp) / "archive", Path(tmp) / "store.zarr"
        paths = write_archive(root, args.videos)
        first_s, first = extract(root, store)
        runs = [extract(root, store) for _ in range(2)]
        for path in paths[::10]:  # touched: same bytes, new mtime
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        changed = paths[5::100]
        write_archive_changed = {p: p.read_bytes() for p in changed}
        for path, data in write_archive_changed.items():  # changed: different content
            path.write_bytes(data[:-64] + bytes(64))
        mixed_s, mixed = extract(root, store)
    print(f"{args.videos} videos (6 frames each), feature regions, {os.cpu_count()} cores")
    print(f"first extract:        {first_s:7.2f} s wall, {first['extracted']} extracted")
    for i, (wall, report) in enumerate(runs, 1):
        print(
            f"rerun {i} (nothing new): {wall:7.2f} s wall, {report['seconds'] * 1000:6.0f} ms planning, "
            f"{report['up_to_date']} up to date"
        )
    print(
        f"rerun after touching {len(paths[::10])} and changing {len(changed)} files: {mixed_s:.2f} s wall, "
        f"{mixed['extracted']} re-extracted, {mixed['up_to_date']} up to date, {mixed['failed']} failed"
    )


if __name__ == "__main__":
    main()
