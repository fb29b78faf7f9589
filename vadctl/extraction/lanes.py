"""The featurizers of one video side by side: each in a thread of its own, every one seeing the windows in order.

One after the other, a window's featurizers leave a core idle whenever the running one cannot use
both (YOLOX on one frame at a time, Python loops, a network's small layers). In lanes, the detector
works on window i+1 while MobileNetV2 embeds window i's crops: a featurizer waits only for the
upstream outputs of the window it works on. The heavy parts (OpenCV, onnxruntime, torch, numpy)
release the GIL, so the lanes share the cores.

Nothing about the output changes: each featurizer still gets every window in order, with the same
upstream outputs, and only its own lane touches its state and its writer; so a store written in
lanes equals one written one featurizer at a time. At most `depth` + 1 windows are in flight (memory
stays bounded); the first error of any lane is raised in the caller, the other lanes stop after
the window they are on.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from vadctl.features.base import Featurizer, Output

Step = Callable[[Featurizer, Any, Mapping[str, Output]], Output]


class _Slot:
    """One window in flight: the outputs made for it so far, and which featurizers are done."""

    def __init__(self, window, outputs: dict[str, Output], names: Sequence[str]):
        self.window = window
        self.outputs = outputs
        self.done = {name: threading.Event() for name in names}
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error

    def wait(self) -> None:
        for event in self.done.values():
            event.wait()


def in_lanes(
    windows: Iterable,
    featurizers: Sequence[Featurizer],
    step: Step,
    stored: Callable[[Any], dict[str, Output]],
    depth: int = 1,
) -> Iterator[tuple[Any, dict[str, Output]]]:
    """(window, outputs) in window order, each once every featurizer has done it: `step(featurizer,
    window, upstream)` runs in the featurizer's own thread; `stored(window)` gives the outputs read
    from the store for that window (upstreams not computed here)."""
    names = [f.name for f in featurizers]
    inboxes: dict[str, queue.SimpleQueue] = {name: queue.SimpleQueue() for name in names}
    stopping = threading.Event()

    def lane(featurizer: Featurizer) -> None:
        inbox = inboxes[featurizer.name]
        while (slot := inbox.get()) is not None:
            try:
                for name in featurizer.requires:
                    if name in slot.done:
                        slot.done[name].wait()
                if slot.error is None and not stopping.is_set():
                    upstream = {name: slot.outputs[name] for name in featurizer.requires}
                    slot.outputs[featurizer.name] = step(featurizer, slot.window, upstream)
            except BaseException as error:  # handed to the caller with the window
                slot.fail(error)
            finally:
                slot.done[featurizer.name].set()

    threads = [threading.Thread(target=lane, args=(f,), name=f"vadctl-lane-{f.name}", daemon=True) for f in featurizers]
    for thread in threads:
        thread.start()
    in_flight: deque[_Slot] = deque()
    try:
        for window in windows:
            slot = _Slot(window, stored(window), names)
            for name in names:
                inboxes[name].put(slot)
            in_flight.append(slot)
            while len(in_flight) > depth:
                yield _finished(in_flight.popleft())
        while in_flight:
            yield _finished(in_flight.popleft())
    finally:
        stopping.set()
        for name in names:
            inboxes[name].put(None)
        for thread in threads:
            thread.join(timeout=60)


def _finished(slot: _Slot) -> tuple[Any, dict[str, Output]]:
    slot.wait()
    if slot.error is not None:
        raise slot.error
    return slot.window, slot.outputs
