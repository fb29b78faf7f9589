import os
from pathlib import Path

import pytest
from videos import make_video, render, write_frame_folder

from vadctl.catalog import discover
from vadctl.errors import UsageError


def test_ids_are_relative_paths_without_suffix(video_dir: Path):
    sources = discover([video_dir])
    assert [s.video_id for s in sources] == ["a", "b", "cam/c"]
    assert all(not s.is_frame_folder for s in sources)


def test_root_may_be_a_file_and_ids_follow_the_root(video_dir: Path):
    (only,) = discover([video_dir / "cam" / "c.avi"])
    assert only.video_id == "c"
    assert [s.video_id for s in discover([video_dir / "cam"])] == ["c"]


def test_frame_folders_hidden_files_and_other_suffixes(tmp_path: Path):
    write_frame_folder(tmp_path / "clips" / "seq1", render(5))
    make_video(tmp_path / "clips" / "x.mp4", 5)
    make_video(tmp_path / "clips" / ".hidden.mp4", 5)
    (tmp_path / "clips" / "notes.txt").write_text("not a video")
    sources = {s.video_id: s for s in discover([tmp_path / "clips"])}
    assert sorted(sources) == ["seq1", "x"]
    assert sources["seq1"].is_frame_folder


def test_duplicate_ids_across_roots_are_an_error(tmp_path: Path):
    make_video(tmp_path / "r1" / "v.avi", 4)
    make_video(tmp_path / "r2" / "v.mp4", 4)
    with pytest.raises(UsageError, match="claimed by both"):
        discover([tmp_path / "r1", tmp_path / "r2"])


def test_missing_root_and_non_video_file(tmp_path: Path):
    with pytest.raises(UsageError, match="no such file"):
        discover([tmp_path / "nope"])
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(UsageError, match="not a video file"):
        discover([tmp_path / "f.txt"])


def test_fingerprint_tells_touched_from_changed(video_dir: Path):
    (source,) = discover([video_dir / "a.avi"])
    stored = source.fingerprint()
    assert source.status_against(None)[0] == "new"
    assert source.status_against(stored)[0] == "unchanged"
    st = source.path.stat()
    os.utime(source.path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    state, current = source.status_against(stored)
    assert state == "touched" and current.sample_sha256 == stored.sample_sha256
    make_video(source.path, 24, seed=99)  # same size class, different content
    assert source.status_against(stored)[0] == "changed"
