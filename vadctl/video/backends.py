"""The decoders behind `VideoReader`: one small interface, two backends.

A backend opens a video file, says how many frames its decoder finds (`n_frames`, counted from the
stream's packets without decoding) and at what rate, and hands out frames [start, stop) in order
as RGB uint8 arrays at the file's own size, a batch at a time (`read`). Reading on from where the
last read stopped is the fast path; any other start seeks.

- `decord` (the default where it installs): decord over pieces of the file cut at keyframes (see
  `DecordBackend`), the decoder vadctl has always used; its entries keep their identity.
- `pyav`: PyAV decoding packets as it demuxes them (`PyAVBackend`), in constant memory. decord had
  its last release in 2021 and has no wheels for newer Pythons or macOS arm64; PyAV is a dependency
  anyway (it cuts the pieces). Both give the same pixels on H.264, MPEG-4, MJPEG, MPEG-2, VP9 and
  FFV1 (tests/video/test_decoders.py) and on Ped2, but they bundle different FFmpeg builds, so
  features decoded with PyAV carry the decoder in their identity (`DecodeSpec.decoder`).

`--decoder auto` takes decord when it imports, else PyAV (`resolve_decoder`).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vadctl.errors import UsageError

DECODERS = ("auto", "decord", "pyav")

# decord decodes ahead of its reader as far as its input goes (see `DecordBackend`): files are
# handed to it in pieces of at least this many frames (cut at keyframes) ...
SEGMENT_FRAMES = 32
# ... and at most this many: a longer stretch without a usable keyframe (a single-keyframe file, an
# open-GOP stream) is decoded by PyAV instead, from there to the end, in constant memory. x264's
# default keyframe interval (250) still reaches decord; at 360x240, 256 frames are 66 MB.
LONG_PIECE = 256


def decord_importable() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return False
    return True


def resolve_decoder(name: str | None) -> str:
    """'decord' or 'pyav' for a `--decoder` value: auto (or None) is decord when it imports, else PyAV.
    A one-line `UsageError` for an unknown name, or for decord where it cannot be imported."""
    chosen = "auto" if name is None else str(name).strip().lower()
    if chosen not in DECODERS:
        raise UsageError(f"--decoder {name!r}: use auto, decord or pyav")
    if chosen == "auto":
        return "decord" if decord_importable() else "pyav"
    if chosen == "decord" and not decord_importable():
        raise UsageError("--decoder decord: decord cannot be imported here; use --decoder pyav (or auto)")
    return chosen


def open_backend(name: str | None, path: Path, num_threads: int = 1) -> Backend:
    """The backend `name` resolves to, opened on `path` (raises what the library raises)."""
    chosen = resolve_decoder(name)
    return DecordBackend(path, num_threads) if chosen == "decord" else PyAVBackend(path, num_threads)


class Backend:
    """What `VideoReader` needs of a decoder."""

    name: str
    n_frames: int  # frames the decoder finds in the file (packets of the video stream)
    fps: float  # 0.0 when the file does not say

    def start(self, until_corrupt: bool = False) -> None:
        """Read from the first frame again with a fresh decoder. `until_corrupt`: the stream ends
        before the first packet the demuxer flags as corrupt (where a truncated file was cut);
        `n_frames` may then shrink."""
        raise NotImplementedError

    def read(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """Frames [start, stop) in batches (n, H, W, 3) RGB uint8, fewer where the stream ends;
        raises the library's error on data it cannot decode."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class PyAVBackend(Backend):
    """PyAV decoding packets as it demuxes them: one decoded frame at a time in memory, whatever
    the file's keyframes. Opening demuxes the whole stream once (no decoding) to count its frames
    and find its keyframes, as decord does. A start that is not where the last read stopped seeks
    to the last keyframe at or before it (`container.seek`) and decodes forward to the wanted frame,
    found by its timestamp; where timestamps are missing or the seek lands elsewhere, it decodes
    forward from the first frame instead."""

    name = "pyav"

    def __init__(self, path: Path, num_threads: int = 1):
        import av

        self.path = Path(path)
        self._threads = max(1, int(num_threads))
        self._container = av.open(str(self.path))
        if not self._container.streams.video:
            self._container.close()
            raise ValueError("no video stream")
        stream = self._container.streams.video[0]
        pts, keys, intact = [], [], None
        for packet in self._container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if packet.is_corrupt and intact is None:
                intact = len(pts)
            if packet.is_keyframe and packet.pts is not None:
                keys.append((packet.pts, packet.pts if packet.dts is None else min(packet.pts, packet.dts)))
            pts.append(packet.pts)
        self._all = len(pts)
        self._intact = self._all if intact is None else intact
        self.n_frames = self._all
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        timed = None not in pts and len(set(pts)) == len(pts)
        self._pts = sorted(pts) if timed else None  # frame index -> presentation timestamp
        # (frame index of a keyframe, where to seek to reach it)
        self._keys = sorted((bisect.bisect_left(self._pts, p), at) for p, at in keys) if timed else []
        self._until_corrupt = False
        self._frames: Iterator | None = None  # decoded frames from `self._next` on
        self._next = 0

    def start(self, until_corrupt: bool = False) -> None:
        self._until_corrupt = until_corrupt
        self.n_frames = self._intact if until_corrupt else self._all
        self._frames = None

    def _decode(self, seek_to: int | None = None) -> Iterator:
        """Decoded frames from the start of the stream, or from the keyframe at timestamp `seek_to`."""
        import av

        if seek_to is None:  # a fresh container and decoder
            self._container.close()
            self._container = av.open(str(self.path))
        container = self._container
        stream = container.streams.video[0]
        codec = stream.codec_context
        if seek_to is None and self._threads > 1:
            codec.thread_type, codec.thread_count = "AUTO", self._threads
        if seek_to is not None:
            container.seek(seek_to, stream=stream, backward=True, any_frame=False)
            codec.flush_buffers()
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if self._until_corrupt and packet.is_corrupt:
                break
            yield from codec.decode(packet)
        yield from codec.decode(None)  # the frames the decoder still holds

    def _from_start(self, index: int) -> None:
        self._frames, self._next = self._decode(), 0
        for _ in range(index):
            if next(self._frames, None) is None:
                break
            self._next += 1

    def _go_to(self, index: int) -> None:
        """Position the decoder so that the next frame it yields is frame `index`."""
        key = bisect.bisect_right(self._keys, (index, float("inf"))) - 1
        first, seek_to = self._keys[key] if key >= 0 else (0, None)
        if self._frames is not None and first <= self._next <= index:  # no keyframe helps: decode on
            while self._next < index and next(self._frames, None) is not None:
                self._next += 1
            return
        if seek_to is None or first == 0:
            self._from_start(index)
            return
        frames = self._decode(seek_to)
        wanted = self._pts[index]
        for frame in frames:
            if frame.pts is None or frame.pts > wanted:
                break
            if frame.pts == wanted:
                self._frames, self._next = _chain(frame, frames), index
                return
        self._from_start(index)  # the seek did not land where the index says: count from the start

    def read(self, start: int, stop: int) -> Iterator[np.ndarray]:
        try:
            if self._frames is None or start != self._next:
                self._go_to(start)
            while self._next < stop:
                frame = next(self._frames, None)
                if frame is None:
                    return
                self._next += 1
                yield frame.to_ndarray(format="rgb24")[None]
        except BaseException:
            self._frames = None  # a failed decoder starts again on the next read
            raise

    def close(self) -> None:
        self._frames = None
        self._container.close()


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


