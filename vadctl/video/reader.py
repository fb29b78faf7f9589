"""Decode videos in sequential windows with bounded memory, and sample clips.

Two decoders stand behind the reader (`vadctl.video.backends`, chosen by `DecodeSpec.decoder`:
auto, decord or pyav). decord is fast reading forward and slow seeking into H.264, and `get_batch`
of a whole 720p video costs ~830 MB per 300 frames, so every reader here walks the video once, a
window at a time. Open and decode errors (decord's RuntimeError and DECORDError, PyAV's FFmpegError)
become `VideoError` naming the file and the decoder's own reason. Frames are RGB uint8, (n, H, W, 3).

A file cut short (a copy that stopped, a recording that was killed) may still open: its container
declares more frames (or a longer duration) than the file holds. The reader compares what the
decoder finds, and what it then decodes, with what the container declares (`declared_frames`) and
raises `TruncatedVideoError` when decoding ends early, unless asked to keep the frames there are
(`keep_truncated`: `VideoReader.truncated` then says what is missing).
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

from vadctl.common.specs import DecodeSpec
from vadctl.errors import TruncatedVideoError, UsageError, VideoError
from vadctl.video import native_stderr
from vadctl.video.backends import Backend, open_backend
from vadctl.video.catalog import VideoSource, frame_files, not_regular
from vadctl.video.native_stderr import decoder_line


@dataclass(frozen=True)
class VideoInfo:
    """The facts about a decoded video that features depend on."""

    n_frames: int
    fps: float
    height: int  # decoded size (after any resize)
    width: int
    source_height: int
    source_width: int
    decoder: str | None = None  # what decoded it: "decord" or "pyav" (None: a folder of images)


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
    """Sequential windowed reader over a video file (decoded by decord or PyAV, `decode.decoder`)
    or a folder of numbered frames. What the decoders print goes into the failure reason, never to
    the terminal (`native_stderr`): captured around opening and around every ranged read.

    Memory is bounded whatever the file: PyAV holds one decoded frame at a time; decord gets the
    file in keyframe-aligned pieces of at most `backends.LONG_PIECE` frames, and PyAV decodes what
    cannot be cut that short (`backends.DecordBackend`).
    """

    def __init__(
        self,
        source: VideoSource,
        decode: DecodeSpec | None = None,
        num_threads: int = 1,
        *,
        keep_truncated: bool = False,
        limit: int | None = None,
    ):
        """`keep_truncated`: a file holding fewer frames than its container declares opens with the
        frames it holds (`truncated` says so) instead of raising `TruncatedVideoError`; `limit`:
        read no more than this many frames (the frames of a truncated file that decode)."""
        self.source = source
        self.decode = decode or DecodeSpec()
        self.keep_truncated = keep_truncated
        self.limit = limit
        self.declared: int | None = None  # frames the container declares (None: it does not say)
        self.truncated: str | None = None  # why the file is short, when it is kept anyway
        self.warnings: list[str] = []  # decoder messages of a video that was read anyway
        self._backend: Backend | None = None
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

    def _said(self, error: BaseException | None = None, since: int = 0) -> str | None:
        self._take_native()
        return _reason(self._native[since:], error) or _reason(self._native, error)

    def _fail(self, reason: str, error: BaseException | None = None, since: int = 0) -> VideoError:
        """A VideoError naming the file, with the decoder's own words about what went wrong."""
        said = self._said(error, since)
        return VideoError(self.source.path, f"{reason}: {said}" if said else reason)

    def _open_file(self, num_threads: int) -> VideoInfo:
        path = self.source.path
        problem = not_regular(path)  # checked again at open: a FIFO would block decord forever
        if problem is not None:
            raise VideoError(path, problem)
        if path.stat().st_size == 0:
            raise VideoError(path, "empty file (0 bytes)")
        try:  # indexes packets, decodes nothing
            self._backend = open_backend(self.decode.decoder, path, num_threads)
            n_frames = self._backend.n_frames
            fps = self._backend.fps
        except UsageError:
            raise
        except Exception as error:  # decord raises RuntimeError and DECORDError, PyAV FFmpegError
            raise self._fail("cannot open video", error) from error
        if n_frames <= 0:
            raise VideoError(path, "video has no frames")
        if self.limit is not None:
            n_frames = min(n_frames, self.limit)
        self.declared = declared_frames(path)
        short = self.declared is not None and is_short(n_frames, self.declared)
        if short and not self.keep_truncated:
            raise TruncatedVideoError(path, n_frames, self.declared, found=self.limit is None)
        # a file kept truncated ends with the packet the cut went through (flagged corrupt): its
        # stream ends before it (decord, decoding ahead, would report it while earlier frames are
        # read, or fail its first frame)
        self._backend.start(until_corrupt=short)
        if short:
            n_frames = min(n_frames, self._backend.n_frames)
            self.truncated = TruncatedVideoError(path, n_frames, self.declared, found=self.limit is None).reason
        try:
            first = list(self._backend.read(0, 1))
        except Exception as error:
            raise self._fail("cannot decode the first frame", error) from error
        if not first:
            raise self._fail("cannot decode the first frame")
        source_h, source_w = first[0].shape[1:3]
        self._take_native()
        width, height = self.decode.output_size(source_w, source_h)
        return VideoInfo(n_frames, fps if fps > 0 else 25.0, height, width, source_h, source_w, self._backend.name)

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
        parts, at = [], start
        try:
            for batch in self._backend.read(start, stop):
                parts.append(batch)
                at += len(batch)
        except Exception as error:  # DECORDError, FFmpegError on damaged data
            if self.truncated is None:
                raise self._fail(f"decoding failed at frames {at}..{stop - 1}", error, since=since) from error
            # a file known to be short: its damage is where it ends, and decord, decoding ahead,
            # may report it while this range is still good: frame by frame, the range decodes or not
            said = self._said(error, since)
            singly = self._decode_singly(at, stop)
            if at + len(singly) < stop:
                raise TruncatedVideoError(self.source.path, at + len(singly), self.declared, said or "") from error
            parts.extend(singly)
            at = stop
        self._take_native()
        if at != stop:  # the decoder found the frames the header lists, but they end early
            declared = max(self.declared or 0, self.info.n_frames)
            raise TruncatedVideoError(self.source.path, at, declared, f"no frames after frame {at - 1}")
        batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if (self.info.width, self.info.height) != (batch.shape[2], batch.shape[1]):
            batch = np.stack([self._resize(frame) for frame in batch])
        return batch

    def _decode_singly(self, at: int, stop: int) -> list[np.ndarray]:
        """Frames [at, stop) one at a time from a fresh decoder, up to the first that does not
        decode (a batch that failed says only that one of its frames did, or one after it)."""
        frames: list[np.ndarray] = []
        try:
            self._backend.start(until_corrupt=True)
            for index in range(at, stop):
                got = list(self._backend.read(index, index + 1))
                if not got:
                    break
                frames.extend(got)
        except Exception:  # the first frame that does not decode
            pass
        finally:
            self._take_native()
        return frames

    def windows(self, size: int, start: int = 0, stop: int | None = None) -> Iterator[FrameWindow]:
        """Frames [start, stop) (default: all) once, in order, `size` at a time; the first window
        carries the frame before `start` as `previous`, so a segment sees what the whole video would."""
        stop = self.info.n_frames if stop is None else min(stop, self.info.n_frames)
        previous = self._read_range(start - 1, start)[0] if start > 0 else None
        for first in range(start, stop, size):
            frames = self._read_range(first, min(first + size, stop))
            yield FrameWindow(first, frames, previous)
            previous = frames[-1]

    def frame(self, index: int) -> np.ndarray:
        """One frame (H, W, 3) RGB, for a look at a single moment (slow to seek in H.264: few calls)."""
        if not 0 <= index < self.info.n_frames:
            raise VideoError(self.source.path, f"frame {index} is outside 0..{self.info.n_frames - 1}")
        return self._read_range(index, index + 1)[0]

    @property
    def decoder(self) -> str | None:
        """The backend decoding this file ("decord" or "pyav"); None for a folder of images."""
        return self.info.decoder if hasattr(self, "info") else None

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
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


