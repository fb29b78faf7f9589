"""Keep what native decoders print (FFmpeg, decord, libpng) off the terminal, and hand it to the
code that was reading, so it can name the cause of a failure.

FFmpeg writes its complaints to file descriptor 2 from its own threads, at any time while a
decoder exists, so redirecting around single calls misses some. Instead, while any reader holds
this (`hold()`), fd 2 goes to a temporary file and Python's own `sys.stderr` keeps writing to the
real terminal through a duplicate of the old fd 2 (progress bars, warnings, errors are unaffected).
Readers take the lines captured since they last looked (`Held.take()`). When the last holder lets
go, fd 2 is restored and captured lines nobody took that do not look like decoder chatter are
written to the terminal, so messages of other native libraries are delayed, never lost.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import time
from typing import IO

_lock = threading.Lock()
_state: dict = {"holders": 0}

# '[h264 @ 0x55d0c8a1c2c0] error while decoding MB 3 4' or decord's '[10:31:02] /…/video_reader.cc:83: ERROR …'
_FFMPEG = re.compile(r"^\[(?P<who>[^\]@]+?)\s*@\s*0x[0-9a-f]+\]\s*(?P<text>.*)$")
_PREFIX = re.compile(r"\[[^\]\[@]+?\s*@\s*0x[0-9a-f]+\]\s*")  # anywhere in a line
_DECORD = re.compile(r"^\[\d\d:\d\d:\d\d\]\s+\S+:\d+:\s*(?P<text>.*)$")


def decoder_line(line: str) -> str | None:
    """'h264: error while decoding MB 3 4' for an FFmpeg/decord log line, None for anything else."""
    line = line.strip()
    match = _FFMPEG.match(line)
    if match:
        return f"{match['who'].strip()}: {match['text'].strip()}".strip(": ")
    match = _DECORD.match(line)
    if match:
        return match["text"].strip()
    return None


class Held:
    """One holder's view of the captured output."""

    def __init__(self) -> None:
        self.released = False

    def take(self) -> list[str]:
        """Decoder lines captured since anyone last took them (decoder threads may print late: call
        again); other lines are kept for the terminal."""
        with _lock:
            return _decoder_lines(_drain())

    def release(self) -> list[str]:
        """Stop holding; returns the decoder lines not taken yet."""
        with _lock:
            if self.released:
                return []
            self.released = True
            lines = _decoder_lines(_drain())
            _state["holders"] -= 1
            if _state["holders"] == 0:
                _restore()
            return lines


def _decoder_lines(lines: list[str]) -> list[str]:
    """The decoder's lines, each with its own prefix; anything else waits for the terminal.

    FFmpeg writes a message's prefix ('[mpeg4 @ 0x…] ') and its text in separate writes, so two
    decoder threads interleave them: '[mpeg4 @ 0xA] [mpeg4 @ 0xB] text B' then 'text A'. A line
    holding several prefixes leaves the earlier ones waiting (`_state["prefixes"]`, across looks),
    and the next lines without a prefix are their texts, in order."""
    prefixes: list[str] = _state.setdefault("prefixes", [])
    others = _state.setdefault("others", [])
    mine = []
    for line in lines:
        found = list(_PREFIX.finditer(line))
        if found:
            lead = line[: found[0].start()]
            if lead.strip():
                others.append(lead)
            prefixes.extend(match.group(0).strip() for match in found[:-1])
            mine.append(line[found[-1].start() :])
        elif prefixes and line.strip():
            mine.append(f"{prefixes.pop(0)} {line.strip()}")
        elif decoder_line(line) is not None:
            mine.append(line)
        elif line.strip():
            others.append(line)
    return mine


def hold() -> Held:
    """Start (or join) the capture; pair with `Held.release()`."""
    with _lock:
        if _state["holders"] == 0:
            _redirect()
        _state["holders"] += 1
    return Held()


def _redirect() -> None:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        _state["saved"] = None  # no usable fd 2: nothing to protect
        return
    sink = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (kept open while held)
    os.dup2(sink.fileno(), 2)
    _state.update(saved=saved, sink=sink, offset=0, python=None)
    try:
        python_fd = sys.stderr.fileno()
    except (OSError, ValueError, AttributeError):
        python_fd = None
    if python_fd == 2:  # Python writes through fd 2: point it at the terminal instead
        _state["python"] = sys.stderr
        sys.stderr = _state["ours"] = _terminal(saved, sys.stderr)


def _terminal(fd: int, like: IO) -> IO:
    encoding = getattr(like, "encoding", None) or "utf-8"
    errors = getattr(like, "errors", None) or "backslashreplace"
    return open(os.dup(fd), "w", buffering=1, encoding=encoding, errors=errors, closefd=True)


def _drain() -> list[str]:
    sink = _state.get("sink")
    if sink is None:
        return []
    sink.seek(_state["offset"])
    data = sink.read()
    end = data.rfind(b"\n") + 1  # keep a half-written last line for the next look
    _state["offset"] += end
    return data[:end].decode(errors="replace").splitlines()


QUIET_SECONDS, LONGEST_WAIT = 0.1, 1.0


def _wait_until_quiet(sink) -> None:
    """A decoder that printed may still be printing from its own thread (decord decodes ahead, and
    a failed read's traceback can keep its reader alive): restoring fd 2 then would send the rest
    of a line, or the next ones, to the terminal. So once anything was printed, wait until nothing
    more comes for `QUIET_SECONDS` (at most `LONGEST_WAIT`); a clean read never waits."""
    size = os.fstat(sink.fileno()).st_size
    if not size:
        return
    deadline = time.monotonic() + LONGEST_WAIT
    while time.monotonic() < deadline:
        time.sleep(QUIET_SECONDS)
        now = os.fstat(sink.fileno()).st_size
        if now == size:
            return
        size = now


def _restore() -> None:
    saved = _state.get("saved")
    if saved is None:
        return
    _wait_until_quiet(_state["sink"])
    _decoder_lines(_drain())
    sink = _state.get("sink")
    sink.seek(_state["offset"])
    tail = sink.read().decode(errors="replace")
    if tail.strip() and decoder_line(tail) is None:
        _state["others"].append(tail.rstrip("\n"))
    ours, theirs = _state.get("ours"), _state.get("python")
    if theirs is not None and sys.stderr is ours:  # someone who swapped it meanwhile keeps theirs
        ours.flush()
        ours.close()
        sys.stderr = theirs
    os.dup2(saved, 2)
    os.close(saved)
    sink.close()
    others, _state["others"] = _state.get("others", []), []
    _state.update(saved=None, sink=None, python=None, ours=None, prefixes=[])
    if others:
        sys.stderr.write("\n".join(others) + "\n")
        sys.stderr.flush()