class _Tail:
    """The rest of a file from frame `first`, decoded by PyAV: a piece of `DecordBackend` too long
    to hand to decord (or one decord cannot open)."""

    def __init__(self, path: Path, first: int, num_threads: int, until_corrupt: bool):
        self.decoder = PyAVBackend(path, num_threads)
        self.decoder.start(until_corrupt)
        self.first = first

    def __len__(self) -> int:
        return max(0, self.decoder.n_frames - self.first)

    def batch(self, lo: int, hi: int) -> np.ndarray:
        frames = list(self.decoder.read(self.first + lo, self.first + hi))
        return np.concatenate(frames) if frames else np.empty((0, 0, 0, 3), np.uint8)

    def close(self) -> None:
        self.decoder.close()


class DecordBackend(Backend):
    """decord over pieces of the file cut at keyframes.

    decord decodes on a thread of its own, fed with packets by the reading thread. Each time the
    reader finds no decoded frame ready, it pushes packets at file-read speed until one comes out,
    and the decoder then decodes every packet it was given: when featurizers are slower than
    decoding, frames pile up decoded ahead of the reader, as far as the input goes (peak memory
    grew with video length, up to the whole video). So decord never gets the whole file: PyAV cuts
    the video stream at keyframes into pieces of `SEGMENT_FRAMES` to `LONG_PIECE` frames,
    stream-copied into small in-memory Matroska files (no decoding), and decord decodes one piece at
    a time, the same frames, pixel for pixel. Where no keyframe comes for more than `LONG_PIECE`
    frames (a single-keyframe file, open GOPs only, see `_keyframe_pieces`), or a piece decord cannot
    open, PyAV decodes the rest of the file (`_Tail`), one frame at a time; only a file PyAV can
    neither cut nor decode is handed to decord whole.
    """

    name = "decord"

    def __init__(self, path: Path, num_threads: int = 1):
        import decord

        self.path = Path(path)
        self._num_threads = num_threads
        self._whole = decord.VideoReader(str(self.path), num_threads=num_threads)  # indexes packets, decodes nothing
        self.n_frames = len(self._whole)
        self.fps = float(self._whole.get_avg_fps())
        self._until_corrupt = False
        self._piece = None  # decord reader (or `_Tail`) of the piece of the file being read
        self._pieces: Iterator | None = None
        self._piece_len = self._piece_pos = 0
        self._piece_first = 0  # the video's frame index of the piece's first frame

    def start(self, until_corrupt: bool = False) -> None:
        """Pieces from the first frame on; decord over the whole file where PyAV can cut nothing."""
        import decord

        self._until_corrupt = until_corrupt
        try:
            self._first_piece()
            self._whole = None
            return
        except Exception:  # not cut into pieces (a stream PyAV cannot copy)
            pass
        try:
            self._drop_piece()
            self._pieces = None
            self._piece, self._piece_first, self._piece_pos = (
                _Tail(self.path, 0, self._num_threads, until_corrupt),
                0,
                0,
            )
            self._piece_len = len(self._piece)
            return
        except Exception:  # nor decode: decord reads it whole (decode-ahead unbounded for this file)
            pass
        whole = self._whole or decord.VideoReader(str(self.path), num_threads=self._num_threads)
        self._whole = None
        self._piece, self._piece_len, self._piece_pos, self._piece_first = whole, len(whole), 0, 0

    def _drop_piece(self) -> None:
        if isinstance(self._piece, _Tail):
            self._piece.close()
        self._piece = None

    def _first_piece(self) -> None:
        """Start reading the file's pieces from its first frame."""
        if self._pieces is not None:
            self._pieces.close()
        # a file kept truncated ends with the packet the cut went through (flagged corrupt): decord,
        # decoding ahead, would report it while earlier frames are read, or fail its first frame
        self._pieces = _keyframe_pieces(self.path, SEGMENT_FRAMES, self._until_corrupt, LONG_PIECE)
        self._drop_piece()
        self._piece_len, self._piece_pos, self._piece_first = 0, 0, 0
        if not self._next_piece():
            raise ValueError("no video packets")

    def _next_piece(self) -> bool:
        """Open the next piece of the file with decord; False when there is none."""
        import decord

        self._drop_piece()
        data = next(self._pieces, None)
        if data is None:
            return False
        first = self._piece_first + self._piece_len
        if data is not _LONG:
            try:
                piece = decord.VideoReader(io.BytesIO(data), num_threads=self._num_threads)
            except Exception:  # a piece decord cannot open is our cut, not the file: PyAV decodes the rest
                piece = None
            if piece is not None:
                self._piece_first = first
                self._piece, self._piece_len, self._piece_pos = piece, len(piece), 0
                return True
        self._pieces.close()
        self._pieces = None
        self._piece = _Tail(self.path, first, self._num_threads, self._until_corrupt)
        self._piece_first, self._piece_len, self._piece_pos = first, len(self._piece), 0
        return True

    def _go_to(self, start: int) -> None:
        """Position the reader at frame `start`: forward through pieces (copied, not decoded), or
        from the first piece again when `start` lies behind (a segment's frame before it); decord
        over the whole file, and PyAV for the rest of it, seek themselves."""
        if start < self._piece_first:
            self._first_piece()
        while self._pieces is not None and start >= self._piece_first + self._piece_len and self._next_piece():
            pass
        self._piece_pos = start - self._piece_first

    def _batch(self, lo: int, hi: int) -> np.ndarray:
        if isinstance(self._piece, _Tail):
            return self._piece.batch(lo, hi)
        return self._piece.get_batch(list(range(lo, hi))).asnumpy()

    def read(self, start: int, stop: int) -> Iterator[np.ndarray]:
        if self._piece is None:
            self.start(self._until_corrupt)
        if start != self._piece_first + self._piece_pos:
            self._go_to(start)
        at = start
        while at < stop:
            if self._piece_pos >= self._piece_len and (self._pieces is None or not self._next_piece()):
                return
            take = min(stop - at, self._piece_len - self._piece_pos)
            batch = self._batch(self._piece_pos, self._piece_pos + take)
            self._piece_pos += len(batch)
            at += len(batch)
            if len(batch):
                yield batch
            if len(batch) < take:  # PyAV found the stream ends here
                return

    @property
    def frame_reader(self):
        """What decodes the piece being read (a decord reader, or the `_Tail` decoded by PyAV)."""
        return self._piece

    def close(self) -> None:
        self._drop_piece()
        self._whole = None
        if self._pieces is not None:
            self._pieces.close()
            self._pieces = None


