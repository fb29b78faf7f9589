"""Decode rate of the two decoders (`--decoder decord` and `--decoder pyav`) on UCSD Ped2, side by side.

Each decoder reads every video of train and test (4,560 frames, 360x240 H.264) through the reader
extract uses (`VideoReader.windows`, 32 frames at a time, prefetched on a second thread, nothing
computed), each pass in a fresh process, the decoders alternating pass by pass so that the
machine's load falls on both alike. Also checks that the two decode the same pixels. Usage:
  python benchmarks/decoders.py [--data ../shared/data/ped2] [--passes 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
DECODERS = ("decord", "pyav")


def child(data: Path, decoder: str, threads: int) -> None:
    """One pass over Ped2 with one decoder in this (fresh) process; prints its figures as JSON,
    with a digest of the frames (the pixels, compared between decoders)."""
    import hashlib

    from vadctl.common.specs import DecodeSpec
    from vadctl.video import catalog
    from vadctl.video.reader import VideoReader, prefetch

    digest = hashlib.sha256()
    frames = 0
    started = time.perf_counter()
    for split in ("train", "test"):
        for source in catalog.discover([data / split]):
            with VideoReader(source, DecodeSpec(decoder=decoder), num_threads=threads) as reader:
                for window in prefetch(reader.windows(32)):
                    frames += len(window)
                    digest.update(window.frames[:, ::7, ::7].tobytes())  # a sample of every frame's pixels
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": frames, "seconds": seconds, "peak_rss_mb": peak, "digest": digest.hexdigest()}))


def measure(data: Path, decoder: str, threads: int) -> dict:
    command = [sys.executable, __file__, "--data", str(data), "--threads", str(threads), "--child", decoder]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{decoder} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Ped2 folder holding train/ and test/")
    parser.add_argument("--passes", type=int, default=2, help="passes per decoder (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="decoding threads (extract uses 1)")
    parser.add_argument("--child", choices=DECODERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.child, args.threads)
        return
    import av
    import decord

    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load:.1f}")
    print(f"decord {decord.__version__}, PyAV {av.__version__}; {args.threads} decoding thread(s); {args.data}\n")
    runs: dict[str, list[dict]] = {d: [] for d in DECODERS}
    for _ in range(args.passes):
        for decoder in DECODERS:
            runs[decoder].append(measure(args.data, decoder, args.threads))
    print("| decoder | frames | seconds (median) | frames/s (median) | frames/s (each pass) | peak RSS |")
    print("|---|---|---|---|---|---|")
    for decoder, results in runs.items():
        rates = [r["frames"] / r["seconds"] for r in results]
        seconds = statistics.median(r["seconds"] for r in results)
        print(
            f"| {decoder} | {results[0]['frames']:,} | {seconds:.1f} | {statistics.median(rates):.0f} | "
            f"{', '.join(f'{r:.0f}' for r in rates)} | {max(r['peak_rss_mb'] for r in results):.0f} MB |"
        )
    ratio = statistics.median(r["seconds"] for r in runs["decord"]) / statistics.median(
        r["seconds"] for r in runs["pyav"]
    )
    same = len({r["digest"] for results in runs.values() for r in results}) == 1
    print(f"\npyav / decord decode rate: {ratio:.2f}x; same pixels: {'yes' if same else 'NO'}")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
