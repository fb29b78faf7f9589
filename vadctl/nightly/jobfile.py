"""The job file of `vadctl run`: one TOML file says what a nightly job extracts, scores and where.

Every path in it is relative to the file itself (never to the working directory, which under cron
is $HOME), so the same file works from anywhere. Every key is checked before any work: an unknown
key, a wrong type or a missing file is one line naming the file, the key and the problem.

    store = "archive.zarr"            # the feature store (created on the first run)
    results = "results"               # the results dataset (vadctl.nightly.results)
    log = "vadctl.log"                # optional: JSON-lines log of every run
    verify_sources = false            # optional: re-hash every source in full before extracting
    [extract]                         # options of `vadctl extract` (keyword arguments of vadctl.api.extract)
    features = ["frames", "flow", "regions", "velocity"]
    [[sources]]                       # one or more
    root = "videos/cam1"
    split = "test"                    # default "test"
    scene = "cam1"                    # optional
    [[models]]                        # zero or more
    path = "models/aivad.safetensors"
    [review]                          # optional: end with the static review site (vadctl.review.site)
    out = "review"

The README ("Nightly runs") documents every key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadctl import defaults
from vadctl.errors import UsageError
from vadctl.extraction.recipe import make_options
from vadctl.extraction.run import RUN_OPTIONS
from vadctl.models.calibration import parse_rule
from vadctl.nightly.results import check_model_name
from vadctl.store import check_split

# extraction options a job does not take in [extract]: the job supplies them, or they make no
# sense unattended (force would re-extract the whole archive on every run).
NOT_IN_EXTRACT = {
    "roots": "set by [[sources]] root",
    "store": "set by the top-level store key",
    "split": "set per [[sources]]",
    "scene": "set per [[sources]]",
    "progress": "not a setting",
    "force": "a job would re-extract the whole archive on every run; run `vadctl extract --force` once instead",
}
EXTRACT_PATHS = ("weights",)  # [extract] keys whose values are paths (relative to the job file)


@dataclass(frozen=True)
class Source:
    root: Path
    split: str = defaults.TEST_SPLIT
    scene: str | None = None


@dataclass(frozen=True)
class ModelRef:
    path: Path
    name: str
    splits: tuple[str, ...]
    threshold: str | None = None
    backend: str = "torch"
    onnx: Path | None = None


@dataclass
class Job:
    path: Path
    name: str
    store: Path
    results: Path
    sources: list[Source]
    models: list[ModelRef]
    log: Path | None = None
    extract: dict[str, Any] = field(default_factory=dict)
    part_videos: int = defaults.PART_VIDEOS
    min_len: int = defaults.EVENT_MIN_LEN
    min_gap: int = defaults.EVENT_MIN_GAP
    verify_sources: bool = False  # re-hash every source in full first (`vadctl store verify --sources`)
    review: Path | None = None  # [review] out: the static review site the run ends by updating
    review_top: int | None = None  # [review] top: events shown in full on it (all when None)

    @property
    def splits(self) -> list[str]:
        return sorted({s.split for s in self.sources})


class _Table:
    """One table of the file, checked key by key; errors name the file and the table."""

    def __init__(self, file: Path, where: str, data: Any, known: Mapping[str, str] | None = None):
        self.file = file
        self.where = where
        if not isinstance(data, Mapping):
            self.fail(f"expected a table, got {type(data).__name__}")
        self.data = dict(data)
        if known is not None:
            unknown = sorted(set(self.data) - set(known))
            if unknown:
                self.fail(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")

    def fail(self, problem: str, key: str | None = None) -> None:
        at = f"{self.where}.{key}" if key and self.where else key or self.where
        raise UsageError(f"{self.file}: {at + ': ' if at else ''}{problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                self.fail(f"missing required key {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(f"expected {names}, got {type(value).__name__} {value!r}", key)
        return value

    def number(self, key: str, default: int, minimum: int) -> int:
        value = self.get(key, int, default)
        if value < minimum:
            self.fail(f"must be a whole number ≥ {minimum}, got {value}", key)
        return value

    def path(self, key: str, base: Path, required: bool = False, must_exist: bool = False) -> Path | None:
        text = self.get(key, str, required=required)
        if text is None:
            return None
        if not text.strip():
            self.fail("empty path", key)
        path = resolve(base, text)
        if must_exist and not path.exists():
            self.fail(f"{path}: no such file or folder", key)
        return path

    def strings(self, key: str, default: list[str] | None = None) -> list[str] | None:
        value = self.get(key, (list, str), default)
        items = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if items is not None and not all(isinstance(v, str) and v for v in items):
            self.fail("expected a list of names", key)
        return items


def resolve(base: Path, text: str) -> Path:
    """A path from the job file: `~` expanded, relative ones taken from the file's folder."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def extract_keywords() -> tuple[str, ...]:
    """What [extract] may hold: every option of an extraction recipe and of how a run is spread
    (`extraction.run.RUN_OPTIONS`) that a job does not set itself, so an option added to the recipe
    (e.g. a new decode setting) is a job key at once."""
    return tuple(k for k in (*make_options(), *RUN_OPTIONS) if k not in NOT_IN_EXTRACT)


