"""Sharded chunks (issue 26 item 3): files per video and per 1,000 frames, and the store's write and
read rates, before (one file per chunk: `$VADCTL_SHARD_BYTES=0`, the layout of earlier releases)
and after (inner chunks of ≤ 2 MiB in shards of ≤ 64 MiB).

1. Files: `vadctl extract` of Ped2 (train and test, read in place, the default features) into a
   fresh store of each layout, each in a fresh process: files per video and per 1,000 frames,
   metadata (`zarr.json`) and data (chunk or shard files) counted apart.
2. A long video, projected: one Ped2 video's entries repeated to `--long-frames` frames, written
   through the store's writer in 32-frame windows as extract writes them: files per 1,000 frames.
3. Rates, both layouts side by side in this process, the order alternating, `--repeats` times,
   medians: writing (the entry writer plus the commit, which hashes every file for the manifest)
   and reading (whole arrays through the store's reader; and 32-row slices of the long video's
   dense arrays), in MB/s of uncompressed feature data, for the Ped2 entries as they are and for
   the long video. Reads come from the page cache (the files were just written).
Usage:
  python benchmarks/shards.py                      # everything (Ped2 extract twice: a few minutes)
  python benchmarks/shards.py --work /tmp/shards   # reuses the stores of an earlier run there
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vadctl.common.specs import ArraySpec, FeatureSpec
from vadctl.store import FeatureStore, VideoRecord, zarrio
from vadctl.store.records import Fingerprint
from vadctl.store.writer import array_shard_rows

LAYOUTS = {"before": "0", "after": ""}  # $VADCTL_SHARD_BYTES: 0 = one file per chunk; unset = default shards
WINDOW = 32


def use_layout(layout: str) -> None:
    value = LAYOUTS[layout]
    if value:
        os.environ[zarrio.SHARD_BYTES_ENV] = value
    else:
        os.environ.pop(zarrio.SHARD_BYTES_ENV, None)


# ----- 1. files of an extracted store ---------------------------------------------------------
def extract(data: Path, store: Path, layout: str) -> float:
    env = {**os.environ, zarrio.SHARD_BYTES_ENV: LAYOUTS[layout] or str(zarrio.SHARD_BYTES)}
    started = time.perf_counter()
    for split in ("train", "test"):
        command = [sys.executable, "-m", "vadctl", "extract", str(data / split), "--store", str(store)]
        subprocess.run([*command, "--split", split], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def count_files(store: Path) -> dict:
    """Files below each video's folder (metadata and data apart) and frames, over the store."""
    fs = FeatureStore(store, read_only=True)
    meta = data = frames = videos = 0
    for split in fs.splits():
        for record in fs.videos(split):
            videos += 1
            frames += record.n_frames
            for path in fs.video_dir(split, record.video_id).rglob("*"):
                if path.is_file():
                    meta += path.name == "zarr.json"
                    data += path.name != "zarr.json"
    return {"videos": videos, "frames": frames, "meta": meta, "data": data}


# ----- entries in memory, written and read through the store ----------------------------------
def load_entries(store: Path, split: str, video_id: str) -> list[dict]:
    """Every entry of a video: spec, array specs, data, offsets, extra arrays (the clip table)."""
    fs = FeatureStore(store, read_only=True)
    record = fs.video(split, video_id)
    entries = []
    for summary in record.features.values():
        spec = FeatureSpec.from_dict(summary)
        entry = fs.entry(record, spec)
        offsets = entry.offsets
        arrays, values = {}, {}
        for name in entry.array_names:
            if name == "clips":
                continue
            array = entry.array(name)
            ragged = array.metadata.dimension_names[0] == "row"
            dims = tuple(array.metadata.dimension_names[1:])
            arrays[name] = ArraySpec(tuple(array.shape[1:]), str(array.dtype), ragged, dims, dict(array.attrs))
            values[name] = entry[name]
        extra = {"clips": entry.clips()} if "clips" in entry.array_names else {}
        n_index = int(summary["index"])
        entries.append(
            {"spec": spec, "arrays": arrays, "values": values, "offsets": offsets, "extra": extra, "n": n_index}
        )
    return entries


def source_rows(entry: dict, lo: int, hi: int) -> tuple[dict, dict, np.ndarray | None]:
    """Rows of index [lo, hi) of an entry repeated end to end (dense, ragged, counts)."""
    n = entry["n"]
    pieces = []
    while lo < hi:
        start = lo % n
        take = min(hi - lo, n - start)
        pieces.append((start, start + take))
        lo += take
    dense, ragged, counts = {}, {}, None
    offsets = entry["offsets"]
    for name, aspec in entry["arrays"].items():
        values = entry["values"][name]
        if aspec.ragged:
            ragged[name] = np.concatenate([values[offsets[a] : offsets[b]] for a, b in pieces])
        else:
            dense[name] = np.concatenate([values[a:b] for a, b in pieces])
    if offsets is not None:
        counts = np.concatenate([np.diff(offsets)[a:b] for a, b in pieces])
    return dense, ragged, counts


