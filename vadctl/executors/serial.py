"""Work in this process, one item after another: `--workers 1`, and the reference every parallel
executor must equal."""

from __future__ import annotations

from collections import deque
from typing import Any

from vadctl.executors.base import Pool, Work


class SerialPool(Pool):
    def __init__(self, work: Work):
        self.work = work
        self.queue: deque = deque()

    def submit(self, item: Any) -> None:
        self.queue.append(item)

    @property
    def busy(self) -> bool:
        return bool(self.queue)

    def completed(self) -> list[tuple[Any, Any]]:
        item = self.queue.popleft()
        return [(item, self.work.run(item, self.progress))]
