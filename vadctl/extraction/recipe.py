"""What defines an extraction, as one frozen, picklable value, and the extractor it builds.

`ExtractRecipe.make` checks every option once, before any store is opened; the recipe then travels
unchanged to the driver, to every worker process and to every Ray actor, each of which rebuilds
the run's `Extractor` from it once (`extraction.work.worker_extractor`). The API, the CLI (through the API) and the
nightly runner make recipes the same way, so a run behaves the same whoever starts it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadctl import defaults
from vadctl.backbones.weights import parse_weight_options
from vadctl.common import checks
from vadctl.common.params import parse_assignments
from vadctl.common.specs import ClipSpec, DecodeSpec, PathLike
from vadctl.errors import UsageError
from vadctl.features import registry
from vadctl.store import FeatureStore, check_split
from vadctl.video.backends import resolve_decoder


@dataclass(frozen=True)
class ExtractRecipe:
    """Where features go (store, split), which (features with their parameters and weights) and
    how videos are cut (decode, clips), plus how the run behaves (window, force, waits, segments).
    `gpus` is what a Ray actor holding a feature's model reserves: where it runs, never identity."""

    store: Path
    split: str
    features: tuple[str, ...]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: dict[str, Path] = field(default_factory=dict)
    scene: str | None = None
    resize: str | None = None
    clip_len: int = defaults.CLIP_LENGTH
    clip_stride: int = defaults.CLIP_STRIDE
    frame_step: int = defaults.FRAME_STEP
    window: int = defaults.WINDOW
    force: bool = False
    retry_failed: bool = False
    keep_truncated: bool = False  # a file cut short: its frames kept (status truncated), not failed
    decoder: str = "auto"  # decord, pyav, or auto (decord where it imports); settled by `make`
    wait: float = defaults.WAIT_SECONDS
    debug: bool = False
    segment_frames: int | None = None  # None: the run's default; 0: never split
    gpus: dict[str, float] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def make(
        cls,
        store: PathLike | FeatureStore | None,
        split: str = defaults.TRAIN_SPLIT,
        features: str | Sequence[str] | None = None,
        params: Mapping[str, Any] | Iterable[str] | None = None,
        weights: Mapping[str, PathLike] | Iterable[str] | None = None,
        **options: Any,
    ) -> ExtractRecipe:
        """A recipe from the options users give (CLI, API, job file), every one checked here with a
        one-line error naming the option, before anything is written. `options` are the fields in
        `OPTIONS` (scene, resize, clip_len, …), defaults as declared on the fields above: the one
        place the option list and its defaults are written."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"unexpected extraction option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
        values = {f.name: f.default for f in dataclasses.fields(cls) if f.name in OPTIONS} | options
        check_split(split)
        values["window"] = checks.whole(values["window"], "--window")
        values["wait"] = checks.real(values["wait"], "--wait", at_least=0)
        names = registry.parse_names(features)
        nested, gpus = split_resources(feature_params(params))
        explicit = (
            parse_weight_options(weights) if weights is not None and not isinstance(weights, Mapping) else weights
        )
        ClipSpec(values["clip_len"], values["clip_stride"], values["frame_step"])
        DecodeSpec.parse(values["resize"])
        values["decoder"] = resolve_decoder(values["decoder"])  # here, once: every worker decodes alike
        where = store.path if isinstance(store, FeatureStore) else store
        weight_paths = {k: Path(v) for k, v in (explicit or {}).items()}
        return cls(defaults.store_path(where), split, tuple(names), nested, weight_paths, gpus=gpus, **values)

    @property
    def decode(self) -> DecodeSpec:
        return dataclasses.replace(DecodeSpec.parse(self.resize), decoder=self.decoder)

    @property
    def clips(self) -> ClipSpec:
        return ClipSpec(self.clip_len, self.clip_stride, self.frame_step)

    def with_segments(self, parallel: bool) -> ExtractRecipe:
        """The recipe with its segment length settled: the default when running in parallel, never
        when serial, unless the caller chose one (0: never)."""
        if self.segment_frames is not None:
            return self
        return dataclasses.replace(self, segment_frames=defaults.SEGMENT_FRAMES if parallel else 0)


# The options of a recipe beyond what is extracted (features, params, weights) and where (store, split).
OPTIONS = (
    "scene",
    "resize",
    "clip_len",
    "clip_stride",
    "frame_step",
    "window",
    "force",
    "retry_failed",
    "keep_truncated",
    "decoder",
    "wait",
    "debug",
    "segment_frames",
)


def make_options() -> tuple[str, ...]:
    """The keywords `ExtractRecipe.make` takes beyond store and split (the job file's [extract] keys)."""
    return ("features", "params", "weights", *OPTIONS)


def feature_params(params: Mapping[str, Any] | Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """Featurizer parameters as {feature: {param: value}}, from that form, from {'feature.param':
    value}, or from ['feature.param=value', ...] (values parsed as JSON when they parse)."""
    if params is None:
        return {}
    flat = parse_assignments(params, "--param", "velocity.n_bins=4") if not isinstance(params, Mapping) else params
    nested: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        if isinstance(value, Mapping):
            registry.featurizer_class(key)
            nested.setdefault(key, {}).update(value)
            continue
        name, dot, param = str(key).partition(".")
        if not dot or not name or not param:
            raise UsageError(f"--param {key}={value}: expected FEATURE.PARAM=VALUE (e.g. velocity.n_bins=4)")
        registry.featurizer_class(name)
        nested.setdefault(name, {})[param] = value
    return nested


def split_resources(params: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """(featurizer parameters, GPUs per feature): `-p FEATURE.num_gpus=0.25` says what a Ray actor
    holding that feature's model reserves; it is where a feature runs, not what it computes, so it
    never reaches the featurizer or the feature's identity."""
    nested, gpus = {}, {}
    for name, values in params.items():
        values = dict(values)
        if "num_gpus" in values:
            value = values.pop("num_gpus")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UsageError(f"--param {name}.num_gpus={value!r}: a number of GPUs ≥ 0 (fractions allowed)")
            gpus[name] = float(value)
        nested[name] = values
    return nested, gpus