def write_video(fs: FeatureStore, video_id: str, entries: list[dict], n_frames: int, scale: float = 1.0) -> int:
    """Write a video's entries in windows (indices scaled by `scale`: a longer video); returns the
    uncompressed bytes written."""
    fingerprint = Fingerprint(1, 1, video_id)
    record = VideoRecord("train", video_id, f"/bench/{video_id}.mp4", fingerprint, n_frames=n_frames, fps=25.0)
    clips = np.array([[0, n_frames]])
    fs.add_video(record, clips)
    written = 0
    for entry in entries:
        n = int(np.ceil(entry["n"] * scale))
        writer = fs.entry_writer(record, entry["spec"], entry["arrays"], n)
        step = WINDOW if entry["spec"].axis != "clip" else WINDOW // 8
        for lo in range(0, n, step):
            dense, ragged, counts = source_rows(entry, lo, min(lo + step, n))
            writer.write(dense=dense, ragged=ragged, counts=counts)
            written += sum(v.nbytes for v in dense.values()) + sum(v.nbytes for v in ragged.values())
        extra = {"clips": np.resize(entry["extra"]["clips"], (n, 2))} if entry["extra"] else None
        fs.commit_entry(record, writer, writer.finish(extra))
    return written


def read_video(fs: FeatureStore, video_id: str) -> int:
    """Read every array of every entry of a video whole; returns the bytes read."""
    record = fs.video("train", video_id)
    total = 0
    for summary in record.features.values():
        entry = fs.entry(record, FeatureSpec.from_dict(summary))
        for name in entry.array_names:
            total += entry[name].nbytes
    return total


def read_slices(fs: FeatureStore, video_id: str, rng: np.random.Generator, n_reads: int = 200) -> int:
    """Random 32-row slices of every dense frame-level array of a video; returns the bytes read."""
    record = fs.video("train", video_id)
    total = 0
    for summary in record.features.values():
        entry = fs.entry(record, FeatureSpec.from_dict(summary))
        if entry.offsets is not None or summary.get("axis") == "clip":
            continue
        for name in entry.array_names:
            n = entry.array(name).shape[0]
            for start in rng.integers(0, max(n - WINDOW, 1), n_reads):
                total += entry.read(name, int(start), int(start) + WINDOW).nbytes
    return total


