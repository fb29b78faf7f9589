"""Batched inference that keeps the model busy: the next batch is prepared while this one runs.

Preparing (crop, resize, normalise, copy to the device) runs on a worker thread; torch and the
image kernels release the GIL, so on a GPU the host work hides behind the model. On a CPU the two
share the cores and `overlap=False` runs them one after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Pipeline:
    """`run(prepare(batch))` for each batch, preparing batch i+1 while batch i runs."""

    def __init__(self, overlap: bool):
        self.overlap = overlap
        self._pool: ThreadPoolExecutor | None = None

    def map(self, batches: Sequence[T], prepare: Callable[[T], U], run: Callable[[U], V]) -> list[V]:
        if not batches:
            return []
        if not self.overlap or len(batches) == 1:
            return [run(prepare(batch)) for batch in batches]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vadctl-prepare")
        results = []
        pending = self._pool.submit(prepare, batches[0])
        for following in [*batches[1:], None]:
            ready = pending.result()
            if following is not None:
                pending = self._pool.submit(prepare, following)
            results.append(run(ready))
        return results
