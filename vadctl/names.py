"""Rules for the names users give: splits and video ids (checked before anything is written)."""

from __future__ import annotations

from vadctl.errors import UsageError

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
