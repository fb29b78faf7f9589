import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from videos import make_video, render, write_frame_folder, write_video

from vadctl.common.specs import Fingerprint
from vadctl.errors import UsageError
from vadctl.video.catalog import SAMPLE_BLOCK, discover


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


# ----- fingerprints of files larger than the sampled blocks ---------------------------------------------
def _large_video(path: Path) -> Path:
    """A real (lossless FFV1) video of noise: incompressible, so several times the three sampled blocks."""
    frames = np.random.default_rng(0).integers(0, 256, (24, 64, 96, 3), dtype=np.uint8)
    write_video(path, frames)
    assert path.stat().st_size > 4 * SAMPLE_BLOCK  # the sampling path runs, not the whole-file read
    return path


def _edit_same_size(path: Path, offset: int, later: int = 5) -> None:
    """Flip one byte at `offset`, keeping the size, and move the mtime `later` seconds on (as a write
    does; explicit, since clocks are coarse)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    st = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + later * 1_000_000_000))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_same_size_edit_in_a_sampled_block_is_a_change(tmp_path: Path, where: str):
    (source,) = discover([_large_video(tmp_path / "big.avi")])
    stored = source.fingerprint()
    size = source.path.stat().st_size
    offset = {"first": 100, "middle": size // 2 + 10, "last": size - 10}[where]
    _edit_same_size(source.path, offset)
    assert source.path.stat().st_size == stored.size  # the size alone cannot tell
    state, current = source.status_against(stored)
    assert state == "changed", where
    assert current.size == stored.size and current.sample_sha256 != stored.sample_sha256


def test_sample_hash_covers_the_first_middle_and_last_blocks(tmp_path: Path):
    """Computed here from the bytes: sha256 of the size, then the three 64 KiB blocks in order."""
    path = _large_video(tmp_path / "big.avi")
    data = path.read_bytes()
    size = len(data)
    blocks = data[:SAMPLE_BLOCK] + data[size // 2 : size // 2 + SAMPLE_BLOCK] + data[size - SAMPLE_BLOCK :]
    (source,) = discover([path])
    fingerprint = source.fingerprint()
    assert fingerprint.size == size and fingerprint.mtime_ns == path.stat().st_mtime_ns
    assert fingerprint.sample_sha256 == _sha256(str(size).encode() + blocks)
    small = tmp_path / "small.avi"
    make_video(small, 4)
    assert small.stat().st_size <= 3 * SAMPLE_BLOCK
    (source,) = discover([small])
    assert source.fingerprint().sample_sha256 == _sha256(str(small.stat().st_size).encode() + small.read_bytes())


def test_touch_of_a_large_file_is_touched_not_changed(tmp_path: Path):
    (source,) = discover([_large_video(tmp_path / "big.avi")])
    stored = source.fingerprint()
    st = source.path.stat()
    os.utime(source.path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    state, current = source.status_against(stored)
    assert state == "touched" and current.mtime_ns == st.st_mtime_ns + 5_000_000_000
    assert current.sample_sha256 == stored.sample_sha256
    # a stored fingerprint of another size is a change even when the sampled bytes were equal
    other = Fingerprint(stored.size + 1, stored.mtime_ns, stored.sample_sha256)
    assert source.status_against(other)[0] == "changed"
    # the quick check: same size and mtime is unchanged without reading the file
    assert source.status_against(Fingerprint(current.size, current.mtime_ns, "not read"))[0] == "unchanged"


def test_frame_folder_fingerprint_sees_renamed_and_edited_end_frames(tmp_path: Path):
    folder = write_frame_folder(tmp_path / "seq", render(5))
    (source,) = discover([folder])
    stored = source.fingerprint()
    first = sorted(folder.iterdir())[0]
    first.rename(folder / "009.png")  # same bytes and sizes, another order of frames
    st = folder.stat()
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # a later rename (coarse clocks)
    assert source.status_against(stored)[0] == "changed"
    again = source.fingerprint()
    last = sorted(folder.iterdir())[-1]
    _edit_same_size(last, last.stat().st_size // 2, later=20)
    assert source.status_against(again)[0] == "changed"


def test_extract_redoes_a_video_edited_in_the_middle_without_changing_size(tmp_path: Path):
    from vadctl import api
    from vadctl.store import FeatureStore

    path = _large_video(tmp_path / "videos" / "big.avi")
    store = tmp_path / "store.zarr"
    first = api.extract([path.parent], store, "train", ["frames"])
    assert first.count("extracted") == 1
    _edit_same_size(path, path.stat().st_size // 2 + 10)
    again = api.extract([path.parent], store, "train", ["frames"])
    assert again.count("extracted") + len(again.failed) == 1, [r.status for r in again.results]
    record = FeatureStore(store, read_only=True).video("train", "big")
    assert record.fingerprint.sample_sha256 == discover([path])[0].fingerprint().sample_sha256


def test_frame_files_are_images_in_natural_order(tmp_path: Path):
    from vadctl.video.catalog import frame_files

    folder = tmp_path / "clip"
    folder.mkdir()
    for name in ("10.png", "2.png", "1.PNG", "frame_3.jpg", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (folder / "9.png").mkdir()  # a folder named like an image is not a frame
    assert [p.name for p in frame_files(folder)] == ["1.PNG", "2.png", "10.png", "frame_3.jpg"]


def test_frame_folder_size_is_the_total_of_its_frames(tmp_path: Path):
    """A middle frame is not in the sampled hash: its size must be in the quick check."""
    folder = write_frame_folder(tmp_path / "seq", render(5))
    (source,) = discover([folder])
    stored = source.fingerprint()
    assert stored.size == sum(p.stat().st_size for p in folder.iterdir())
    middle = sorted(folder.iterdir())[2]
    st = middle.stat()
    middle.write_bytes(middle.read_bytes() + b"\0" * 7)  # a middle frame grew
    os.utime(middle, ns=(st.st_atime_ns, st.st_mtime_ns))  # with its old mtime (a copy that kept it)
    status, current = source.status_against(stored)
    assert status == "changed" and current.size == stored.size + 7
