"""The decoder seam (`vadctl.video.backends`): decord and PyAV give the same frames, PyAV seeks to
the right frame, auto falls back to PyAV without decord, and decord never gets a long stretch
without keyframes (PyAV decodes it instead, in constant memory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from videos import encode_with_pyav, has_encoder, render, write_video

from vadctl.common.specs import DecodeSpec
from vadctl.errors import UsageError
from vadctl.video import backends
from vadctl.video.catalog import VideoSource
from vadctl.video.reader import VideoReader

DECODERS = ["decord", "pyav"]

# (codec, suffix, encoder options, most grey levels the two decoders may differ by). Measured equal,
# pixel for pixel, on every one of these (PyAV 18 with FFmpeg 8, decord 0.6.0 with its own FFmpeg):
# both convert YUV to RGB with swscale's same unscaled path. A codec whose conversions differ would
# get 1 here, and the test would say so.
MATRIX = [
    ("libx264", ".mp4", {"g": "10", "bf": "2"}, 0),
    ("mpeg4", ".avi", {"g": "5"}, 0),
    ("mjpeg", ".avi", {}, 0),
    ("mpeg2video", ".mpg", {"g": "9"}, 0),
    ("libvpx-vp9", ".webm", {"g": "8"}, 0),
    ("ffv1", ".mkv", {}, 0),
]

ENCODE = """import sys, json
from pathlib import Path
from videos import encode_with_pyav
encode_with_pyav(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))
"""


def encode_apart(path: Path, codec: str, n_frames: int, options: dict) -> Path:
    """Encode in a process of its own: once decord's FFmpeg is loaded, PyAV cannot open libvpx.
    Skips only where this PyAV build lacks the encoder; any other failure fails the test."""
    import json

    if not has_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    here = str(Path(__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", ENCODE, str(path), codec, str(n_frames), json.dumps(options)],
        cwd=here,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and path.exists(), f"encoding {codec} failed: {done.stderr.strip()[-500:]}"
    return path


def read(path: Path, decoder: str, window: int = 8, start: int = 0) -> tuple[np.ndarray, VideoReader]:
    with VideoReader(VideoSource("v", path), DecodeSpec(decoder=decoder)) as reader:
        frames = np.concatenate([w.frames for w in reader.windows(window, start)])
    return frames, reader


@pytest.mark.parametrize(("codec", "suffix", "options", "tolerance"), MATRIX, ids=[m[0] for m in MATRIX])
def test_both_decoders_give_the_same_frames(tmp_path: Path, codec, suffix, options, tolerance):
    path = encode_apart(tmp_path / f"v{suffix}", codec, 41, options)
    by_decord, decord_reader = read(path, "decord")
    by_pyav, pyav_reader = read(path, "pyav")
    assert (decord_reader.decoder, pyav_reader.decoder) == ("decord", "pyav")
    assert decord_reader.info.n_frames == pyav_reader.info.n_frames == 41
    assert pyav_reader.info.fps == pytest.approx(decord_reader.info.fps)
    assert by_decord.shape == by_pyav.shape == (41, 64, 96, 3)
    difference = np.abs(by_decord.astype(np.int16) - by_pyav.astype(np.int16)).max()
    assert difference <= tolerance, f"{codec}: {difference} grey levels apart"


def test_pyav_seeks_to_the_frame_asked_for(tmp_path: Path):
    """H.264 with B-frames and a keyframe every 10 frames: windows from any start, single frames in
    any order and a step back give decord's frames (seek to the keyframe before, decode forward)."""
    path = encode_with_pyav(tmp_path / "v.mp4", "libx264", 57, {"g": "10", "bf": "2", "sc_threshold": "0"})
    whole, _ = read(path, "decord")
    for start in (0, 9, 10, 23, 50):
        np.testing.assert_array_equal(read(path, "pyav", 7, start)[0], whole[start:])
    with VideoReader(VideoSource("v", path), DecodeSpec(decoder="pyav")) as reader:
        for index in (31, 5, 44, 44, 45, 12, 56, 0):
            np.testing.assert_array_equal(reader.frame(index), whole[index])


def test_pyav_counts_from_the_start_where_a_seek_lands_elsewhere(tmp_path: Path, monkeypatch):
    """A demuxer whose seek lands a keyframe too late (the frame asked for never comes out): the
    frame is then found by decoding from the first one."""
    path = encode_with_pyav(tmp_path / "v.mp4", "libx264", 40, {"g": "10", "bf": "2", "sc_threshold": "0"})
    whole, _ = read(path, "pyav")
    decode, seeks = backends.PyAVBackend._decode, []

    def late(self, seek_to=None):
        frames = decode(self, seek_to)
        if seek_to is not None:
            seeks.append(seek_to)
            for _ in range(10):  # one keyframe interval lost
                next(frames, None)
        yield from frames

    monkeypatch.setattr(backends.PyAVBackend, "_decode", late)
    with VideoReader(VideoSource("v", path), DecodeSpec(decoder="pyav")) as reader:
        np.testing.assert_array_equal(reader.frame(25), whole[25])
        np.testing.assert_array_equal(reader.frame(15), whole[15])
    assert len(seeks) == 2


