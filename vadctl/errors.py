"""Errors a user can act on.

Library code raises these with a message that names the thing at fault and the problem, in one
line; the CLI prints the message and exits non-zero. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class VadctlError(Exception):
    """An error with a one-line, user-facing message."""


class UsageError(VadctlError):
    """A bad argument, option value or name."""


class VideoError(VadctlError):
    """A video that cannot be found, opened or decoded."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class TruncatedVideoError(VideoError):
    """A video whose decoding ends early against the frame count (or duration × rate) its
    container declares: `frames` decodable, `declared` promised."""

    def __init__(self, path: Path | str, frames: int, declared: int, detail: str = "", found: bool = False):
        self.frames, self.declared = frames, declared
        if found:  # counted in the file before decoding
            reason = f"truncated: the file holds {frames} of the {declared} frames the container declares"
        else:
            reason = f"truncated: decoded {frames} of {declared} frames the container declares"
        super().__init__(path, f"{reason} ({detail})" if detail else reason)


class StoreError(VadctlError):
    """A feature store that is missing, of another schema, busy or inconsistent."""


class StoreBusyError(StoreError):
    """Another process holds the lock this operation needs."""


class FeatureError(VadctlError):
    """A feature that is unknown, missing from the store or ambiguous."""


class WeightsError(VadctlError):
    """Model weights that are missing or unreadable."""


class ModelFileError(VadctlError):
    """A model file that is missing, foreign, tampered with or fitted on other features."""
