"""Writing a file so that it is either the old one or the new one, never half of either.

The data goes to a temporary file beside the target (same folder, so the rename is atomic), which
is then renamed over it. A run killed mid-write leaves only a hidden temporary file; the next write
to the same target removes such leftovers once they are older than any live writer could be.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STALE_SECONDS = 600


def _remove_stale(folder: Path, prefix: str) -> None:
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp"):
            path = folder / name
            try:
                if now - path.stat().st_mtime > STALE_SECONDS:
                    path.unlink()
            except OSError:
                continue


def write_atomic(path: Path | str, write: Callable[[str], None]) -> Path:
    """Call `write(temporary path)`, then rename the result to `path`; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    _remove_stale(path.parent, prefix)
    handle, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
