"""Where work runs: here (serial), in a local process pool, or on a Ray cluster.

A pool is given a `Work` (how to set a worker up, how to perform one item; both picklable) and
items; it returns each item's outcome, or `Crashed` when the worker running it died on every
attempt. Pools know nothing of what the work is (extraction hands them videos and segments: see
`vadctl.extraction.driver`), so a store written in parallel equals one written serially. They
only differ in where work runs and how a dead worker is noticed and retried:

- `serial.SerialPool`: in this process, one item after another (`--workers 1`, the default).
- `local.LocalPool`: a `concurrent.futures.ProcessPoolExecutor` of N spawned processes.
- `ray_pool.RayPool`: Ray tasks (actors for stateful work), retried by Ray; work lost with its
  node or actor is submitted again (to a live actor), a bounded number of times.

A new executor is one module here, and its name and constructor in `choose.py`.
"""

from __future__ import annotations

from vadctl.executors.base import Crashed, ForwardProgress, Pool, Work

__all__ = ["Crashed", "ForwardProgress", "Pool", "Work"]
