"""What an executor offers the driver: submit work, collect outcomes, stop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from vadctl.progress import Progress


@dataclass
class Crashed:
    """The outcome of work whose worker process died on every attempt it was given."""

    reason: str


class Pool(ABC):
    """An executor as the driver sees it. Outcomes of work come back from `completed`, in any
    order; progress events of workers reach `progress` (on the caller's thread) meanwhile."""

    progress: Progress = Progress()

    def start(self, progress: Progress) -> None:
        self.progress = progress

    @abstractmethod
    def submit(self, item: Any) -> None:
        """Queue one unit of work (see `vadctl.executors.work`)."""

    @property
    @abstractmethod
    def busy(self) -> bool:
        """Whether submitted work has not all come back yet."""

    @abstractmethod
    def completed(self) -> list[tuple[Any, Any]]:
        """Wait for at least one outcome: [(item, outcome or Crashed)]."""

    def close(self, interrupted: bool = False) -> None:  # noqa: B027 - nothing to release by default
        """Release workers; `interrupted`: stop running work now (Ctrl-C), committed videos stay."""
