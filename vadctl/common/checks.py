"""Checks of option values and output paths, made before a job does any work.

A job that finds a bad value only when it first uses it has already created stores, marked videos
failed or trained for an hour; these checks run first and fail with one line that names the option
and says what it takes. Used by `vadctl.api` (so the CLI, job files and Python callers get the same
checks) and by CLI commands for what only they write.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from vadctl.errors import UsageError


def whole(value, option: str, minimum: int = 1) -> int:
    """An integer ≥ `minimum` (bools and 2.5 are refused; 2.0 is 2)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(f"{option} {value!r}: must be a whole number ≥ {minimum}")
    if isinstance(value, numbers.Integral) or (math.isfinite(value) and float(value).is_integer()):
        number = int(value)
    else:
        raise UsageError(f"{option} {value!r}: must be a whole number ≥ {minimum}")
    if number < minimum:
        raise UsageError(f"{option} {value!r}: must be a whole number ≥ {minimum}")
    return number


def real(
    value,
    option: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> float:
    """A finite number within the given bounds (NaN and infinity are refused)."""
    bounds = [
        f"> {above:g}" if above is not None else "",
        f"≥ {at_least:g}" if at_least is not None else "",
        f"< {below:g}" if below is not None else "",
        f"≤ {at_most:g}" if at_most is not None else "",
    ]
    wanted = " and ".join(b for b in bounds if b) or "finite"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise UsageError(f"{option} {value!r}: must be a number {wanted}")
    number = float(value)
    if (
        (above is not None and not number > above)
        or (at_least is not None and not number >= at_least)
        or (below is not None and not number < below)
        or (at_most is not None and not number <= at_most)
    ):
        raise UsageError(f"{option} {value!r}: must be a number {wanted}")
    return number


def seconds_text(seconds: float) -> str:
    """A duration as given: 0.5 s stays 0.5 s, 3600 s stays 3600 s."""
    return f"{seconds:g} s"


def _blocking_ancestor(path: Path) -> Path | None:
    """The first existing ancestor of `path` that is not a folder (a file in the way), if any."""
    for parent in reversed(path.absolute().parents):
        if parent.exists() and not parent.is_dir():
            return parent
        if not parent.exists():
            return None
    return None


def _unwritable_folder(path: Path) -> Path | None:
    """The nearest existing ancestor folder, when the user cannot create files in it."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if os.access(parent, os.W_OK | os.X_OK) else parent
    return None


def output_file(path: Path | str, option: str) -> Path:
    """A file the job will write: not a folder, and not below a file or a read-only folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    blocking = _blocking_ancestor(path)
    if blocking is not None:
        raise UsageError(f"{option} {path}: {blocking} is a file, not a folder")
    denied = _unwritable_folder(path)
    if denied is not None:
        raise UsageError(f"{option} {path}: cannot write in {denied} (no permission, or a read-only file system)")
    return path


def output_folder(path: Path | str, option: str) -> Path:
    """A folder the job will write files into: a folder or nothing yet, not below a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, not a folder")
    blocking = _blocking_ancestor(path)
    if blocking is not None:
        raise UsageError(f"{option} {path}: {blocking} is a file, not a folder")
    denied = path if path.is_dir() and not os.access(path, os.W_OK | os.X_OK) else _unwritable_folder(path)
    if denied is not None:
        raise UsageError(f"{option} {path}: cannot write in {denied} (no permission, or a read-only file system)")
    return path


_SPLIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
MAX_SPLIT = 64


def check_split(split: str) -> str:
    if not isinstance(split, str) or not split or not set(split) <= _SPLIT_CHARS or len(split) > MAX_SPLIT:
        raise UsageError(
            f"split {split!r}: use letters, digits, '-' and '_' only, at most {MAX_SPLIT} (e.g. train, test)"
        )
    return split


def check_video_id(video_id: str) -> str:
    """Ids are relative paths ('cam1/2024-01-01'): never empty, and no part may be '.' or '..'."""
    if not isinstance(video_id, str) or not video_id.strip():
        raise UsageError(f"video id {video_id!r}: must not be empty")
    parts = video_id.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UsageError(f"video id {video_id!r}: empty, '.' and '..' path parts are not allowed")
    return video_id
