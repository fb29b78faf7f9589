"""Extract throughput on UCSD Ped2 (train + test, 4,560 frames) against the decode limit.

Each stage runs in its own process (for an honest peak RSS), one after the other in one run:
  decode   decord, sequential windows, the same reader extract uses
  compute  decode + every featurizer, nothing written (the compute limit)
  extract  the full `vadctl extract` path into a fresh store (train, then test)
  rerun    both extracts again: nothing new, so planning only
Ratios are taken within this run. Usage:
  python benchmarks/extract.py [--data ../shared/data/ped2] [--features frames,flow,regions,velocity]
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

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_decode(data: Path, features: list[str], store: Path) -> dict:
    from vadctl.video import catalog
    from vadctl.video.reader import VideoReader, prefetch

    frames = 0
    started = time.perf_counter()
    for split in ("train", "test"):
        for source in catalog.discover([data / split]):
            with VideoReader(source) as reader:
                for window in prefetch(reader.windows(32)):
                    frames += len(window)
    return {"frames": frames, "seconds": time.perf_counter() - started}


def stage_compute(data: Path, features: list[str], store: Path) -> dict:
    from vadctl.common.specs import ClipSpec
    from vadctl.features import build
    from vadctl.video import catalog
    from vadctl.video.reader import VideoReader, prefetch

    featurizers = build(features)
    frames = 0
    per_featurizer = dict.fromkeys((f.name for f in featurizers), 0.0)
    started = time.perf_counter()
    for split in ("train", "test"):
        for source in catalog.discover([data / split]):
            with VideoReader(source) as reader:
                for f in featurizers:
                    f.begin(reader.info, ClipSpec())
                for window in prefetch(reader.windows(32)):
                    outputs = {}
                    for f in featurizers:
                        tick = time.perf_counter()
                        outputs[f.name] = f.process(window, {d: outputs[d] for d in f.requires})
                        per_featurizer[f.name] += time.perf_counter() - tick
                    frames += len(window)
                for f in featurizers:
                    f.finish()
    return {"frames": frames, "seconds": time.perf_counter() - started, "per_featurizer_s": per_featurizer}


def stage_extract(data: Path, features: list[str], store: Path) -> dict:
    from vadctl import api

    feature_store = api.open_store(store, create=True)
    frames, extracted = 0, 0
    started = time.perf_counter()
    for split in ("train", "test"):
        report = api.extract([data / split], feature_store, split, features)
        frames += report.frames
        extracted += report.count("extracted")
        if report.failed:
            raise SystemExit(f"extract failed: {[r.error for r in report.failed]}")
    sizes = {}
    for split in ("train", "test"):
        for record in feature_store.videos(split):
            for key, summary in record.features.items():
                name = summary["name"]
                sizes[name] = sizes.get(name, 0) + feature_store.disk_bytes(split, record.video_id, key)
    return {
        "frames": frames,
        "videos": extracted,
        "seconds": time.perf_counter() - started,
        "store_bytes": feature_store.disk_bytes(),
        "feature_bytes": sizes,
    }


def stage_rerun(data: Path, features: list[str], store: Path) -> dict:
    """The CLI itself, as cron would run it (process start-up included)."""
    started = time.perf_counter()
    plans = []
    for split in ("train", "test"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "vadctl",
                "extract",
                str(data / split),
                "--store",
                str(store),
                "--split",
                split,
                "--features",
                ",".join(features),
                "--json",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        report = json.loads(done.stdout)
        assert report["extracted"] == 0, report
        plans.append(report["seconds"])
    return {"seconds": time.perf_counter() - started, "planning_seconds": sum(plans)}


STAGES = {"decode": stage_decode, "compute": stage_compute, "extract": stage_extract, "rerun": stage_rerun}


def run_stage(name: str, data: Path, features: list[str], store: Path) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--stage",
            name,
            "--data",
            str(data),
            "--features",
            ",".join(features),
            "--store",
            str(store),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--features", default="frames,flow,regions,velocity")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "extract.json")
    args = parser.parse_args()
    features = [f for f in args.features.split(",") if f]
    if args.stage:
        result = STAGES[args.stage](args.data, features, args.store)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    if not (args.data / "train").is_dir():
        raise SystemExit(f"{args.data}: no Ped2 here (expected train/ and test/ folders of videos)")
    with tempfile.TemporaryDirectory(prefix="vadctl-bench-") as tmp:
        store = Path(tmp) / "bench.zarr"
        results = {name: run_stage(name, args.data, features, store) for name in STAGES}
    compute, extract, rerun = (results[k] for k in ("compute", "extract", "rerun"))
    fps = {k: results[k]["frames"] / results[k]["seconds"] for k in ("decode", "compute", "extract")}
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "features": features,
        "frames": extract["frames"],
        "fps": fps,
        "extract_over_decode": fps["extract"] / fps["decode"],
        "extract_over_compute": fps["extract"] / fps["compute"],
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"Ped2 train+test, {extract['frames']} frames, features {','.join(features)} ({summary['machine']})")
    print(f"{'stage':<9} {'frames/s':>9} {'seconds':>8} {'peak RSS':>9}")
    for name in ("decode", "compute", "extract"):
        r = results[name]
        print(f"{name:<9} {fps[name]:9.1f} {r['seconds']:8.1f} {r['peak_rss_mb']:7.0f} MB")
    print(f"ratio extract/decode  {summary['extract_over_decode']:.3f}")
    print(f"ratio extract/compute {summary['extract_over_compute']:.3f}  (the rest is store writes and bookkeeping)")
    shares = compute["per_featurizer_s"]
    total = sum(shares.values())
    print("featurizer share of compute: " + ", ".join(f"{k} {v / total:.0%}" for k, v in shares.items()))
    print(
        f"rerun with nothing new: {rerun['seconds']:.2f} s for 2 CLI runs ({rerun['planning_seconds'] * 1000:.0f} ms "
        "of planning; the rest is process start-up)"
    )
    print(
        f"store on disk: {extract['store_bytes'] / 2**20:.1f} MB ("
        + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in extract["feature_bytes"].items())
        + ")"
    )
    print(f"full results: {args.out}")


if __name__ == "__main__":
    main()
