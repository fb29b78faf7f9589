"""Work in N local worker processes: a `concurrent.futures.ProcessPoolExecutor` (spawned).

Each worker caps its thread pools (`common.threads`), builds its state once (`Work.setup`, e.g. the
run's extractor with its models loaded), and sends progress events to the driver through a queue.
A worker that dies (killed,
out of memory, a crash in native code) breaks a ProcessPoolExecutor: every running future fails
and the other workers are stopped. The pool is then rebuilt and what was unfinished is submitted
again. Only the work of the process that died is charged an attempt: each worker writes a claim
file (its pid → the work it runs) before it starts, and a worker stopped by the executor (SIGTERM)
marks itself stopped before it exits, so the claim left without that mark is the dead one's.
Work charged twice is given up (`Crashed`): the driver records the video as failed with why.
Ctrl-C: workers ignore SIGINT; the driver stops them (SIGTERM) and committed videos stay.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import shutil
import signal
import tempfile
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from vadctl.common.threads import limit_threads, threads_per_worker
from vadctl.executors.base import Crashed, ForwardProgress, Pool, Work

ATTEMPTS = 2  # work whose worker dies is retried once
POLL_SECONDS = 0.2
MAX_IDLE_BREAKS = 3  # pool breaks with no work to blame: workers cannot start


# ----- in the worker process ----------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _stopped(signum, frame) -> None:
    """SIGTERM from the executor (another worker died) or the driver (Ctrl-C): mark it, then exit."""
    claims = _worker.get("claims")
    if claims is not None:
        with contextlib.suppress(OSError):
            (claims / f"{os.getpid()}.stopped").touch()
    os._exit(128 + signal.SIGTERM)


def _init_worker(work: Work, events, claims: Path, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _worker["claims"] = claims
    signal.signal(signal.SIGTERM, _stopped)
    limit_threads(threads)
    _worker["work"] = work
    _worker["progress"] = ForwardProgress(events.put)
    (claims / f"{os.getpid()}.worker").touch()
    work.setup(work.recipe)  # e.g. featurizers built, models loaded: once per worker


def _run(item) -> Any:
    claim = _worker["claims"] / f"{os.getpid()}.claim"
    temporary = claim.with_suffix(".claiming")
    temporary.write_text(item.key)
    os.replace(temporary, claim)
    try:
        return _worker["work"].run(item, _worker["progress"])
    finally:
        claim.unlink(missing_ok=True)


# ----- in the driver --------------------------------------------------------------------------------
class LocalPool(Pool):
    def __init__(self, work: Work, workers: int):
        self.work = work
        self.workers = workers
        self.threads = threads_per_worker(workers)
        self.context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self.events = self.context.Queue()
        self.claims = Path(tempfile.mkdtemp(prefix="vadctl-workers-"))
        self.futures: dict[Future, Any] = {}
        self.attempts: dict[str, int] = {}
        self.idle_breaks = 0
        self.executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self.context,
            initializer=_init_worker,
            initargs=(self.work, self.events, self.claims, self.threads),
        )

    def submit(self, item: Any) -> None:
        self.futures[self.executor.submit(_run, item)] = item

    @property
    def busy(self) -> bool:
        return bool(self.futures)

    def _forward_events(self) -> None:
        while True:
            try:
                event, fields = self.events.get_nowait()
            except queue.Empty:
                return
            getattr(self.progress, event)(**fields)

    def completed(self) -> list[tuple[Any, Any]]:
        while True:
            done, _ = wait(list(self.futures), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            self._forward_events()
            if not done:
                continue
            if any(isinstance(f.exception(), BrokenProcessPool) for f in done if not f.cancelled()):
                outcomes = self._recover()
            else:
                outcomes = [(self.futures.pop(f), f.result()) for f in done]
            if outcomes:
                return outcomes

    def _recover(self) -> list[tuple[Any, Any]]:
        """A worker died: rebuild the pool, charge the dead one's work, resubmit the rest."""
        self.executor.shutdown(wait=True, cancel_futures=True)  # the others are stopped and joined
        self._forward_events()
        claims = {p.stem: p.read_text() for p in self.claims.glob("*.claim")}
        stopped = {p.stem for p in self.claims.glob("*.stopped")}
        dead_work = {key for pid, key in claims.items() if pid not in stopped}
        for path in self.claims.iterdir():
            path.unlink(missing_ok=True)
        self.idle_breaks = 0 if dead_work else self.idle_breaks + 1
        if self.idle_breaks > MAX_IDLE_BREAKS:
            raise RuntimeError("extract worker processes keep dying before they take any work")
        outcomes, again = [], []
        for future, item in self.futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                outcomes.append((item, future.result()))
                continue
            if item.key in dead_work:
                self.attempts[item.key] = self.attempts.get(item.key, 0) + 1
                if self.attempts[item.key] >= ATTEMPTS:
                    why = f"the worker process running it died ({self.attempts[item.key]} attempts; killed or crashed)"
                    outcomes.append((item, Crashed(why)))
                    continue
            again.append(item)
        self.futures = {}
        self.executor = self._new_executor()
        for item in again:
            self.submit(item)
        return outcomes

    def close(self, interrupted: bool = False) -> None:
        if interrupted:  # Ctrl-C or an error in the driver: stop the workers now
            for path in self.claims.glob("*.worker"):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(path.stem), signal.SIGTERM)
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._forward_events()
        self.events.close()
        shutil.rmtree(self.claims, ignore_errors=True)
