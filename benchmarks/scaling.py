"""Extract scale-out on UCSD Ped2 (train + test, 4,560 frames, weight-free default features).

One run measures, each configuration in its own process and a fresh store, one after the other:
  workers N   `vadctl extract --workers N` (N from --workers-list; 1 runs in-process, serial)
  ray         `vadctl extract --executor ray` on a local Ray cluster of --ray-cpus CPUs
For each: frames/s over the wall time of the two extracts (train, then test), CPU seconds (user +
sys of the process, its reaped children and its live descendants: pool workers, Ray's raylet and
workers) and cores busy = CPU seconds / wall seconds. Ray's start-up (`ray.init`) is timed apart
and left out of its throughput. The load average before and after each configuration is printed:
on a shared machine other jobs take cores, so figures are only comparable within one run.
Also measured (for docs/scale.md): what the driver and the catalog cost per video when there is
nothing to do (a rerun over the extracted store: discovery, fingerprints, planning), and the
store's bytes per frame. Usage:
  python benchmarks/scaling.py [--data ../shared/data/ped2] [--workers-list 1,2,4,8,16] [--no-ray]
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
FEATURES = "frames,flow,regions,velocity"
TICKS = os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def descendants_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + sys) of every live descendant of `root`, by pid (Linux /proc)."""
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = cpu[pid]
                frontier.append(pid)
    return found


class CpuMeter:
    """CPU seconds of this process and everything under it between `start` and `stop`.

    Local pools: this process, its reaped children (RUSAGE_CHILDREN: pool workers are reaped when
    the pool shuts down) and whatever is still alive under it. Ray (`poll=True`): Ray's workers
    are not ours to reap (their parent is the raylet, which may stop idle ones), so every process
    under this one is polled each `interval` seconds and the last CPU time seen of each counts: a
    process that exits loses at most one interval of its time.
    """

    def __init__(self, poll: bool, interval: float = 0.5):
        self.poll = poll
        self.interval = interval

    def _own(self) -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        total = me.ru_utime + me.ru_stime
        if not self.poll:
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            total += children.ru_utime + children.ru_stime
        return total

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            self.seen.update(descendants_cpu(os.getpid()))

    def start(self) -> None:
        import threading

        self.own = self._own()
        self.baseline = descendants_cpu(os.getpid())
        self.seen = dict(self.baseline)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        if self.poll:
            self._thread.start()

    def stop(self) -> float:
        self._done.set()
        if self.poll:
            self._thread.join()
            self.seen.update(descendants_cpu(os.getpid()))
            grown = sum(cpu - self.baseline.get(pid, 0.0) for pid, cpu in self.seen.items())
        else:
            live = descendants_cpu(os.getpid())
            grown = sum(cpu - self.baseline.get(pid, 0.0) for pid, cpu in live.items())
        return self._own() - self.own + grown


def run_config(data: Path, config: str, features: str, ray_cpus: int) -> dict:
    from vadctl import api

    options: dict = {}
    startup = None
    if config == "ray":
        import ray

        began = time.perf_counter()
        ray.init(num_cpus=ray_cpus, logging_level="ERROR", log_to_driver=False)
        startup = time.perf_counter() - began
        options = {"executor": "ray"}
    else:
        options = {"workers": int(config.split(":")[1])}
    with tempfile.TemporaryDirectory(prefix="vadctl-scaling-") as tmp:
        store = Path(tmp) / "ped2.zarr"
        meter = CpuMeter(poll=config == "ray")
        load_before = load_average()
        meter.start()
        began = time.perf_counter()
        frames = 0
        for split in ("train", "test"):
            report = api.extract([data / split], store, split, features, **options)
            assert not report.failed, [r.error for r in report.failed]
            frames += report.frames
        wall = time.perf_counter() - began
        cpu = meter.stop()
        result = {"config": config, "frames": frames, "seconds": wall, "cpu_seconds": cpu}
        result |= {"load_before": load_before, "load_after": load_average(), "ray_startup_s": startup}
        if config == "workers:1":  # the driver's share: a rerun finds nothing to do
            videos = 0
            began = time.perf_counter()
            for split in ("train", "test"):
                videos += len(api.extract([data / split], store, split, features).results)
            result["rerun_seconds_per_video"] = (time.perf_counter() - began) / videos
            stored = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
            result["store_bytes_per_frame"] = stored / frames
    if config == "ray":
        import ray

        ray.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--features", default=FEATURES)
    parser.add_argument("--workers-list", default="1,2", help="comma-separated worker counts (e.g. 1,2,4,8,16)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray configuration")
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray cluster")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "scaling.json")
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config:  # one configuration, in its own process
        print(json.dumps(run_config(args.data, args.config, args.features, args.ray_cpus)))
        return
    if not (args.data / "train").is_dir():
        sys.exit(f"no Ped2 at {args.data} (expected train/ and test/ of .mp4 files)")
    counts = [int(n) for n in args.workers_list.split(",") if n.strip()]
    configs = [f"workers:{n}" for n in counts] + ([] if args.no_ray else ["ray"])
    results = []
    for config in configs:
        command = [sys.executable, __file__, "--config", config, "--data", str(args.data)]
        command += ["--features", args.features, "--ray-cpus", str(args.ray_cpus)]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode != 0:
            sys.exit(f"{config} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  done {config}", file=sys.stderr, flush=True)
    machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    base = next((r for r in results if r["config"] == "workers:1"), results[0])
    by_config = {r["config"]: r for r in results}
    print(f"Ped2 train+test, {base['frames']} frames, features {args.features} ({machine})")
    print(
        f"{'config':<11} {'frames/s':>9} {'wall s':>7} {'CPU s':>7} {'cores busy':>10} {'× workers 1':>11} {'load':>11}"
    )
    for r in results:
        fps = r["frames"] / r["seconds"]
        r["frames_per_second"] = fps
        r["cores_busy"] = r["cpu_seconds"] / r["seconds"]
        r["vs_workers_1"] = fps / (base["frames"] / base["seconds"])
        load = f"{r['load_before']:.1f}→{r['load_after']:.1f}"
        print(
            f"{r['config']:<11} {fps:9.1f} {r['seconds']:7.1f} {r['cpu_seconds']:7.1f} "
            f"{r['cores_busy']:10.2f} {r['vs_workers_1']:11.2f} {load:>11}"
        )
    if "ray" in by_config and "workers:2" in by_config:
        ray_ratio = by_config["ray"]["frames_per_second"] / by_config["workers:2"]["frames_per_second"]
        print(
            f"ray / workers 2: {ray_ratio:.2f}  (Ray start-up, not counted: {by_config['ray']['ray_startup_s']:.1f} s)"
        )
    if "rerun_seconds_per_video" in base:
        print(f"driver + catalog per video (rerun, nothing to do): {1000 * base['rerun_seconds_per_video']:.1f} ms")
        print(f"store: {base['store_bytes_per_frame'] / 1024:.1f} KiB per frame")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "features": args.features, "results": results}, indent=1))
    print(f"full results: {args.out}")


if __name__ == "__main__":
    main()
