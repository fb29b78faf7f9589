"""Threads per worker, so N worker processes do not oversubscribe the cores.

Each library keeps its own thread pool sized to the machine: OpenMP/BLAS (numpy, faiss), OpenCV,
torch, and the flow featurizer's pair pool. In a worker they get cores // workers threads each.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

from vadctl.errors import UsageError

# OpenCV is imported inside the functions that use it: importing this module stays cheap (CLI start-up).

_limits = None  # threadpoolctl's limiter, kept alive for the worker's life
_cap: int | None = None  # the cap `limit_threads` set in this process
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def limit_threads(threads: int) -> None:
    """Cap this process's thread pools (libraries imported later read the variables)."""
    global _limits
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    _limits = threadpool_limits(limits=threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:  # otherwise torch reads OMP_NUM_THREADS when it is imported
        sys.modules["torch"].set_num_threads(threads)
    global _cap
    _cap = threads


def thread_cap(default: int) -> int:
    """The threads this process may use for its own pools (a worker's share of the cores, set by
    `limit_threads`), else `default`: the flow featurizer sizes its pair pool by it."""
    return _cap if _cap is not None else default


@contextlib.contextmanager
def blas_threads() -> Iterator[None]:
    """BLAS on one thread unless VADCTL_BLAS_THREADS says otherwise.

    Model matrices here are small, so threads gain little; on a busy machine multi-threaded
    OpenBLAS spin-waits for cores it does not get (measured: a 320×480 SVD took 3.2 s on 2 threads
    against 0.023 s on 1, at load 6.8 on 2 cores).
    """
    text = os.environ.get("VADCTL_BLAS_THREADS", "1")
    try:
        limit = max(1, int(text))
    except ValueError:
        raise UsageError(f"VADCTL_BLAS_THREADS={text!r}: expected a whole number of threads") from None
    with threadpool_limits(limits=limit, user_api="blas"):
        yield
