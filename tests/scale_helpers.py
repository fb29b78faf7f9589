"""Archives and store comparisons shared by the scale-out tests (local pool, segments, Ray)."""

from __future__ import annotations

import os
from pathlib import Path

from snapshots import assert_same, snapshot
from videos import Square, make_video

from vadctl.store import FeatureStore


def archive(root: Path, n: int = 4, frames: int = 90, long_frames: int = 0) -> Path:
    """`n` small lossless videos (v0, v1, …), plus one `long` video when `long_frames`."""
    for i in range(n):
        squares = [Square(5 + 7 * i, 30, 3.0, 0.5, size=20), Square(140, 80, -2.5, -0.5, size=18)]
        make_video(root / f"v{i}.avi", frames, seed=i, height=120, width=160, squares=squares)
    if long_frames:
        squares = [Square(2, 20, 1.5, 0.3, size=18), Square(150, 90, -1.0, -0.2, size=16)]
        make_video(root / "long.avi", long_frames, seed=99, height=120, width=160, squares=squares)
    return root


def chunk_files(store: Path, split: str = "train") -> dict[tuple[str, str, str], bytes]:
    """Every chunk file and array metadata file of every committed entry, by (video, entry, path)."""
    fs = FeatureStore(store, read_only=True)
    files = {}
    for record in fs.videos(split):
        folder = fs.video_dir(split, record.video_id)
        for key in record.features:
            group = folder / record.group_of(key)
            for path in sorted(group.rglob("*")):
                if path.is_file() and (
                    path.name.startswith("c.") or (path.name == "zarr.json" and path.parent != group)
                ):
                    files[(record.video_id, key, str(path.relative_to(group)))] = path.read_bytes()
    return files


def assert_identical(store: Path, reference: Path, split: str = "train") -> None:
    """Feature for feature, array for array, and byte for byte in every chunk file."""
    assert_same(snapshot(store, split), snapshot(reference, split))
    got, expected = chunk_files(store, split), chunk_files(reference, split)
    assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))[:5]
    assert [k for k in got if got[k] != expected[k]] == []


def worker_pids(parent: int | None = None) -> list[int]:
    """The spawned pool workers of a process (default: this one), not multiprocessing's resource tracker."""
    pids = []
    tasks = Path(f"/proc/{parent or os.getpid()}/task")
    for task in tasks.iterdir() if tasks.exists() else []:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                pids.append(int(pid))
    return pids
