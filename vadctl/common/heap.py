"""Large buffers handed back to the operating system when freed, so an extract's memory stays flat.

glibc serves allocations above its mmap threshold with mmap and returns them on free, but the
threshold is dynamic: once such a block is freed, glibc raises it to that block's size, and from
then on frames, crop batches and encoded chunks come from the heaps of the threads that made them
(the extract's lanes are threads), where they fragment. Measured on the weighted extract of a
3,000-frame video: RSS kept creeping (563 MB after 500 frames, 577 MB at 2,800; 680 MB peak at
6,000 frames) and stayed at 450-465 MB from frame 300 on with the threshold fixed. Fixing the
threshold (which turns the dynamic rule off) is glibc's documented remedy (mallopt(3)).

It is fixed at 1 MiB, not at glibc's initial 128 KiB: at 128 KiB every 360×240 RGB frame (253 KiB)
and flow field was a fresh mapping whose pages the kernel zeroed on first touch, and the weighted
extract ran 10-25 % slower (Ped2 train 01-03: 16.2/14.8 s against 18.0/19.4 s, alternating); with
1 MiB its peak stays flat (450 MB at 200 frames, 524 MB at 20,000; 436/493 MB at 128 KiB).
`benchmarks/RESULTS.md` has the figures. It is done where a process starts extracting; a threshold
the user set (`MALLOC_MMAP_THRESHOLD_`) is kept, and other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
THRESHOLD_BYTES = 1024 * 1024  # fixed: buffers above it are mapped, and unmapped when freed
_done = False


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold for this process (once); False where nothing was changed."""
    global _done
    if _done:
        return True
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
    return _done