def load_job(path: Path | str) -> Job:
    """Read and check a job file; every path comes back absolute."""
    file = Path(path).expanduser().absolute()
    if not file.is_file():
        raise UsageError(f"{file}: no such job file")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{file}: invalid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{file}: cannot read: {error}") from None
    base = file.parent
    for key in ("sources", "models"):
        if isinstance(data.get(key), dict):
            raise UsageError(f"{file}: {key}: write [[{key}]] (double brackets): a job takes a list of them")
    top = _Table(
        file,
        "",
        data,
        {
            "name": "job name",
            "store": "feature store",
            "results": "results dataset",
            "log": "log file",
            "extract": "extract options",
            "sources": "video roots",
            "models": "model files",
            "scoring": "scoring options",
            "events": "event options",
            "verify_sources": "re-hash sources in full",
            "review": "review page",
        },
    )
    name = top.get("name", str, file.stem)
    store = top.path("store", base, required=True)
    results = top.path("results", base, required=True)
    if results.resolve() == store.resolve() or store.resolve() in results.resolve().parents:
        top.fail(f"{results} is the store's folder or inside it; keep the results dataset beside the store", "results")
    log = top.path("log", base)
    sources = _sources(file, base, top.get("sources", list, required=True))
    default_splits = sorted({s.split for s in sources} - {defaults.TRAIN_SPLIT})
    models = _models(file, base, top.get("models", list, []), default_splits)
    scoring = _Table(file, "scoring", top.get("scoring", dict, {}), {"part_videos": "videos per part"})
    events = _Table(file, "events", top.get("events", dict, {}), {"min_len": "frames", "min_gap": "frames"})
    review = _Table(file, "review", top.get("review", dict, {}), {"out": "folder", "top": "events shown"})
    return Job(
        path=file,
        name=name,
        store=store,
        results=results,
        sources=sources,
        models=models,
        log=log,
        extract=_extract(file, base, top.get("extract", dict, {})),
        part_videos=scoring.number("part_videos", defaults.PART_VIDEOS, 1),
        min_len=events.number("min_len", defaults.EVENT_MIN_LEN, 1),
        min_gap=events.number("min_gap", defaults.EVENT_MIN_GAP, 0),
        verify_sources=top.get("verify_sources", bool, False),
        review=review.path("out", base, required="review" in data),
        review_top=review.number("top", None, 1) if "top" in review.data else None,
    )


def _sources(file: Path, base: Path, items: list) -> list[Source]:
    if not items:
        raise UsageError(f"{file}: sources: add at least one [[sources]] table with a root")
    sources = []
    for i, item in enumerate(items, 1):
        table = _Table(file, f"sources[{i}]", item, {"root": "folder or file", "split": "split", "scene": "scene"})
        root = table.path("root", base, required=True, must_exist=True)
        split = table.get("split", str, defaults.TEST_SPLIT)
        _checked(table, "split", split, check_split)
        sources.append(Source(root, split, table.get("scene", str)))
    return sources


def _models(file: Path, base: Path, items: list, default_splits: list[str]) -> list[ModelRef]:
    models: list[ModelRef] = []
    for i, item in enumerate(items, 1):
        keys = ("path", "name", "splits", "threshold", "backend", "onnx")
        table = _Table(file, f"models[{i}]", item, dict.fromkeys(keys, ""))
        path = table.path("path", base, required=True, must_exist=True)
        name = table.get("name", str, path.stem)
        _checked(table, "name", name, lambda n: check_model_name(n, "name"))
        splits = table.strings("splits", default_splits)
        if not splits:
            table.fail("no split to score: every source is split 'train'; name the splits to score", "splits")
        for split in splits:
            _checked(table, "splits", split, check_split)
        threshold = table.get("threshold", str)
        if threshold is not None:
            _checked(table, "threshold", threshold, parse_rule)
        backend = table.get("backend", str, "torch")
        if backend not in ("torch", "onnx"):
            table.fail(f"{backend!r}: use torch or onnx", "backend")
        onnx = table.path("onnx", base, must_exist=True)
        clash = next((m for m in models if m.name == name), None)
        if clash is not None:
            table.fail(f"{name!r} is also the name of {clash.path}; give each model its own name", "name")
        models.append(ModelRef(path, name, tuple(splits), threshold, backend, onnx))
    return models


def _extract(file: Path, base: Path, data: dict) -> dict[str, Any]:
    known = extract_keywords()
    table = _Table(file, "extract", data)
    for key in sorted(table.data):
        if key in NOT_IN_EXTRACT:
            table.fail(f"not allowed here: {NOT_IN_EXTRACT[key]}", key)
        if key not in known:
            table.fail(f"unknown key {key!r} (known: {', '.join(sorted(known))})")
    options = dict(table.data)
    for key in EXTRACT_PATHS:
        if key in options:
            weights = table.get(key, dict)
            for wkey, value in weights.items():
                if not isinstance(value, str):
                    table.fail(f"expected a path for {wkey!r}, got {type(value).__name__}", key)
            options[key] = {wkey: resolve(base, value) for wkey, value in weights.items()}
    return options


def _checked(table: _Table, key: str, value: Any, check: Callable[[Any], Any]) -> None:
    try:
        check(value)
    except UsageError as error:
        table.fail(str(error), key)
