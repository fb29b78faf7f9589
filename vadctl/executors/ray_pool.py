"""Work as Ray tasks on a Ray cluster, or on a local one.

- **Tasks.** Stateless work (weight-free extraction): one Ray task per item (`num_cpus=1`).
  Stateful work (`Work.stateful`: weighted featurizers such as CLIP, X3D, RAFT, pose): a set of
  Ray actors, each building its state once (`Work.setup`), so a model is loaded once per actor
  and stays there; each actor reserves `Work.gpus` (`-p clip.num_gpus=0.25`: four actors share a
  GPU).
- **Where data lives.** Tasks open the store by its path: every node must see the same store at
  the same path (a shared filesystem that honours POSIX locks: the per-video lock files), and the
  videos at their paths. Tasks write their own videos; the driver writes nothing to the store.
- **Retries.** A task whose worker process dies is retried by Ray (`max_retries=1`); one that
  fails again comes back as `Crashed`. Work lost with its node (a task's `NodeDiedError`) or its
  actor (an actor's process or node died: `ActorDiedError`, `ActorUnavailableError`) is submitted
  again, to a live actor, up to `ATTEMPTS` times in all, then comes back as `Crashed`. An actor
  that died is restarted by Ray (`max_restarts=-1`) and given work again once it is back; work is
  never queued on an actor that is restarting (its node may be gone for good). A retry re-plans
  under the video's lock and redoes the video from its committed state: a video committed just
  before its node died is found up to date.
- **Output.** Ray's driver prints the cluster's messages (a task failed and is retried) on
  stdout; while the pool runs they go to stderr, so stdout holds only vadctl's (`--json`).
- **Progress.** Workers put events on a `ray.util.queue.Queue` whose actor lives on the driver's
  node; the driver forwards them. Progress is best effort: should the queue be lost, workers and
  driver go on without it, and no work fails for it.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from vadctl.common.threads import limit_threads
from vadctl.executors.base import Crashed, ForwardProgress, Pool, Work

RETRIES = 1  # Ray's retries of a task whose worker process died
ATTEMPTS = 3  # submissions of one item whose node or actor was lost
RESTART_SECONDS = 600.0  # with no actor alive, how long to wait for one to come back
POLL_SECONDS = 0.2
_limited = False


def _prepare_worker() -> None:
    """Once per Ray worker process: one thread per library (the task holds one CPU)."""
    global _limited
    if not _limited:
        limit_threads(1)
        _limited = True


class _Events:
    """A worker's side of the progress queue: puts that fail (the queue's node is unreachable)
    drop this and later events instead of failing the work."""

    def __init__(self, events):
        self.events = events
        self.lost = False

    def put(self, event) -> None:
        if not self.lost:
            try:
                self.events.put_nowait(event)
            except Exception:
                self.lost = True


def _run_task(work: Work, item, events):
    _prepare_worker()
    return work.run(item, ForwardProgress(_Events(events).put))


class _WorkActor:
    """Holds the work's state (e.g. loaded models) for the actor's life."""

    def __init__(self, work: Work, events):
        _prepare_worker()
        self.work = work
        self.progress = ForwardProgress(_Events(events).put)
        work.setup(work.recipe)

    def ready(self) -> bool:
        return True

    def perform(self, item):
        return self.work.run(item, self.progress)


def _lost(error: BaseException) -> bool:
    """Whether work failed with its node or actor (to be submitted again), rather than by itself
    or by a worker process that kept dying on it."""
    from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError

    return isinstance(error, RayActorError | NodeDiedError | ObjectLostError)


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else type(error).__name__
    return f"Ray could not run it ({type(error).__name__}): {first}"


class RayPool(Pool):
    def __init__(self, work: Work, address: str | None, max_in_flight: int | None = None):
        self.work = work
        self.address = address
        self.max_in_flight = max_in_flight
        self.futures: dict[Future, tuple[Any, int | None, Any]] = {}  # future → (item, actor slot, ref)
        self.waiting: deque = deque()
        self.started_ray = False
        self.actors: list = []
        self.load: dict[int, int] = {}  # live actor slot → calls queued on it
        self.probes: dict[Future, int] = {}  # restarting actor's readiness → its slot
        self.down_since: float | None = None  # when the last live actor was lost
        self.attempts: dict[str, int] = {}  # item key → submissions so far
        self.events = None
        self.work_ref = None
        self.stdout: contextlib.AbstractContextManager | None = None
        self.startup_seconds = 0.0

    def start(self, progress) -> None:

        import ray
        from ray.util.queue import Queue

        super().start(progress)
        began = time.perf_counter()
        # Ray's driver prints the cluster's messages (a task failed and is retried, a worker or
        # node lost) on stdout: on stderr while the pool runs, so stdout keeps vadctl's (--json)
        self.stdout = contextlib.redirect_stdout(sys.stderr)
        self.stdout.__enter__()
        if not ray.is_initialized():
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
            self.started_ray = True
        self.events = Queue(actor_options={"num_cpus": 0, **self._on_driver_node(ray)})
        self.work_ref = ray.put(self.work)  # held for the run: an actor restarted later needs it
        if self.work.stateful:
            self._start_actors(ray)
        else:
            self.task = ray.remote(num_cpus=1, max_retries=RETRIES)(_run_task)
        self.startup_seconds = time.perf_counter() - began

    @staticmethod
    def _on_driver_node(ray) -> dict:
        """Actor options that keep an actor on the driver's node (lost only with the driver)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        try:
            node = ray.get_runtime_context().get_node_id()
        except Exception:  # a Ray client (ray://) driver is on no node
            return {}
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True)} if node else {}

    def _start_actors(self, ray) -> None:
        gpus = self.work.gpus
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = self.max_in_flight or cpus
        if gpus > 0:
            count = min(count, max(1, int(ray.cluster_resources().get("GPU", 0) / gpus)))
        # calls are not retried by Ray: a call on an actor being restarted would wait for it, and
        # its node may be gone for good; the pool submits lost calls again, to live actors
        actor = ray.remote(_WorkActor).options(num_cpus=1, num_gpus=gpus, max_restarts=-1, max_task_retries=0)
        self.actors = [actor.remote(self.work_ref, self.events) for _ in range(count)]
        self.load = dict.fromkeys(range(count), 0)

    def submit(self, item: Any) -> None:
        if self.max_in_flight and len(self.futures) >= self.max_in_flight:
            self.waiting.append(item)
            return
        if self.actors:  # the live actor with the least work queued (Ray runs each actor's calls in order)
            if not self.load:  # none alive: wait for one to be back
                self.waiting.append(item)
                return
            slot = min(self.load, key=self.load.get)
            self.load[slot] += 1
            ref = self.actors[slot].perform.remote(item)
        else:
            ref = self.task.remote(self.work_ref, item, self.events)
            slot = None
        self.attempts[item.key] = self.attempts.get(item.key, 0) + 1
        self.futures[ref.future()] = (item, slot, ref)

    @property
    def busy(self) -> bool:
        return bool(self.futures or self.waiting)

    def _forward_events(self) -> None:
        while self.events is not None:
            try:
                batch = self.events.get_nowait_batch(max(1, min(self.events.qsize(), 1000)))
            except queue.Empty:
                return
            except Exception:  # the queue is lost: go on without progress from workers
                self.events = None
                return
            if not batch:
                return
            for event, fields in batch:
                getattr(self.progress, event)(**fields)

    def _actor_lost(self, slot: int) -> None:
        """Take a lost actor out of the rotation until Ray has restarted it."""
        if slot not in self.load:
            return
        del self.load[slot]
        if not self.load:
            self.down_since = time.monotonic()
        probe = self.actors[slot].ready.options(max_task_retries=-1).remote()
        self.probes[probe.future()] = slot

    def _probed(self, future: Future) -> None:
        slot = self.probes.pop(future)
        if future.exception() is None:  # restarted: back in the rotation
            self.load[slot] = 0
            self.down_since = None

    def _outcome(self, future: Future, outcomes: list) -> None:
        item, slot, _ = self.futures.pop(future)
        if slot in self.load:
            self.load[slot] = max(0, self.load[slot] - 1)  # a call from before a restart may fail late
        error = future.exception()
        if error is None:
            self.attempts.pop(item.key, None)
            outcomes.append((item, future.result()))
            return
        if not _lost(error) or self.attempts[item.key] >= ATTEMPTS:
            self.attempts.pop(item.key, None)
            outcomes.append((item, Crashed(_reason(error))))
            return
        if slot is not None:
            self._actor_lost(slot)
        self.progress.note(f"{item.key}: {_reason(error)}; submitted again")
        self.waiting.appendleft(item)

    def _stranded(self) -> list[tuple[Any, Any]]:
        """With every actor lost for good (or not back within `RESTART_SECONDS`), waiting work
        comes back as `Crashed`."""
        if not self.actors or self.load or (self.probes and time.monotonic() - self.down_since < RESTART_SECONDS):
            return []
        reason = "Ray could not run it: every actor of the run was lost and none came back"
        stranded = [(item, Crashed(reason)) for item in self.waiting]
        self.waiting.clear()
        return stranded

    def _refill(self) -> None:
        count = len(self.waiting)
        for _ in range(count):
            if (self.max_in_flight and len(self.futures) >= self.max_in_flight) or (self.actors and not self.load):
                return
            self.submit(self.waiting.popleft())

    def completed(self) -> list[tuple[Any, Any]]:
        while True:
            pending = list(self.futures) + list(self.probes)
            done, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED) if pending else (set(), set())
            self._forward_events()
            outcomes: list[tuple[Any, Any]] = []
            for future in done:
                if future in self.probes:
                    self._probed(future)
                else:
                    self._outcome(future, outcomes)
            self._refill()
            outcomes += self._stranded()
            if outcomes:
                return outcomes
            if not pending:
                time.sleep(POLL_SECONDS)

    def close(self, interrupted: bool = False) -> None:
        try:
            self._release(interrupted)
        finally:
            if self.stdout is not None:
                self.stdout.__exit__(None, None, None)
                self.stdout = None

    def _release(self, interrupted: bool) -> None:
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
        if self.events is not None:
            with contextlib.suppress(Exception):
                self._forward_events()
                ray.kill(self.events.actor)
        if self.started_ray:
            ray.shutdown()
