"""Checking executor options (before anything is written) and building the chosen pool."""

from __future__ import annotations

import re
from importlib.util import find_spec
from typing import TYPE_CHECKING

from vadctl.errors import UsageError
from vadctl.executors.local import LocalPool
from vadctl.executors.ray_pool import RayPool
from vadctl.executors.serial import SerialPool

if TYPE_CHECKING:
    from vadctl.executors.base import Pool, Work

EXECUTORS = ("local", "ray")
RAY_ADDRESS = re.compile(r"^(auto|ray://[\w.\-\[\]:]+:\d{1,5}|[\w.\-]+:\d{1,5})$")


def check_workers(workers: object, option: str = "--workers") -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"{option} {workers!r}: must be a whole number of processes ≥ 1")
    return workers


def check_executor(executor: str, workers: int, ray_address: str | None, segment_frames: int | None) -> None:
    """One-line errors naming the option, for values that cannot work."""
    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: use local (processes on this machine) or ray")
    check_workers(workers)
    if segment_frames is not None and (
        isinstance(segment_frames, bool) or not isinstance(segment_frames, int) or segment_frames < 0
    ):
        raise UsageError(f"--segment-frames {segment_frames!r}: a number of frames ≥ 0 (0: never split)")
    if ray_address is not None and executor != "ray":
        raise UsageError("--ray-address applies to --executor ray")
    if executor == "ray":
        if ray_address is not None and not RAY_ADDRESS.match(ray_address):
            raise UsageError(f"--ray-address {ray_address!r}: use auto, ray://HOST:PORT or HOST:PORT")
        if find_spec("ray") is None:
            raise UsageError("--executor ray needs Ray, which is not installed: pip install 'vadctl[ray]'")


def make_pool(work: Work, executor: str, workers: int, ray_address: str | None) -> Pool:
    """The pool that runs `work`: here (`--workers 1`), in local processes, or on Ray. Imported only
    when chosen, so a serial run never loads Ray."""
    if executor == "ray":
        return RayPool(work, ray_address, max_in_flight=workers if workers > 1 else None)
    if workers == 1:
        return SerialPool(work)

    return LocalPool(work, workers)
