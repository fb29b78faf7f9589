"""An extraction run: find the videos, build the extractor from the recipe, hand its work to the
chosen executor through the driver, and report.

`extract` and `plan_extract` are what `vadctl.api` and the nightly runner call; they take a
checked `ExtractRecipe`, never a list of keywords.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vadctl.common.progress import Progress
from vadctl.common.specs import PathLike
from vadctl.errors import UsageError
from vadctl.executors.base import Work
from vadctl.executors.choose import check_executor, make_pool
from vadctl.extraction.driver import drive
from vadctl.extraction.extractor import ExtractReport, PlannedVideo
from vadctl.extraction.recipe import ExtractRecipe
from vadctl.extraction.work import adopt_extractor, build_extractor, loads_models, perform, worker_extractor
from vadctl.store import FeatureStore, VideoRecord
from vadctl.store.opening import writable
from vadctl.video import catalog

# How a run finds and spreads its work, not what it computes (so not part of the recipe).
RUN_OPTIONS = ("workers", "executor", "ray_address", "follow_links")


def find_videos(roots: PathLike | Sequence[PathLike], follow_links: bool = False) -> catalog.Discovery:
    """The videos under `roots` (files and folders of numbered frames; symlinked folders that lead
    out of a root only with `follow_links`); none is a one-line error that says what was looked for
    and what was skipped."""
    if isinstance(roots, str | Path):
        roots = [roots]
    found = catalog.scan([Path(r) for r in roots], follow_links)
    if not found.sources:
        where = ", ".join(str(r) for r in roots)
        suffixes = ", ".join(sorted(catalog.VIDEO_SUFFIXES))
        more = f" and {len(found.skipped) - 1} more" if len(found.skipped) > 1 else ""
        skipped = f"; skipped {found.skipped[0]}{more}" if found.skipped else ""
        raise UsageError(f"{where}: no videos found (looked for {suffixes} and folders of numbered frames){skipped}")
    return found


def extract(
    roots: PathLike | Sequence[PathLike],
    recipe: ExtractRecipe,
    store: FeatureStore | None = None,
    *,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    follow_links: bool = False,
    progress: Progress | None = None,
) -> ExtractReport:
    """Featurize every video under `roots` as `recipe` says, doing only new or changed work; failed
    videos are listed in the report, not raised. `store` (opened for writing) defaults to the
    recipe's, opened (or created) only once the options, weights and videos check out."""
    check_executor(executor, workers, ray_address, recipe.segment_frames)
    recipe = recipe.with_segments(parallel=executor == "ray" or workers > 1)
    found = find_videos(roots, follow_links)
    extractor = build_extractor(recipe)  # featurizers and their weights checked first
    extractor.store = store if store is not None else writable(recipe.store)
    adopt_extractor(recipe, extractor)  # work run in this process uses this extractor
    gpus = max(recipe.gpus.values(), default=0.0)
    work = Work(worker_extractor, perform, recipe, stateful=loads_models(extractor), gpus=gpus)
    report = drive(extractor, found.sources, make_pool(work, executor, workers, ray_address), progress or Progress())
    report.skipped = found.skipped
    return report


def plan_extract(
    roots: PathLike | Sequence[PathLike],
    recipe: ExtractRecipe,
    store: FeatureStore | None = None,
    follow_links: bool = False,
    records: Mapping[str, VideoRecord] | None = None,
) -> list[PlannedVideo]:
    """What `extract` with `recipe` would do, doing none of it (nothing is written, not even a new
    store; only the records index beside the store may be refreshed). `store` defaults to the
    recipe's when it exists; with none, every video is new. `records`: the split's records, already
    read (video id → record), else they are read from the store."""
    found = find_videos(roots, follow_links)
    if store is None and (recipe.store / "zarr.json").exists():
        store = FeatureStore(recipe.store, read_only=True)
    extractor = build_extractor(recipe, store)
    if store is None:
        records = {}
    return extractor.plan(found.sources, records=records)
