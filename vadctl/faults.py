"""Fault injection at commit points, so tests can prove every data-changing path is crash-safe.

Code that changes data calls `fault_point("name")` between its steps. With the environment variable
`VADCTL_FAULT=name` (or `name@N`: the N-th time that point is reached) the process dies there at
once, as `kill -9` would (no cleanup, no flush). Without the variable it costs one dict lookup.
"""

from __future__ import annotations

import os
import threading

EXIT_CODE = 86  # what a killed-by-fault process exits with, for tests to recognise
_counts: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(name: str) -> None:
    wanted = os.environ.get("VADCTL_FAULT")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        reached = _counts[name]
    if reached >= (int(nth) if nth else 1):
        os._exit(EXIT_CODE)
