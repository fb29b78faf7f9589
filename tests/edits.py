"""A same-size edit the sampled fingerprint cannot see: an uncompressed video whose frames in the
middle are zeroed in place (~200 KB), size and mtime kept, first, middle and last blocks untouched."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from videos import render

ZEROED = slice(3, 11)  # frames zeroed by the edit: ~197 KB of pixels, all before the file's middle


def write_raw_video(path: Path, frames: np.ndarray, fps: float = 10.0) -> Path:
    """RGBA frames stored as they are (no compression): 24.6 KB a frame at 96×64, lossless."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"RGBA"), fps, (w, h), True)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def raw_video(path: Path, n_frames: int = 40, seed: int = 1, **kwargs) -> Path:
    return write_raw_video(path, render(n_frames, seed=seed, **kwargs))


def zero_frames_in_place(path: Path, n_frames: int = 40, seed: int = 1, **kwargs) -> np.ndarray:
    """Overwrite `path` (written by `raw_video` with these arguments) with the same video whose
    frames `ZEROED` are black: same size, same mtime, only bytes between the sampled blocks differ.
    Returns the new frames."""
    frames = render(n_frames, seed=seed, **kwargs)
    frames[ZEROED] = 0
    edited = write_raw_video(path.with_name(f".edited-{path.name}"), frames)
    before, after = path.read_bytes(), edited.read_bytes()
    edited.unlink()
    assert len(before) == len(after)
    changed = np.nonzero(np.frombuffer(before, np.uint8) != np.frombuffer(after, np.uint8))[0]
    assert changed.min() >= 64 * 1024 and changed.max() < len(before) // 2  # between the sampled blocks
    stat = path.stat()
    with path.open("r+b") as handle:  # in place, as a disk error or an editing tool would
        handle.write(after)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return frames
