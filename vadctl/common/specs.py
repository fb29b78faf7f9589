"""Value types every layer shares: what identifies a feature entry, how frames are decoded and cut
into clips, what a video file looked like.

They live here, apart from the modules that use them, so the catalog, the decoder, featurizers,
the store and models can all speak of the same things without importing each other. Nothing here
touches Zarr, decord or torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vadctl.errors import StoreError, UsageError

PathLike = str | Path  # a path as users give it


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain Python, for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces, no NaN): what identity hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_plain)


@dataclass(frozen=True)
class FeatureSpec:
    """What identifies a feature entry: featurizer name, version and parameters.

    `params` include everything the values depend on (decode size, upstream entries' hashes,
    weights' sha256), so a change anywhere is a new entry and old results are never mixed with new.
    """

    name: str
    version: int
    params: Mapping[str, Any]
    axis: str = "frame"  # "frame": first axis is the frame; "clip": first axis is the clip

    @property
    def hash(self) -> str:
        payload = canonical_json({"name": self.name, "version": self.version, "params": self.params})
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.hash}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "params": dict(self.params),
            "axis": self.axis,
            "hash": self.hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        spec = cls(str(data["name"]), int(data["version"]), dict(data["params"]), str(data.get("axis", "frame")))
        if "hash" in data and data["hash"] != spec.hash:
            raise StoreError(f"feature {spec.name}: recorded hash {data['hash']} does not match its parameters")
        return spec


@dataclass(frozen=True)
class ArraySpec:
    """One array of an entry: per-row shape and dtype; ragged arrays have a variable row count per index.

    `dims` name the per-row axes (the first axis is named by the store: frame, clip or row) and
    `attrs` describe the values (units, scale), so generic Zarr/xarray readers can make sense of them.
    """

    tail: tuple[int, ...]
    dtype: str
    ragged: bool = False
    dims: tuple[str, ...] = ()
    attrs: Mapping[str, Any] | None = None

    def dimension_names(self, first: str) -> tuple[str, ...]:
        dims = tuple(self.dims) if self.dims else tuple(f"dim_{i}" for i in range(1, len(self.tail) + 1))
        if len(dims) != len(self.tail):
            raise ValueError(f"dims {dims} do not match the row shape {self.tail}")
        return (first, *dims)


@dataclass(frozen=True)
class Fingerprint:
    """What a video looked like when it was extracted: size, newest mtime, hash of sampled blocks."""

    size: int
    mtime_ns: int
    sample_sha256: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        return cls(int(data["size"]), int(data["mtime_ns"]), str(data["sample_sha256"]))


@dataclass(frozen=True)
class DecodeSpec:
    """How frames are decoded; part of every feature's identity, since pixels depend on it.

    `decoder`: "decord", "pyav", or None (auto: decord where it imports, else PyAV). Only "pyav"
    joins the identity (`to_dict`): entries decoded by decord keep the hashes they always had, and
    PyAV's (another FFmpeg build) are never mixed with them."""

    width: int | None = None
    height: int | None = None
    decoder: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> DecodeSpec:
        """'WxH' for an exact size, 'W' to scale to width W keeping the aspect, None for native."""
        if not text:
            return cls()
        try:
            if "x" in text.lower():
                w, h = (int(v) for v in text.lower().split("x"))
            else:
                w, h = int(text), None
        except ValueError:
            raise UsageError(f"--resize {text!r}: expected WIDTHxHEIGHT (e.g. 640x360) or WIDTH") from None
        if w <= 0 or (h is not None and h <= 0):
            raise UsageError(f"--resize {text!r}: sizes must be positive")
        return cls(w, h)

    def output_size(self, source_width: int, source_height: int) -> tuple[int, int]:
        """(width, height) of decoded frames for a source of the given size."""
        if self.width is None:
            return source_width, source_height
        if self.height is None:
            height = max(2, round(source_height * self.width / source_width / 2) * 2)
            return self.width, height
        return self.width, self.height

    def to_dict(self) -> dict:
        size = {"width": self.width, "height": self.height}
        return {**size, "decoder": self.decoder} if self.decoder == "pyav" else size


@dataclass(frozen=True)
class ClipSpec:
    """How a video is cut into clips: `length` frames taken every `step`, a clip every `stride`."""

    length: int = 16
    stride: int = 8
    step: int = 1

    def __post_init__(self):
        for name in ("length", "stride", "step"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                option = {"length": "--clip-len", "stride": "--clip-stride", "step": "--frame-step"}[name]
                raise UsageError(f"{option} {value!r}: must be a whole number ≥ 1")

    @property
    def span(self) -> int:
        """Frames from a clip's first to its last sampled frame, inclusive."""
        return (self.length - 1) * self.step + 1

    def table(self, n_frames: int) -> np.ndarray:
        """(n_clips, 2) int64 of [start, stop) frame ranges; short videos give one clip padded by repeats."""
        starts = np.arange(0, max(n_frames - self.span, 0) + 1, self.stride, dtype=np.int64)
        stops = np.minimum(starts + self.span, n_frames)
        return np.stack([starts, stops], axis=1)

    def frame_indices(self, start: int, n_frames: int) -> np.ndarray:
        """The sampled frames of the clip starting at `start`, the last frame repeated past the end."""
        idx = start + np.arange(self.length) * self.step
        return np.minimum(idx, n_frames - 1)

    def to_dict(self) -> dict:
        return {"length": self.length, "stride": self.stride, "step": self.step}
