"""Decode videos in sequential windows with bounded memory, and sample clips.

decord is fast reading forward and slow seeking into H.264, and `get_batch` of a whole 720p video
costs ~830 MB per 300 frames, so every reader here walks the video once, a window at a time.
Both decord error types (RuntimeError on open, DECORDError later) become `VideoError` naming the
file. Frames are RGB uint8, (n, H, W, 3).
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from vadctl.catalog import VideoSource, frame_files, not_regular
from vadctl.errors import VideoError
from vadctl.specs import DecodeSpec


@dataclass(frozen=True)
class VideoInfo:
    """The facts about a decoded video that features depend on."""

    n_frames: int
    fps: float
    height: int  # decoded size (after any resize)
    width: int
    source_height: int
    source_width: int


@dataclass
class FrameWindow:
    """Consecutive frames [start, start + len(frames)) and the frame just before them.

    `previous` lets pairwise featurizers (flow, frame differences) work across window borders.
    Gray versions are computed once on first use and shared by all featurizers.
    """

    start: int
    frames: np.ndarray
    previous: np.ndarray | None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def stop(self) -> int:
        return self.start + len(self.frames)

    @cached_property
    def gray(self) -> np.ndarray:
        return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in self.frames])

    @cached_property
    def previous_gray(self) -> np.ndarray | None:
        if self.previous is None:
            return None
        return cv2.cvtColor(self.previous, cv2.COLOR_RGB2GRAY)

    def gray_pairs(self) -> Iterator[tuple[int, np.ndarray | None, np.ndarray]]:
        """(frame index, gray frame before it or None, gray frame) for every frame of the window."""
        before = self.previous_gray
        for offset, current in enumerate(self.gray):
            yield self.start + offset, before, current
            before = current


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what native code prints on fd 2 (ffmpeg's reasons) instead of spraying the terminal."""
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def _reason(error: BaseException, native: list[str]) -> str:
    """The most telling one-line reason: ffmpeg's own words when it printed some."""
    for line in native:
        if "]" in line and "ERROR" not in line:
            text = line.split("]", 1)[1].strip()
            if text:
                return text
    text = str(error).strip().splitlines()
    message = text[-1] if text else type(error).__name__
    if "] " in message:
        message = message.split("] ", 1)[1]
    return message.replace("Error: ", "").strip() or type(error).__name__


class VideoReader:
    """Sequential windowed reader over a video file or a folder of numbered frames."""

    def __init__(self, source: VideoSource, decode: DecodeSpec | None = None, num_threads: int = 0):
        self.source = source
        self.decode = decode or DecodeSpec()
        self._reader = None
        self._frames: list[Path] | None = None
        if source.is_frame_folder:
            self.info = self._open_folder()
        else:
            self.info = self._open_file(num_threads)

    def _open_file(self, num_threads: int) -> VideoInfo:
        import decord

        path = self.source.path
        problem = not_regular(path)  # checked again at open: a FIFO would block decord forever
        if problem is not None:
            raise VideoError(path, problem)
        if path.stat().st_size == 0:
            raise VideoError(path, "empty file (0 bytes)")
        try:
            with _captured_stderr() as native:
                reader = decord.VideoReader(str(path), num_threads=num_threads)
                n_frames = len(reader)
                fps = float(reader.get_avg_fps())
                source_h, source_w = reader[0].shape[:2] if n_frames else (0, 0)
                reader.seek(0)
        except Exception as error:  # decord raises RuntimeError and DECORDError (an Exception)
            raise VideoError(path, f"cannot open video: {_reason(error, native)}") from error
        if n_frames <= 0:
            raise VideoError(path, "video has no frames")
        self._reader = reader
        width, height = self.decode.output_size(source_w, source_h)
        return VideoInfo(n_frames, fps if fps > 0 else 25.0, height, width, source_h, source_w)

    def _open_folder(self) -> VideoInfo:
        frames = frame_files(self.source.path)
        if not frames:
            raise VideoError(self.source.path, "frame folder holds no images")
        first = self._read_image(frames[0])
        source_h, source_w = first.shape[:2]
        width, height = self.decode.output_size(source_w, source_h)
        self._frames = frames
        return VideoInfo(len(frames), 25.0, height, width, source_h, source_w)

    def _read_image(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise VideoError(path, "cannot read image (corrupt or unsupported)")
        return self._resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))

    def _resize(self, image: np.ndarray) -> np.ndarray:
        """To the decode size with area interpolation (decord's own scaler is wrong at some sizes)."""
        width, height = self.decode.output_size(image.shape[1], image.shape[0])
        if (width, height) == (image.shape[1], image.shape[0]):
            return image
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        if self._frames is not None:
            frames = [self._read_image(p) for p in self._frames[start:stop]]
            shapes = {f.shape for f in frames}
            if len(shapes) != 1 or frames[0].shape[:2] != (self.info.height, self.info.width):
                raise VideoError(self.source.path, f"frames {start}..{stop - 1} differ in size from the first")
            return np.stack(frames)
        try:
            batch = self._reader.get_batch(list(range(start, stop))).asnumpy()
        except Exception as error:
            raise VideoError(
                self.source.path, f"decoding failed at frames {start}..{stop - 1}: {_reason(error, [])}"
            ) from error
        if len(batch) != stop - start:
            raise VideoError(self.source.path, f"decoder returned {len(batch)} frames for {start}..{stop - 1}")
        if (self.info.width, self.info.height) != (batch.shape[2], batch.shape[1]):
            batch = np.stack([self._resize(frame) for frame in batch])
        return batch

    def windows(self, size: int) -> Iterator[FrameWindow]:
        """Every frame once, in order, `size` at a time."""
        previous = None
        for start in range(0, self.info.n_frames, size):
            frames = self._read_range(start, min(start + size, self.info.n_frames))
            yield FrameWindow(start, frames, previous)
            previous = frames[-1]

    def close(self) -> None:
        self._reader = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_DONE = object()


def prefetch(iterator: Iterator, depth: int = 2) -> Iterator:
    """Run `iterator` in a background thread, `depth` items ahead; errors surface in the caller.

    Decoding (decord, OpenCV) releases the GIL, so the consumer computes features on one core
    while the next window decodes on the other. Memory stays bounded by `depth` windows.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as error:  # handed over to the consumer
            items.put(error)

    worker = threading.Thread(target=produce, name="vadctl-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
