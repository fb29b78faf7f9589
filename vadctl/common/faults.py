"""Fault injection at commit points, so tests can prove every data-changing path is crash-safe.

Code that changes data calls `fault_point("name")` between its steps. With the environment variable
`VADCTL_FAULT=name` (or `name@N`: the N-th time that point is reached) the process dies there at
once, as `kill -9` would (no cleanup, no flush). A point may carry a detail (`fault_point(name,
video_id)`): `VADCTL_FAULT=name:detail` fires only there, e.g. in whichever worker extracts that
video. `VADCTL_STALL` (same form) makes the process wait there instead, until a signal ends it:
a test can then interrupt a run at a known step, with no race against the run finishing.
Without either variable it costs two dict lookups.
"""

from __future__ import annotations

import os
import sys
import threading
import time

ENV = "VADCTL_FAULT"
STALL_ENV = "VADCTL_STALL"
EXIT_CODE = 86  # what a killed-by-fault process exits with, for tests to recognise
_counts: dict[tuple[str, str], int] = {}  # (variable's value, point) → times reached
_lock = threading.Lock()


def _reached(wanted: str, name: str, detail: str | None) -> bool:
    """Whether `wanted` (name[:detail][@N]) names this point, reached for the N-th time now."""
    point, _, nth = wanted.partition("@")
    point, _, only = point.partition(":")
    if point != name or (only and only != detail):
        return False
    with _lock:
        _counts[wanted, name] = reached = _counts.get((wanted, name), 0) + 1
    return reached >= (int(nth) if nth else 1)


def fault_point(name: str, detail: str | None = None) -> None:
    wanted = os.environ.get(ENV)
    if wanted and _reached(wanted, name, detail):
        sys.stderr.write(f"vadctl: injected fault at {name}\n")  # one line naming the point, for tests
        sys.stderr.flush()
        os._exit(EXIT_CODE)
    stall = os.environ.get(STALL_ENV)
    if stall and _reached(stall, name, detail):
        while True:  # until a signal (Ctrl-C, a pool shutting its workers down) ends the process
            time.sleep(0.1)
