"""Small synthetic videos written with OpenCV, for tests: known frames, known motion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CODECS = {".avi": "FFV1", ".mkv": "FFV1", ".mp4": "mp4v", ".mov": "mp4v"}


@dataclass
class Square:
    """A bright square starting at (x, y) moving (dx, dy) pixels per frame."""

    x: float
    y: float
    dx: float
    dy: float
    size: int = 16
    value: int = 190  # mean brightness; the square carries its own texture, like a walker does


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(40, 90, size=(height // 4 + 1, width // 4 + 1), dtype=np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR)


def render(
    n_frames: int, height: int = 64, width: int = 96, squares: list[Square] | None = None, seed: int = 0
) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB frames: textured static background plus moving squares."""
    base = background(height, width, seed)
    squares = squares if squares is not None else [Square(4, 20, 2.0, 0.0)]
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    rng = np.random.default_rng(seed + 1000)
    textures = [_texture(rng, sq.size, sq.value) for sq in squares]
    for t in range(n_frames):
        frame = base.copy()
        for sq, texture in zip(squares, textures, strict=True):
            x, y = round(sq.x + sq.dx * t), round(sq.y + sq.dy * t)
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sq.size, width), min(y + sq.size, height)
            if x1 > x0 and y1 > y0:
                frame[y0:y1, x0:x1] = texture[y0 - y : y1 - y, x0 - x : x1 - x]
        frames[t] = np.repeat(frame[..., None], 3, axis=2)
    return frames


def _texture(rng: np.random.Generator, size: int, value: int) -> np.ndarray:
    """Blocky texture (3-pixel cells) around `value`: coarse enough to survive a 3×3 blur."""
    cells = rng.integers(-60, 61, (size // 3 + 1, size // 3 + 1))
    blocks = np.kron(cells, np.ones((3, 3), dtype=np.int64))[:size, :size]
    return np.clip(value + blocks, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: float = 10.0) -> Path:
    """Write RGB frames; FFV1 (.avi/.mkv) is lossless, so decoded pixels equal `frames` exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[path.suffix]), fps, (w, h), True)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def make_video(path: Path, n_frames: int = 24, seed: int = 0, **kwargs) -> Path:
    return write_video(path, render(n_frames, seed=seed, **kwargs))


def write_frame_folder(folder: Path, frames: np.ndarray, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}{suffix}"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


MISSING_ENCODER = 77  # exit status of the encoding subprocess when PyAV lacks the encoder ("skipped")
_WEBM_SCRIPT = """
import sys
from pathlib import Path

from videos import MISSING_ENCODER, encode_with_pyav, has_encoder

if not has_encoder("libvpx"):
    sys.exit(MISSING_ENCODER)
encode_with_pyav(Path(sys.argv[1]), "libvpx", int(sys.argv[2]), {})
"""


def has_encoder(codec: str) -> bool:
    """Whether this PyAV build can encode `codec`: the one failure a test may skip on."""
    import av
    from av.codec.codec import UnknownCodecError

    try:
        av.codec.Codec(codec, "w")
    except UnknownCodecError:
        return False
    return True


def encode_with_pyav(
    path: Path, codec: str, n_frames: int, options: dict[str, str], width: int = 96, height: int = 64
) -> Path:
    """A textured square sliding over gray, encoded with one of PyAV's encoders (B-frames, GOP size
    and so on in `options`); skips the calling test where this PyAV build lacks the encoder. Any
    other failure (a bad option, a path it cannot write) is raised: it fails the test."""
    import av
    import pytest

    if not has_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    container = av.open(str(path), "w")
    stream = container.add_stream(codec, rate=25)
    stream.width, stream.height, stream.options = width, height, options
    stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    rng = np.random.default_rng(0)
    side = height // 4
    for t in range(n_frames):
        image = np.full((height, width, 3), 50, np.uint8)
        left = (3 * t) % (width - side)
        image[side : 2 * side, left : left + side] = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def container_video(path: Path, n_frames: int = 60) -> Path:
    """A video in the container its suffix names: .mp4 (MPEG-4 part 2, index at the end), .mkv and
    .avi (FFV1, lossless: frames equal `render(n_frames)`) through OpenCV; .webm (VP8) through PyAV."""
    if path.suffix == ".webm":  # in a process of its own: once decord's FFmpeg is loaded, PyAV cannot open libvpx
        import subprocess
        import sys

        import pytest

        path.parent.mkdir(parents=True, exist_ok=True)
        here = str(Path(__file__).parent)
        done = subprocess.run(
            [sys.executable, "-c", _WEBM_SCRIPT, str(path), str(n_frames)], cwd=here, capture_output=True, text=True
        )
        if done.returncode == MISSING_ENCODER:
            pytest.skip("this PyAV build has no libvpx encoder")
        if done.returncode != 0:
            raise RuntimeError(f"encoding {path} with libvpx failed (exit {done.returncode}):\n{done.stderr}")
        return path
    return make_video(path, n_frames)


def cut_in_half(path: Path) -> Path:
    """Keep the first half of the file's bytes, as a copy that stopped half way would (the
    container's header still declares the whole video)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
