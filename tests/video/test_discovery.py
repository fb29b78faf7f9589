"""Only regular files are opened: FIFOs, devices and broken links under a root are listed as skipped
(with their reason), symlinked folders are followed once, and link loops end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from videos import make_video

from vadctl.store import FeatureStore
from vadctl.video.catalog import scan

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks")


def _tricky_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    make_video(root / "real.avi", 8)
    os.mkfifo(root / "pipe.mp4")  # opening it for reading blocks until a writer comes: never
    os.symlink("/dev/zero", root / "zero.mp4")  # endless bytes: reading it whole ends in MemoryError
    os.symlink(tmp_path / "gone.avi", root / "broken.avi")
    make_video(tmp_path / "elsewhere" / "linked.avi", 8, seed=1)
    os.symlink(tmp_path / "elsewhere" / "linked.avi", root / "file_link.avi")  # a link to a regular file: read
    make_video(tmp_path / "disk2" / "cam" / "v.avi", 8, seed=2)
    os.symlink(tmp_path / "disk2", root / "disk2")  # a symlinked folder outside the root: only with follow_links
    os.symlink(root, root / "disk2_loop")  # a loop back to the root: skipped, not walked forever
    return root


def test_scan_lists_what_it_will_not_open(tmp_path: Path):
    root = _tricky_root(tmp_path)
    found = scan([root])
    assert [s.video_id for s in found.sources] == ["file_link", "real"]
    reasons = {p.path.name: p.reason for p in found.skipped}
    assert f"leads outside {root} (to {tmp_path / 'disk2'})" in reasons["disk2"]
    found = scan([root], follow_links=True)
    assert [s.video_id for s in found.sources] == ["disk2/cam/v", "file_link", "real"]
    reasons = {p.path.name: p.reason for p in found.skipped}
    assert "named pipe" in reasons["pipe.mp4"]
    assert "character device" in reasons["zero.mp4"]
    assert "broken symlink" in reasons["broken.avi"]
    assert "already searched" in reasons["disk2_loop"]


def test_a_dry_run_finds_what_the_run_would_with_follow_links(tmp_path: Path):
    from vadctl import api

    root = _tricky_root(tmp_path)
    planned = api.plan_extract([root], tmp_path / "s.zarr", features=["regions"], follow_links=True)
    assert sorted(p.video_id for p in planned) == ["disk2/cam/v", "file_link", "real"]
    planned = api.plan_extract([root], tmp_path / "s.zarr", features=["regions"])
    assert sorted(p.video_id for p in planned) == ["file_link", "real"]


def test_extract_skips_fifos_and_devices_and_keeps_the_batch(tmp_path: Path):
    root = _tricky_root(tmp_path)
    store = tmp_path / "s.zarr"
    command = [sys.executable, "-m", "vadctl", "extract", str(root), "--store", str(store), "--features", "regions"]
    done = subprocess.run([*command, "-q", "--follow-links"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    for name, reason in (("pipe.mp4", "named pipe"), ("zero.mp4", "character device"), ("broken.avi", "broken")):
        line = next(line for line in done.stderr.splitlines() if name in line)
        assert line.startswith("skipped") and reason in line
    records = FeatureStore(store, read_only=True).videos("train")
    assert [(r.video_id, r.status) for r in records] == [("disk2/cam/v", "ok"), ("file_link", "ok"), ("real", "ok")]


def test_a_root_that_is_a_fifo_or_device_is_a_one_line_error(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.mp4")
    for root in (tmp_path / "pipe.mp4", Path("/dev/zero")):
        command = [sys.executable, "-m", "vadctl", "extract", str(root), "--store", str(tmp_path / "s.zarr")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "not a regular file" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.zarr").exists()


def test_a_link_to_the_whole_machine_is_not_followed_unless_asked(tmp_path: Path):
    """A symlink to `/` inside a camera folder planned videos from across the machine."""
    from vadctl import api

    root = tmp_path / "cam"
    make_video(root / "real.avi", 8)
    make_video(root / "sub" / "inner.avi", 8, seed=1)
    os.symlink(root / "sub", root / "again")  # inside the root: a second way in, searched once
    os.symlink("/", root / "everything")
    planned = api.plan_extract([root], tmp_path / "s.zarr", features=["regions"])
    assert sorted(p.video_id for p in planned) == ["again/inner", "real"]  # the first way in, by name
    found = scan([root])
    reasons = {p.path.name: p.reason for p in found.skipped}
    assert "leads outside" in reasons["everything"] and "already searched" in reasons["sub"]
