"""Decode videos in sequential windows with bounded memory, and sample clips.

decord is fast reading forward and slow seeking into H.264, and `get_batch` of a whole 720p video
costs ~830 MB per 300 frames, so every reader here walks the video once, a window at a time.
Open and decode errors (decord's RuntimeError and DECORDError) become `VideoError` naming the file
and the decoder's own reason. Frames are RGB uint8, (n, H, W, 3).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from vadctl import native_stderr
from vadctl.catalog import VideoSource, frame_files, not_regular
from vadctl.errors import VideoError
from vadctl.native_stderr import decoder_line
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


def _reason(native: list[str], error: BaseException | None = None) -> str | None:
    """The most telling one-line reason: FFmpeg's own first words when it printed some (decord's
    and FFmpeg's log lines, address and time stamps dropped), else the exception's last line."""
    lines = [text for text in map(decoder_line, native) if text]
    for text in lines:  # FFmpeg names the damage; decord's own lines only repeat that it failed
        if not text.startswith(("ERROR", "Check failed", "Error")):
            return text
    if lines:
        return lines[0]
    if error is None:
        return None
    text = str(error).strip().splitlines()
    message = text[-1] if text else type(error).__name__
    if "] " in message:
        message = message.split("] ", 1)[1]
    return message.replace("Error: ", "").strip() or type(error).__name__


class VideoReader:
    """Sequential windowed reader over a video file (decoded with decord) or a folder of numbered
    frames. What the decoders print goes into the failure reason, never to the terminal
    (`native_stderr`): captured around opening and around every ranged read.

    Memory: decord decodes on a thread of its own, fed with packets by the reading thread. After
    opening (and after any seek) the reading thread pushes packets until the decoder hands back its
    first frame, and the decoder then decodes all of those ahead of the reader: a backlog of up to a
    few thousand decoded frames, as many as the reading thread pushed in that time (more on a busy
    machine, never more than the video holds). One decoding thread keeps it smallest (measured
    in benchmarks/RESULTS.md, "Memory").
    """

    def __init__(self, source: VideoSource, decode: DecodeSpec | None = None, num_threads: int = 1):
        self.source = source
        self.decode = decode or DecodeSpec()
        self.warnings: list[str] = []  # decoder messages of a video that was read anyway
        self._reader = None
        self._frames: list[Path] | None = None
        self._native: list[str] = []
        self._held = native_stderr.hold()
        try:
            self.info = self._open_folder() if source.is_frame_folder else self._open_file(num_threads)
        except BaseException:
            self.close()
            raise

    def _take_native(self) -> list[str]:
        lines = self._held.take() if self._held is not None else []
        self._native.extend(lines)
        return lines

    def _fail(self, reason: str, error: BaseException | None = None, since: int = 0) -> VideoError:
        """A VideoError naming the file, with the decoder's own words about what went wrong."""
        self._take_native()
        said = _reason(self._native[since:], error) or _reason(self._native, error)
        return VideoError(self.source.path, f"{reason}: {said}" if said else reason)

    def _open_file(self, num_threads: int) -> VideoInfo:
        import decord

        path = self.source.path
        problem = not_regular(path)  # checked again at open: a FIFO would block decord forever
        if problem is not None:
            raise VideoError(path, problem)
        if path.stat().st_size == 0:
            raise VideoError(path, "empty file (0 bytes)")
        try:
            reader = decord.VideoReader(str(path), num_threads=num_threads)
            n_frames = len(reader)
            fps = float(reader.get_avg_fps())
            source_h, source_w = reader[0].shape[:2] if n_frames else (0, 0)
            reader.seek(0)
        except Exception as error:  # decord raises RuntimeError and DECORDError (an Exception)
            raise self._fail("cannot open video", error) from error
        if n_frames <= 0:
            raise VideoError(path, "video has no frames")
        self._reader = reader
        self._take_native()
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
            self._take_native()
            said = _reason(self._native)
            raise VideoError(path, "cannot read image (corrupt or unsupported)" + (f": {said}" if said else ""))
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
        since = len(self._native)
        try:
            batch = self._reader.get_batch(list(range(start, stop))).asnumpy()
        except Exception as error:  # DECORDError on damaged data
            raise self._fail(f"decoding failed at frames {start}..{stop - 1}", error, since=since) from error
        self._take_native()
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
        if self._held is not None:
            self._native.extend(self._held.release())
            self._held = None
        self.warnings = list(dict.fromkeys(filter(None, map(decoder_line, self._native))))

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
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
