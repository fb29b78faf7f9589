"""Loaded models kept for the life of a process, so each worker loads a weighted model once.

A run builds fresh featurizer objects, but loading a network (reading and checking hundreds of MB
of weights) should happen once per process, not once per run or video. `shared(kind, key, load)`
returns the model loaded for `key` (weights' sha256, device, settings), loading it on first use;
one model per kind stays in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
_MODELS: dict[str, tuple[Hashable, Any]] = {}
_LOCK = threading.Lock()


def shared(kind: str, key: Hashable, load: Callable[[], T]) -> T:
    with _LOCK:
        held = _MODELS.get(kind)
        if held is None or held[0] != key:
            _MODELS.pop(kind, None)  # release the old one before loading the next
            _MODELS[kind] = (key, load())
        return _MODELS[kind][1]
