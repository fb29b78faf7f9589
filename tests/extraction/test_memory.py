"""Memory of extract must not grow with video length: what a featurizer keeps between windows is
bounded, and so is decord's decode-ahead (files reach it in keyframe-aligned pieces, and what cannot
be cut short enough is decoded by PyAV; benchmarks/RESULTS.md, "Memory")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from videos import Square, encode_with_pyav, make_video

from vadctl import api
from vadctl.features.motion import Motion


def test_motion_keeps_only_the_frames_clips_still_need(tmp_path: Path, monkeypatch):
    held = []
    ready = Motion._ready

    def spy(self, available):
        out = ready(self, available)
        held.append(len(self._per_frame))
        return out

    monkeypatch.setattr(Motion, "_ready", spy)
    video = make_video(tmp_path / "long.avi", 160, seed=3, squares=[Square(4, 20, 2.0, 0.5)])
    report = api.extract([video], tmp_path / "s.zarr", "train", "motion", clip_len=8, clip_stride=4, window=8)
    assert not report.failed and report.frames == 160
    assert max(held) <= 8 + 8, max(held)  # one clip's frames and one window, not the 160 seen


PROBE = """
import resource, sys, time
from pathlib import Path
from vadctl.common.specs import DecodeSpec
from vadctl.video.catalog import VideoSource
from vadctl.video.reader import VideoReader, prefetch
source = VideoSource("v", Path(sys.argv[1]))
with VideoReader(source, DecodeSpec(decoder=sys.argv[2])) as reader:
    for window in prefetch(reader.windows(16)):
        time.sleep(float(sys.argv[3]) * len(window))  # featurizers: slower than decoding
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _peak_mb(video: Path, decoder: str = "auto", sleep: float = 0.003) -> float:
    command = [sys.executable, "-c", PROBE, str(video), decoder, str(sleep)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def test_reading_a_long_video_takes_no_more_memory_than_a_short_one(tmp_path: Path):
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from memory import write_video

    short = _peak_mb(write_video(tmp_path / "short.mp4", 360, 240, 150))
    long = _peak_mb(write_video(tmp_path / "long.mp4", 360, 240, 2400))
    assert long - short < 40, (short, long)


def _one_keyframe(path: Path, n_frames: int) -> Path:
    """360x240 H.264 whose only keyframe is its first frame: nothing to cut decord's input at."""
    options = {"g": "100000", "keyint_min": "100000", "sc_threshold": "0", "preset": "ultrafast"}
    return encode_with_pyav(path, "libx264", n_frames, options, width=360, height=240)


def test_a_single_keyframe_video_takes_no_more_memory_than_a_short_one(tmp_path: Path):
    """decord decoded ahead over the whole uncut file: 2,000 frames peaked 165 MB above 150 (the
    PyAV part of the decord backend, and the pyav backend, hold a frame at a time)."""
    short = _one_keyframe(tmp_path / "short.mp4", 150)
    long = _one_keyframe(tmp_path / "long.mp4", 2000)
    for decoder in ("decord", "pyav"):
        grown = _peak_mb(long, decoder, 0.002) - _peak_mb(short, decoder, 0.002)
        assert grown < 40, (decoder, grown)


def _h264(path: Path, open_gop: bool) -> Path:
    """H.264 with B-frames and a keyframe every 24 frames (PyAV's libx264)."""
    options = {"bf": "3", "g": "24", "keyint_min": "24", "sc_threshold": "0"}
    if open_gop:
        options["x264-params"] = "open-gop=1"
    return encode_with_pyav(path, "libx264", 150, options, width=160, height=120)


@pytest.mark.parametrize("open_gop", [False, True], ids=["closed-gop", "open-gop"])
def test_pieces_decode_to_the_frames_of_the_whole_file(tmp_path: Path, open_gop: bool):
    import decord
    import numpy as np

    from vadctl.video.catalog import VideoSource
    from vadctl.video.reader import VideoReader

    video = _h264(tmp_path / "v.mp4", open_gop)
    with VideoReader(VideoSource("v", video)) as reader:
        pieces = np.concatenate([window.frames for window in reader.windows(16)])
    whole = decord.VideoReader(str(video), num_threads=1)
    assert np.array_equal(pieces, whole.get_batch(list(range(len(whole)))).asnumpy())