def projected_data_files(entries: list[dict], source_frames: int, frames: int) -> int:
    """Data files of a video of `frames` frames whose entries hold rows at the rate of `entries`
    (a video of `source_frames`), by the store's own sizing, in the current layout: each array is
    ceil(rows / rows per shard) files; offsets, clip tables and the video's clip table included."""
    files = 1  # the video's clip table
    for entry in entries:
        n_index = int(np.ceil(entry["n"] * frames / source_frames))
        for name, aspec in entry["arrays"].items():
            rows = int(np.ceil(len(entry["values"][name]) * frames / source_frames)) if aspec.ragged else n_index
            files += max(1, -(-rows // array_shard_rows(aspec, n_index)))
        extras = [n_index + 1] if entry["offsets"] is not None else []
        extras += [n_index] if entry["extra"] else []
        files += sum(max(1, -(-n // array_shard_rows(ArraySpec((), "int64"), n))) for n in extras)
    return files


def file_count(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    meta = sum(p.name == "zarr.json" for p in files)
    return meta, len(files) - meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/ped2"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/vadctl-shards"))
    parser.add_argument("--long-frames", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    print("## 1. Files of Ped2 extracted with the default features")
    stores = {layout: args.work / f"ped2-{layout}.zarr" for layout in LAYOUTS}
    for layout, store in stores.items():
        if not (store / "zarr.json").exists():
            seconds = extract(args.data, store, layout)
            print(f"extracted {layout} in {seconds:.0f} s")
    counts = {layout: count_files(store) for layout, store in stores.items()}
    print("| layout | videos | frames | metadata files | data files | files per video | files per 1,000 frames |")
    print("|---|---|---|---|---|---|---|")
    for layout, c in counts.items():
        total = c["meta"] + c["data"]
        print(
            f"| {layout} | {c['videos']} | {c['frames']:,} | {c['meta']:,} | {c['data']:,} | "
            f"{total / c['videos']:.1f} (data {c['data'] / c['videos']:.1f}) | "
            f"{1000 * total / c['frames']:.0f} (data {1000 * c['data'] / c['frames']:.0f}) |"
        )
    b, a = counts["before"], counts["after"]
    print(
        f"fewer files: {(b['meta'] + b['data']) / (a['meta'] + a['data']):.2f}x in all, "
        f"{b['data'] / a['data']:.2f}x data files"
    )

    # the entries of the longest Ped2 video, in memory: the source of the rates and the long video
    fs = FeatureStore(stores["after"], read_only=True)
    records = {(split, r.video_id): r for split in fs.splits() for r in fs.videos(split)}
    ped2 = sorted(records)
    longest = max(records.values(), key=lambda r: r.n_frames)
    source = load_entries(stores["after"], longest.split, longest.video_id)
    per_video = {key: load_entries(stores["after"], *key) for key in ped2}
    frames = {key: records[key].n_frames for key in ped2}

    print(f"\n## 2 and 3. Rates ({args.repeats} repeats, order alternating), long video {args.long_frames:,} frames")
    times: dict[tuple[str, str], list[float]] = {}
    volume: dict[str, int] = {}
    files_long: dict[str, tuple[int, int]] = {}
    rng = np.random.default_rng(0)
    for repeat in range(args.repeats):
        order = list(LAYOUTS) if repeat % 2 == 0 else list(reversed(LAYOUTS))
        for layout in order:
            use_layout(layout)
            path = args.work / f"bench-{layout}.zarr"
            shutil.rmtree(path, ignore_errors=True)
            store = FeatureStore(path, create=True)
            started = time.perf_counter()
            volume["ped2"] = sum(write_video(store, f"{s}-{v}", per_video[(s, v)], frames[(s, v)]) for s, v in ped2)
            times.setdefault(("write ped2", layout), []).append(time.perf_counter() - started)
            started = time.perf_counter()
            scale = args.long_frames / longest.n_frames
            volume["long"] = write_video(store, "long", source, args.long_frames, scale)
            times.setdefault(("write long", layout), []).append(time.perf_counter() - started)
            files_long[layout] = file_count(store.video_dir("train", "long"))
            reader = FeatureStore(path, read_only=True)
            started = time.perf_counter()
            volume["read ped2"] = sum(read_video(reader, f"{s}-{v}") for s, v in ped2)
            times.setdefault(("read ped2", layout), []).append(time.perf_counter() - started)
            started = time.perf_counter()
            volume["read long"] = read_video(reader, "long")
            times.setdefault(("read long", layout), []).append(time.perf_counter() - started)
            started = time.perf_counter()
            volume["slices long"] = read_slices(reader, "long", rng)
            times.setdefault(("32-row slices long", layout), []).append(time.perf_counter() - started)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k[0]} {k[1]} {v[-1]:.2f} s" for k, v in times.items()))
    use_layout("after")

    print("\n| long video | metadata files | data files | data files per 1,000 frames |")
    print("|---|---|---|---|")
    for layout, (meta, data) in files_long.items():
        print(f"| {layout} | {meta} | {data} | {1000 * data / args.long_frames:.1f} |")
    (mb, db), (ma, da) = files_long["before"], files_long["after"]
    print(f"fewer files (long video): {(mb + db) / (ma + da):.1f}x in all, {db / da:.1f}x data files")

    hour = 108_000  # one hour at 30 fps
    print(f"\n| projection: one {hour:,}-frame video (1 h at 30 fps) | data files | + metadata | per 1,000 frames |")
    print("|---|---|---|---|")
    projected = {}
    for layout in LAYOUTS:
        use_layout(layout)
        projected[layout] = projected_data_files(source, longest.n_frames, hour)
        total = projected[layout] + files_long[layout][0]
        print(f"| {layout} | {projected[layout]:,} | {total:,} | {1000 * total / hour:.1f} |")
    use_layout("after")
    meta = files_long["after"][0]
    print(
        f"fewer files (an hour, projected): {(projected['before'] + meta) / (projected['after'] + meta):.1f}x in all, "
        f"{projected['before'] / projected['after']:.1f}x data files"
    )
    for layout in LAYOUTS:  # the projection's check: the long video written above, counted the same way
        use_layout(layout)
        assert projected_data_files(source, longest.n_frames, args.long_frames) == files_long[layout][1], layout
    use_layout("after")

    sizes = {
        "write ped2": volume["ped2"],
        "write long": volume["long"],
        "read ped2": volume["read ped2"],
        "read long": volume["read long"],
        "32-row slices long": volume["slices long"],
    }
    print("\n| what | MB | before s (median) | after s (median) | before MB/s | after MB/s | after / before |")
    print("|---|---|---|---|---|---|---|")
    for what, size in sizes.items():
        before = statistics.median(times[(what, "before")])
        after = statistics.median(times[(what, "after")])
        print(
            f"| {what} | {size / 1e6:,.0f} | {before:.2f} | {after:.2f} | {size / 1e6 / before:,.0f} | "
            f"{size / 1e6 / after:,.0f} | {before / after:.2f} |"
        )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