def test_auto_is_decord_where_it_imports_and_pyav_where_it_does_not(tmp_path: Path):
    assert backends.resolve_decoder("auto") == backends.resolve_decoder(None) == "decord"
    assert backends.resolve_decoder("PyAV".lower()) == "pyav"
    with pytest.raises(UsageError, match="--decoder 'ffmpeg': use auto, decord or pyav"):
        backends.resolve_decoder("ffmpeg")
    path = write_video(tmp_path / "v.avi", render(12))
    script = (
        "import sys; sys.modules['decord'] = None\n"  # decord not installed: `import decord` fails
        "from pathlib import Path\n"
        "from vadctl.errors import UsageError\n"
        "from vadctl.video.backends import resolve_decoder\n"
        "from vadctl.video.catalog import VideoSource\n"
        "from vadctl.video.reader import VideoReader\n"
        "reader = VideoReader(VideoSource('v', Path(sys.argv[1])))\n"
        "print(resolve_decoder('auto'), reader.decoder, sum(len(w) for w in reader.windows(5)))\n"
        "try:\n    resolve_decoder('decord')\nexcept UsageError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "pyav pyav 12"
    assert lines[1] == "--decoder decord: decord cannot be imported here; use --decoder pyav (or auto)"


def _one_keyframe(path: Path, n_frames: int, width: int = 96, height: int = 64) -> Path:
    """H.264 whose only keyframe is its first frame (and B-frames)."""
    options = {"g": "100000", "keyint_min": "100000", "sc_threshold": "0", "bf": "2"}
    return encode_with_pyav(path, "libx264", n_frames, options, width, height)


def _keyframes(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    return [i for i, p in enumerate(packets) if p.is_keyframe]


def test_decord_never_gets_a_stretch_longer_than_a_long_piece(tmp_path: Path, monkeypatch):
    """A single-keyframe file, and one whose keyframes stop after a while: decord gets the pieces
    it can be given, PyAV decodes the rest, and the frames are decord's of the whole file."""
    import decord

    monkeypatch.setattr(backends, "LONG_PIECE", 40)
    single = _one_keyframe(tmp_path / "single.mp4", 90)
    assert _keyframes(single) == [0]
    options = {"g": "12", "keyint_min": "12", "sc_threshold": "0", "bf": "2"}
    regular = encode_with_pyav(tmp_path / "regular.mp4", "libx264", 90, options)
    for path, decord_pieces in ((single, 0), (regular, 7)):
        whole = decord.VideoReader(str(path), num_threads=1)
        expected = whole.get_batch(list(range(len(whole)))).asnumpy()
        seen = []
        with VideoReader(VideoSource("v", path), DecodeSpec(decoder="decord")) as reader:
            decoded = []
            for window in reader.windows(8):
                decoded.append(window.frames)
                seen.append(type(reader._backend.frame_reader).__name__)
            np.testing.assert_array_equal(np.concatenate(decoded), expected)
            np.testing.assert_array_equal(reader.frame(3), expected[3])  # back before the PyAV part
            np.testing.assert_array_equal(reader.frame(70), expected[70])
        assert ("_Tail" in seen) == (path == single)
        assert sum(name == "VideoReader" for name in seen) >= decord_pieces


def test_a_long_stretch_starting_mid_file_goes_to_pyav(tmp_path: Path, monkeypatch):
    """Keyframes every 12 frames, then none for 60: the pieces before go to decord, the rest to PyAV."""
    import av
    import decord

    monkeypatch.setattr(backends, "LONG_PIECE", 40)
    path = tmp_path / "v.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
    stream.options = {"g": "100000", "keyint_min": "100000", "sc_threshold": "0", "bf": "0"}
    frames = render(100, seed=3)
    for t, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if t < 40 and t % 12 == 0:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    assert _keyframes(path)[:4] == [0, 12, 24, 36] and max(_keyframes(path)) == 36
    whole = decord.VideoReader(str(path), num_threads=1)
    expected = whole.get_batch(list(range(len(whole)))).asnumpy()
    seen, decoded = [], []
    with VideoReader(VideoSource("v", path), DecodeSpec(decoder="decord")) as reader:
        for window in reader.windows(8):
            decoded.append(window.frames)
            seen.append(type(reader._backend.frame_reader).__name__)
    np.testing.assert_array_equal(np.concatenate(decoded), expected)
    assert seen[:3] == ["VideoReader"] * 3 and seen[-1] == "_Tail"  # one piece (frames 0-35), then PyAV
    np.testing.assert_array_equal(read(path, "decord", 8, 50)[0], expected[50:])
