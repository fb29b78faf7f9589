"""What an executor offers a driver (submit work, collect outcomes, stop), and what it is given
to run: a `Work`, which says how to set a worker up and how to perform one item, and nothing of
what the items are. Executors import nothing above `vadctl.common`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vadctl.common.progress import CallbackProgress, Progress


@dataclass(frozen=True)
class Work:
    """What a pool runs, picklable: `setup(recipe)` builds a worker's state once per worker process
    (or Ray actor); `perform(state, item, progress)` runs one item there and returns its outcome.
    `stateful`: the state holds loaded models worth keeping (Ray runs it in long-lived actors, each
    reserving `gpus`); otherwise any worker may rebuild it."""

    setup: Callable[[Any], Any]
    perform: Callable[[Any, Any, Progress], Any]
    recipe: Any
    stateful: bool = False
    gpus: float = 0.0

    def run(self, item: Any, progress: Progress) -> Any:
        """One item, in this process (the worker's state built on first use by `setup`)."""
        return self.perform(self.setup(self.recipe), item, progress)


class ForwardProgress(CallbackProgress):
    """A worker's progress events, each handed to `put` as (event, fields) for the driver; the
    driver announces each item's end itself."""

    def __init__(self, put: Callable[[tuple[str, dict]], Any]):
        super().__init__(lambda event, **fields: put((event, fields)))

    def video_finished(self, result) -> None:
        pass


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
        """Queue one item of work (an object with a `key`, unique among the run's items)."""

    @property
    @abstractmethod
    def busy(self) -> bool:
        """Whether submitted work has not all come back yet."""

    @abstractmethod
    def completed(self) -> list[tuple[Any, Any]]:
        """Wait for at least one outcome: [(item, outcome or Crashed)]."""

    def close(self, interrupted: bool = False) -> None:  # noqa: B027 - nothing to release by default
        """Release workers; `interrupted`: stop running work now (Ctrl-C), committed videos stay."""
