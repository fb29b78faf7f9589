"""Checking a model file's arrays against what the model's parameters say they must be.

A model file's checksum proves it is the file that was written, not that what was written fits
together: a hand-made file with a recomputed checksum (or a bug) can hold a GMM whose means do not
match its covariances, or a zero scale. Models declare their arrays' shapes here, with named sizes
that must agree wherever they appear (`("K", "D")`), and the loader refuses what does not fit with
one line naming the array, instead of a traceback (or wrong scores) later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

KINDS = {"f": "floating point", "i": "integer", "u": "unsigned integer", "b": "boolean"}


class StateShapes:
    """Expected arrays of a model's state, with named sizes bound on first sight."""

    def __init__(self, arrays: Mapping[str, np.ndarray], sizes: Mapping[str, int] | None = None):
        self.arrays = arrays
        self.sizes: dict[str, int] = dict(sizes or {})
        self.seen: set[str] = set()

    def expect(self, name: str, shape: tuple[int | str, ...], kinds: str = "f") -> np.ndarray:
        """The array `name`, checked: its dtype kind is in `kinds`, its shape matches `shape`."""
        array = self.arrays.get(name)
        if array is None:
            raise ValueError(f"array {name} is missing")
        self.seen.add(name)
        if array.dtype.kind not in kinds:
            wanted = " or ".join(KINDS.get(k, k) for k in kinds)
            raise ValueError(f"array {name} has dtype {array.dtype}, expected {wanted}")
        pattern = "(" + ", ".join(str(s) for s in shape) + ")"
        if array.ndim != len(shape):
            raise ValueError(f"array {name} has shape {array.shape}, expected {pattern}")
        for size, want in zip(array.shape, shape, strict=True):
            bound = want if isinstance(want, int) else self.sizes.setdefault(want, size)
            if size != bound:
                where = "" if isinstance(want, int) else f" ({want} = {bound} elsewhere)"
                raise ValueError(f"array {name} has shape {array.shape}, expected {pattern}{where}")
        return array

    def size(self, name: str) -> int:
        return self.sizes[name]

    def nothing_else(self, prefix: str = "") -> None:
        """Arrays the model does not declare are as wrong as missing ones."""
        extra = sorted(n for n in self.arrays if n.startswith(prefix) and n not in self.seen)
        if extra:
            raise ValueError(f"unexpected array(s) {', '.join(extra[:5])}")


# The smallest scale a fit writes (scales are clipped there): a file holding a smaller one divides
# scores by it and overflows them to infinity, so the loader refuses it.
MIN_SCALE = 1e-12


def finite_number(value, what: str, *, positive: bool = False, minimum: float | None = None) -> float:
    """A finite number (and > 0 when `positive`, ≥ `minimum` when given) from a model's metadata."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r}, not a finite number")
    if positive and not value > 0:
        raise ValueError(f"{what} is {value!r}; it must be > 0")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} is {value!r}; it must be ≥ {minimum:g} (smaller ones overflow scores)")
    return float(value)


def non_finite(arrays: Mapping[str, np.ndarray]) -> str | None:
    """The first floating-point array holding NaN or infinity, if any."""
    for name in sorted(arrays):
        array = arrays[name]
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            return name
    return None
