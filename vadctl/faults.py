"""Fault injection at named commit points, so tests can prove a crash anywhere loses nothing.

`VADCTL_FAULT=<point>` makes the process die (`os._exit`, no cleanup, no `finally`, like kill -9)
the first time it reaches `fault_point("<point>")`; `<point>:N` dies the N-th time instead. Unset,
a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys

ENV = "VADCTL_FAULT"
EXIT_CODE = 86  # what a process killed by an injected fault exits with (tests check it)

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Die here when $VADCTL_FAULT names this point (and this is the hit it asks for)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= (int(nth) if nth.isdigit() else 1):
        sys.stderr.write(f"vadctl: injected fault at {name}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
