"""Work as Ray tasks on a Ray cluster, or on a local one.

- **Tasks.** Stateless work (weight-free extraction): one Ray task per item (`num_cpus=1`).
  Stateful work (`Work.stateful`: weighted featurizers such as CLIP, X3D, RAFT, pose): a set of
  Ray actors, each building its state once (`Work.setup`), so a model is loaded once per actor
  and stays there; each actor reserves `Work.gpus` (`-p clip.num_gpus=0.25`: four actors share a
  GPU).
- **Where data lives.** Tasks open the store by its path: every node must see the same store at
  the same path (a shared filesystem that honours POSIX locks: the per-video lock files), and the
  videos at their paths. Tasks write their own videos; the driver writes nothing to the store.
- **Retries.** A task whose worker process dies is retried by Ray (`max_retries=1`; actors are
  restarted, `max_restarts`/`max_task_retries`); the retry re-plans under the video's lock and
  redoes the video from its committed state. Work that fails again comes back as `Crashed`.
- **Progress.** Workers put events on a `ray.util.queue.Queue`; the driver forwards them.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from vadctl.common.threads import limit_threads
from vadctl.executors.base import Crashed, ForwardProgress, Pool, Work

RETRIES = 1
POLL_SECONDS = 0.2
_limited = False


def _prepare_worker() -> None:
    """Once per Ray worker process: one thread per library (the task holds one CPU)."""
    global _limited
    if not _limited:
        limit_threads(1)
        _limited = True


def _run_task(work: Work, item, events):
    _prepare_worker()
    return work.run(item, ForwardProgress(events.put_nowait))


class _WorkActor:
    """Holds the work's state (e.g. loaded models) for the actor's life."""

    def __init__(self, work: Work, events):
        _prepare_worker()
        self.work = work
        self.progress = ForwardProgress(events.put_nowait)
        work.setup(work.recipe)

    def perform(self, item):
        return self.work.run(item, self.progress)


class RayPool(Pool):
    def __init__(self, work: Work, address: str | None, max_in_flight: int | None = None):
        self.work = work
        self.address = address
        self.max_in_flight = max_in_flight
        self.futures: dict[Future, tuple[Any, int | None, Any]] = {}  # future → (item, actor slot, ref)
        self.waiting: deque = deque()
        self.started_ray = False
        self.actors: list = []
        self.load: dict[int, int] = {}
        self.startup_seconds = 0.0

    def start(self, progress) -> None:

        import ray
        from ray.util.queue import Queue

        super().start(progress)
        began = time.perf_counter()
        if not ray.is_initialized():
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
            self.started_ray = True
        self.events = Queue(actor_options={"num_cpus": 0})
        if self.work.stateful:
            self._start_actors(ray)
        else:
            self.task = ray.remote(num_cpus=1, max_retries=RETRIES)(_run_task)
        self.startup_seconds = time.perf_counter() - began

    def _start_actors(self, ray) -> None:
        gpus = self.work.gpus
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = self.max_in_flight or cpus
        if gpus > 0:
            count = min(count, max(1, int(ray.cluster_resources().get("GPU", 0) / gpus)))
        actor = ray.remote(_WorkActor).options(
            num_cpus=1, num_gpus=gpus, max_restarts=RETRIES, max_task_retries=RETRIES
        )
        self.actors = [actor.remote(self.work, self.events) for _ in range(count)]
        self.load = dict.fromkeys(range(count), 0)

    def submit(self, item: Any) -> None:
        if self.max_in_flight and len(self.futures) >= self.max_in_flight:
            self.waiting.append(item)
            return
        if self.actors:  # the actor with the least work queued (Ray runs each actor's calls in order)
            index = min(self.load, key=self.load.get)
            self.load[index] += 1
            ref = self.actors[index].perform.remote(item)
            slot = index
        else:
            ref = self.task.remote(self.work, item, self.events)
            slot = None
        self.futures[ref.future()] = (item, slot, ref)

    @property
    def busy(self) -> bool:
        return bool(self.futures or self.waiting)

    def _forward_events(self) -> None:
        while True:
            try:
                batch = self.events.get_nowait_batch(max(1, min(self.events.qsize(), 1000)))
            except (queue.Empty, Exception):
                return
            if not batch:
                return
            for event, fields in batch:
                getattr(self.progress, event)(**fields)

    def completed(self) -> list[tuple[Any, Any]]:
        while True:
            done, _ = wait(list(self.futures), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            self._forward_events()
            if not done:
                continue
            outcomes = []
            for future in done:
                item, slot, _ = self.futures.pop(future)
                if slot is not None:
                    self.load[slot] -= 1
                try:
                    outcomes.append((item, future.result()))
                except Exception as error:  # the worker died on every attempt Ray gave it
                    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                    outcomes.append((item, Crashed(f"Ray could not run it ({type(error).__name__}): {reason}")))
            while self.waiting and len(self.futures) < (self.max_in_flight or 1 << 30):
                self.submit(self.waiting.popleft())
            return outcomes

    def close(self, interrupted: bool = False) -> None:
        import ray

        if not ray.is_initialized():
            return
        if interrupted:
            for _, slot, ref in self.futures.values():
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=slot is None)  # tasks: their worker is killed; actors are killed below
            self.waiting.clear()
        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        with contextlib.suppress(Exception):
            self._forward_events()
            ray.kill(self.events.actor)
        if self.started_ray:
            ray.shutdown()
