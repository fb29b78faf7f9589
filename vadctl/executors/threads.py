"""Threads per worker, so N worker processes do not oversubscribe the cores.

Each library keeps its own thread pool sized to the machine: OpenMP/BLAS (numpy, faiss), OpenCV,
torch, and the flow featurizer's pair pool. In a worker they get cores // workers threads each.
"""

from __future__ import annotations

import os
import sys

_limits = None  # threadpoolctl's limiter, kept alive for the worker's life
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def limit_threads(threads: int) -> None:
    """Cap this process's thread pools (libraries imported later read the variables)."""
    global _limits
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:  # otherwise torch reads OMP_NUM_THREADS when it is imported
        sys.modules["torch"].set_num_threads(threads)
    from vadctl.features.registry import featurizer_class

    featurizer_class("flow").workers = threads  # DIS pairs computed at once