def declared_frames(path: Path) -> int | None:
    """How many frames the container says the video holds: its stream's frame count (MP4, AVI), else
    the stream's duration (Matroska/WebM: its DURATION tag) times the frame rate; the container's
    own duration only when the video is its only stream (audio may run longer). None when it says
    neither, or PyAV cannot read the header."""
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames and stream.frames > 0:
                return int(stream.frames)
            rate = stream.average_rate or stream.guessed_rate
            if not rate or rate <= 0:
                return None
            seconds = None
            if stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif (tag := _tag_seconds(stream.metadata)) is not None:
                seconds = tag
            elif container.duration and len(container.streams) == 1:
                seconds = container.duration / av.time_base
            return round(seconds * float(rate)) if seconds and seconds > 0 else None
    except Exception:  # no PyAV, or a header it cannot read: decord's own count stands
        return None


def _tag_seconds(metadata) -> float | None:
    """Matroska's per-track DURATION tag ('00:00:07.200000000') in seconds."""
    text = next((v for k, v in dict(metadata).items() if k.upper() == "DURATION"), None)
    try:
        hours, minutes, seconds = str(text).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (ValueError, TypeError):
        return None


def is_short(frames: int, declared: int) -> bool:
    """Fewer frames than declared, beyond rounding (2 frames, or 1% of a long video: durations times
    rates are not exact, and some muxers count a frame or two of decoder delay)."""
    return declared - frames > max(2, declared // 100)


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
