"""Temporary files of a killed run (atomic file writes, Zarr's `*.partial`) are removed by the next
run once they are older than any live writer could be; a live writer's are left alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vadctl.common.atomic import STALE_SECONDS, write_atomic
from vadctl.store.sidecar import STALE_PARTIAL_SECONDS, remove_stale_partials


def _aged(path: Path, seconds: float) -> Path:
    path.write_bytes(b"half written")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_next_atomic_write_removes_a_killed_runs_temporaries(tmp_path: Path):
    target = tmp_path / "scores.parquet"
    stale = _aged(tmp_path / ".scores.parquet.k1ll3d.tmp", STALE_SECONDS + 60)
    live = _aged(tmp_path / ".scores.parquet.l1v3.tmp", 5)  # another writer, still at work
    other = _aged(tmp_path / ".other.parquet.x.tmp", STALE_SECONDS + 60)  # not this target's
    write_atomic(target, lambda tmp: Path(tmp).write_text("done"))
    assert target.read_text() == "done"
    assert not stale.exists() and live.exists() and other.exists()


def test_stale_zarr_partials_are_removed(tmp_path: Path):
    stale = _aged(tmp_path / "c.0.0.partial", STALE_PARTIAL_SECONDS + 60)
    live = _aged(tmp_path / "c.1.0.partial", 5)
    assert remove_stale_partials(tmp_path) == 1
    assert not stale.exists() and live.exists()