_LONG = object()  # `_keyframe_pieces`: the rest of the stream has no cut within `long_frames`


def _keyframe_pieces(
    path: Path, min_frames: int, until_corrupt: bool = False, long_frames: int | None = None
) -> Iterator[bytes | object]:
    """The video stream cut at keyframes into pieces of at least `min_frames` frames, each
    stream-copied (nothing decoded) into a small Matroska file in memory, for decord to decode.

    A piece starts only at a keyframe that starts a closed group of pictures: one whose next packet
    shows after it. Leading pictures (shown before the keyframe, decoded after it: open GOPs) refer
    to the frames before the keyframe, so there the cut waits for the next keyframe.

    The last piece is never shorter than `min_frames`: a stream that ends a few frames after a
    keyframe has that tail joined to the piece before it, because decord cannot open a Matroska
    file of three frames or fewer ("broken metadata"), which failed whole, valid videos.

    `long_frames`: a piece that would hold more frames than this (no usable keyframe for that long)
    is not made: `_LONG` comes instead, last, and the caller decodes the rest of the stream itself,
    from the frame after the pieces yielded (its packets are never all held in memory here).

    `until_corrupt`: the stream ends before the first packet the demuxer flags as corrupt (where a
    truncated file was cut)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets: list = []
        held: list | None = None  # a finished piece, yielded once the next one is known to be long enough
        cut = None  # index in `packets` of the keyframe a piece may start at
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if until_corrupt and packet.is_corrupt:
                break
            if cut is not None:
                key = packets[cut]
                if packet.pts is None or key.pts is None or packet.pts > key.pts:
                    if held is not None:
                        yield _matroska(stream, held)
                    held, packets = packets[:cut], packets[cut:]
                cut = None
            if packet.is_keyframe and len(packets) >= min_frames:
                cut = len(packets)
            packets.append(packet)
            if long_frames is not None and cut is None and len(packets) > long_frames:
                if held is not None:
                    yield _matroska(stream, held)
                yield _LONG
                return
        if held is not None and len(packets) < min_frames:
            held, packets = held + packets, []
        for piece in (held, packets):
            if piece:
                yield _matroska(stream, piece)


def _matroska(stream, packets: list) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="matroska") as container:
        copy = container.add_stream_from_template(stream)
        for packet in packets:
            packet.stream = copy
            container.mux(packet)
    return out.getvalue()
