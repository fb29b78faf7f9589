"""The units of extraction work, and how a worker builds its extractor and performs one.

`build_extractor`/`worker_extractor` and `perform` are what extraction hands an executor as its
`Work` (setup and perform): the executor runs them without knowing what they do.

A video is one `Whole` task, unless it is long: then `Prepare` (the new version's entries for the
whole video, beside the committed one), one `SegmentTask` per chunk-aligned segment (any worker,
in parallel), and `Join` after the last one (ragged parts joined, then the video's one commit).
The video's lock is held by the driver from `Prepare` to `Join`; `Whole` tasks take it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vadctl.backbones.weights import WeightResolver
from vadctl.common.heap import return_large_buffers
from vadctl.common.progress import Progress
from vadctl.extraction.extractor import Extractor, SegmentDone, SegmentedVideo, _Plan
from vadctl.extraction.recipe import ExtractRecipe
from vadctl.features import registry
from vadctl.features.deep import UsesWeights, attach_weights
from vadctl.store import FeatureStore


@dataclass(frozen=True)
class Whole:
    plan: _Plan
    timeout: float  # seconds to wait for the video's lock (0 on the first pass)

    @property
    def key(self) -> str:
        return f"whole:{self.plan.source.video_id}"


@dataclass(frozen=True)
class Prepare:
    plan: _Plan

    @property
    def key(self) -> str:
        return f"prepare:{self.plan.source.video_id}"


@dataclass(frozen=True)
class SegmentTask:
    job: SegmentedVideo
    index: int

    @property
    def key(self) -> str:
        return f"segment:{self.job.plan.source.video_id}:{self.index}"


@dataclass(frozen=True)
class Join:
    job: SegmentedVideo
    done: tuple[SegmentDone, ...]

    @property
    def key(self) -> str:
        return f"join:{self.job.plan.source.video_id}"


@dataclass(frozen=True)
class RecordCrash:
    plan: _Plan
    reason: str
    lent: bool  # the driver holds the video's lock for this work (segmented videos)
    timeout: float

    @property
    def key(self) -> str:
        return f"crash:{self.plan.source.video_id}"


def video_of(item: Any) -> str:
    return item.job.plan.source.video_id if hasattr(item, "job") else item.plan.source.video_id


def perform(extractor: Extractor, item: Any, progress: Progress) -> Any:
    """Run one unit of work with this worker's extractor; the outcome goes back to the driver."""
    if isinstance(item, Whole):
        return extractor.extract_whole(item.plan, item.timeout, progress)
    if isinstance(item, Prepare):
        return extractor.prepare_segments(item.plan, progress)
    if isinstance(item, SegmentTask):
        return extractor.extract_segment(item.job, item.index, progress)
    if isinstance(item, Join):
        return extractor.join_segments(item.job, item.done)
    if isinstance(item, RecordCrash):
        return extractor.record_crash(item.plan, item.reason, None if item.lent else item.timeout)
    raise TypeError(f"not a unit of extraction work: {type(item).__name__}")


def build_extractor(recipe: ExtractRecipe, store: FeatureStore | None = None) -> Extractor:
    """The run's `Extractor`: featurizers built and their weights found (a missing weight file is a
    one-line error here, before any store is opened). `store` may be left out for a dry run, or
    set later by the caller; workers open it for writing (`worker_extractor`)."""
    return_large_buffers()  # every process that extracts builds its extractor here
    featurizers = registry.build(recipe.features, recipe.params)
    attach_weights(featurizers, WeightResolver(explicit=dict(recipe.weights)))
    return Extractor(store, featurizers, recipe)


def loads_models(extractor: Extractor) -> bool:
    """Whether any featurizer of the run loads a model (worth keeping in a long-lived worker)."""
    return any(isinstance(f, UsesWeights) and f.needs_weights() for f in extractor.featurizers)


_WORKER_EXTRACTORS: dict[str, Extractor] = {}


def worker_extractor(recipe: ExtractRecipe) -> Extractor:
    """This process's extractor for `recipe`, built on first use: a worker loads its featurizers'
    models once for all the videos it is given (`features.loaded` keeps them across runs)."""
    if recipe.run_id not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS.clear()
        _WORKER_EXTRACTORS[recipe.run_id] = build_extractor(
            recipe, FeatureStore(recipe.store, create=False, read_only=False)
        )
    return _WORKER_EXTRACTORS[recipe.run_id]


def adopt_extractor(recipe: ExtractRecipe, extractor: Extractor) -> None:
    """Use the driver's own extractor for work run in this process (serial runs), so its featurizers
    are not built twice."""
    _WORKER_EXTRACTORS.clear()
    _WORKER_EXTRACTORS[recipe.run_id] = extractor
