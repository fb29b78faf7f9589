"""The Python API: one call per job, and the one place where a job is assembled.

The CLI, the demo, the nightly runner, executors, tests and benchmarks all call these functions,
so a job behaves the same whoever starts it. Keyword names follow the CLI options. Nothing here
prints: progress reaches the caller through `progress=` (a `vadctl.common.progress.Progress` or any
callable receiving `fn(event, **fields)`).

    from vadctl import api
    report = api.extract(["videos/train"], "stores/cam.zarr", split="train")
    model = api.fit("aivad", "stores/cam.zarr", "models/aivad.safetensors")
    scores = api.score(model, "stores/cam.zarr", "test", "scores.parquet")
    metrics = api.evaluate(scores, "labels.csv")
    done = api.infer(["new/cam3.mp4"], model, "stores/cam.zarr", "cam3.parquet", video_out="annotated/")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vadctl import defaults
from vadctl.common import checks
from vadctl.common.progress import ProgressArg, as_progress
from vadctl.errors import ModelFileError, UsageError

if TYPE_CHECKING:
    from vadctl.common.specs import PathLike
    from vadctl.store import FeatureStore

# Imports of the stages (which pull in zarr, torch, scikit-learn or Ray) happen inside the calls that
# need them, so `vadctl --help` and `import vadctl.api` stay fast (benchmarks/micro.py startup).

__all__ = [
    "InferReport",
    "beside",
    "evaluate",
    "events",
    "extract",
    "feature_params",
    "fit",
    "gc",
    "infer",
    "open_store",
    "plan_extract",
    "prune",
    "regions_path",
    "run",
    "score",
    "verify",
    "verify_sources",
]


def open_store(path: PathLike | None = None, *, create: bool = False, read_only: bool = True) -> FeatureStore:
    """The feature store at `path` (default: $VADCTL_STORE or stores/default.zarr), for reading
    unless `read_only=False`; `create=True` makes an empty one when there is none."""
    from vadctl.store import opening

    return opening.open_store(path, create=create, read_only=read_only)


def _readable(store: PathLike | FeatureStore | None) -> FeatureStore:
    from vadctl.store import opening

    return opening.readable(store)


def _writable(store: PathLike | FeatureStore | None, create: bool = True) -> FeatureStore:
    from vadctl.store import opening

    return opening.writable(store, create)


def _opened(store: PathLike | FeatureStore | None) -> FeatureStore | None:
    """`store` when it is an open store already (a path is opened later, once arguments check out)."""
    from vadctl.store import FeatureStore

    return store if isinstance(store, FeatureStore) else None


def verify(store: PathLike | FeatureStore | None = None, *, deep: bool = False, forget_damaged: bool = False):
    """(entries checked, problems): every committed entry holds what was written (cheap: file
    counts and sizes; `deep`: every file re-hashed) and every record is readable. With
    `forget_damaged`, damaged data is taken out of use (quarantined) so `extract` redoes it."""
    if not forget_damaged:
        return _readable(store).verify(deep=deep)
    from vadctl.store.maintenance import forget_damaged as forget

    opened = _writable(store, create=False)
    checked, problems = opened.verify(deep=deep)
    forget(opened, problems)
    return checked, problems


def gc(
    store: PathLike | FeatureStore | None = None,
    *,
    apply: bool = False,
    keep_for: Sequence[PathLike] = (),
    jobs: Sequence[PathLike] = (),
    results: Sequence[PathLike] = (),
    days: int | None = None,
):
    """Data no record refers to, the trash and the quarantine; and entries superseded by a newer
    entry of the same feature that no model in use needs: listed, and removed with `apply=True`
    (a `store.maintenance.MaintenanceReport`). What is in use comes from model files (`keep_for`),
    job files (`jobs`: their models, their [extract], their results) and results datasets
    (`results`: models that scored in the last `days` days or in the last run); told none of
    them, gc keeps every committed entry (listed in the report's `kept`)."""
    from vadctl.nightly.usage import USED_DAYS, entries_in_use
    from vadctl.store.maintenance import gc as collect

    in_use = None
    if days is not None and not (jobs or results):
        raise UsageError("--days: applies to results datasets; name them with --job or --results")
    if keep_for or jobs or results:  # checked before the store is opened for writing
        days = USED_DAYS if days is None else checks.whole(days, "--days", 0)
        where = store.path if _opened(store) is not None else defaults.store_path(store)
        in_use = entries_in_use(where, models=keep_for, jobs=jobs, results=results, days=days).entries
    return collect(_writable(store, create=False), apply=apply, in_use=in_use)


def verify_sources(store: PathLike | FeatureStore | None = None, *, splits: Sequence[str] | None = None):
    """Re-hash every video's source in full (or those of some splits), compare with the sha256
    recorded at extraction, and mark changed ones so the next `extract` redoes them; records
    without that hash get it now. A list of `extraction.sources.SourceCheck`."""
    from vadctl.extraction.sources import verify_sources as check

    return check(_writable(store, create=False), splits)


def prune(store: PathLike | FeatureStore | None = None, *, missing_sources: bool = True, apply: bool = False):
    """Videos whose source file is gone: listed, and forgotten with `apply=True`."""
    from vadctl.store.maintenance import MaintenanceReport, prune_missing_sources

    if not missing_sources:
        return MaintenanceReport(applied=apply)
    return prune_missing_sources(_writable(store, create=False), apply=apply)


def feature_params(params: Mapping[str, Any] | Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """Featurizer parameters as {feature: {param: value}}, from that form, from {'feature.param':
    value}, or from ['feature.param=value', ...] (values parsed as JSON when they parse)."""
    from vadctl.extraction.recipe import feature_params as parse

    return parse(params)


def extract(
    roots: PathLike | Sequence[PathLike],
    store: PathLike | FeatureStore | None = None,
    split: str = defaults.TRAIN_SPLIT,
    features: str | Sequence[str] | None = None,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    weights: Mapping[str, PathLike] | Iterable[str] | None = None,
    *,
    scene: str | None = None,
    resize: str | None = None,
    clip_len: int = defaults.CLIP_LENGTH,
    clip_stride: int = defaults.CLIP_STRIDE,
    frame_step: int = defaults.FRAME_STEP,
    window: int = defaults.WINDOW,
    force: bool = False,
    retry_failed: bool = False,
    keep_truncated: bool = False,
    decoder: str = "auto",
    wait: float = defaults.WAIT_SECONDS,
    debug: bool = False,
    workers: int = defaults.WORKERS,
    executor: str = "local",
    ray_address: str | None = None,
    segment_frames: int | None = None,
    follow_links: bool = False,
    progress: ProgressArg = None,
):
    """Featurize every video under `roots` into `split` of the store, doing only new or changed
    work; returns an `extraction.extractor.ExtractReport` (failed videos are listed there, not raised).

    `workers`: videos extracted at once, in that many processes (`executor="local"`; 1 runs here)
    or Ray tasks (`executor="ray"`, on the cluster at `ray_address`, else a local one). Videos
    longer than `segment_frames` frames are cut into chunk-aligned segments that run in parallel
    (default: `defaults.SEGMENT_FRAMES` when running in parallel, never when serial; 0: never).
    The store written is the same, array for array, whatever the executor. Symlinked folders that
    lead out of a root are skipped (listed in the report) unless `follow_links`. A file holding fewer
    frames than its container declares fails, unless `keep_truncated`: its frames are then kept and
    its record's status is "truncated". `decoder`: decord, pyav, or auto (decord where it imports,
    else PyAV); recorded in each video's record, and features decoded by PyAV are entries of their own."""
    from vadctl.executors.choose import check_executor
    from vadctl.extraction import run as extraction
    from vadctl.extraction.recipe import ExtractRecipe

    check_executor(executor, workers, ray_address, segment_frames)
    recipe = ExtractRecipe.make(
        store,
        split,
        features,
        params,
        weights,
        scene=scene,
        resize=resize,
        clip_len=clip_len,
        clip_stride=clip_stride,
        frame_step=frame_step,
        window=window,
        force=force,
        retry_failed=retry_failed,
        keep_truncated=keep_truncated,
        decoder=decoder,
        wait=wait,
        debug=debug,
        segment_frames=segment_frames,
    )
    opened = _opened(store)
    return extraction.extract(
        roots,
        recipe,
        opened,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        follow_links=follow_links,
        progress=as_progress(progress),
    )


def plan_extract(
    roots: PathLike | Sequence[PathLike],
    store: PathLike | FeatureStore | None = None,
    split: str = defaults.TRAIN_SPLIT,
    features: str | Sequence[str] | None = None,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    weights: Mapping[str, PathLike] | Iterable[str] | None = None,
    **options: Any,
):
    """What `extract` with the same arguments would do, doing none of it (nothing is written, not
    even a new store; only the records index beside the store may be refreshed): a list of
    `extraction.extractor.PlannedVideo`. `options` are `extract`'s keywords; those that only change
    how extraction runs (window, wait, debug, progress, workers, ...) are ignored."""
    import inspect

    from vadctl.extraction import run as extraction
    from vadctl.extraction.recipe import ExtractRecipe

    unknown = sorted(set(options) - set(inspect.signature(extract).parameters))
    if unknown:
        raise TypeError(f"plan_extract() got unexpected keyword argument(s) {', '.join(unknown)}")
    what = {key: options[key] for key in PLAN_OPTIONS if key in options}
    recipe = ExtractRecipe.make(store, split, features, params, weights, **what)
    return extraction.plan_extract(roots, recipe, _opened(store), bool(options.get("follow_links", False)))


PLAN_OPTIONS = ("scene", "resize", "clip_len", "clip_stride", "frame_step", "force", "retry_failed", "decoder")


def fit(
    model: str,
    store: PathLike | FeatureStore | None = None,
    out: PathLike | None = None,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    split: str = defaults.TRAIN_SPLIT,
    threshold: str = defaults.THRESHOLD_RULE,
    validation_fraction: float = defaults.VALIDATION_FRACTION,
    seed: int = 0,
    epochs: float | None = None,
    steps: int | None = None,
    device: str | None = None,
    resume: bool = False,
    checkpoint_every: int = 100,
    time_limit: float | None = None,
    video_labels: PathLike | None = None,
    progress: ProgressArg = None,
) -> Path:
    """Fit `model` on the cached features of `split` and save it (default:
    stores/models/<model>.safetensors); returns the model file's path.

    `epochs`, `steps` and `device` are shorthands for the parameters of models that train in steps;
    `time_limit` (seconds of training) stops them early, keeping the steps done.
    `video_labels` (CSV video,label[,class]) is what weakly supervised models (plovad) learn from.
    """
    from vadctl.common.params import parse_assignments
    from vadctl.models.calibration import parse_rule
    from vadctl.models.fit import fit_model
    from vadctl.models.training import TrainOptions
    from vadctl.store import check_split

    check_split(split)
    parse_rule(threshold)
    validation_fraction = checks.real(validation_fraction, "--validation-fraction", above=0, below=1)
    seed = checks.whole(seed, "--seed", minimum=0)
    checkpoint_every = checks.whole(checkpoint_every, "--checkpoint-every")
    if epochs is not None:
        epochs = checks.real(epochs, "--epochs", above=0)
    if steps is not None:
        steps = checks.whole(steps, "--steps")
    report = as_progress(progress)
    values = dict(params) if isinstance(params, Mapping) else parse_assignments(params or [], "--param", "k=v")
    for key, value in (("epochs", epochs), ("steps", steps), ("device", device)):
        if value is not None:
            values[key] = value
    path = checks.output_file(Path(out) if out is not None else defaults.model_path(model), "--out")
    training = TrainOptions(resume=resume, checkpoint_every=checkpoint_every, progress=report, time_limit=time_limit)
    try:
        result = fit_model(
            _readable(store),
            model,
            values,
            split,
            validation_fraction=validation_fraction,
            seed=seed,
            rule=threshold,
            out=path,
            training=training,
            video_labels=video_labels,
        )
    finally:
        for note in training.notes:
            report.note(note)
    for warning in result.warnings:  # one line each: the threshold may flag too much or nothing
        report.note(f"warning: {warning}")
    return result.path


def regions_path(scores_path: PathLike) -> Path:
    """Where region scores go beside a frame-scores file: <name>.regions.parquet."""
    from vadctl.scoring.tables import regions_path as where

    return where(scores_path)


def beside(scores_path: PathLike, table: str) -> Path:
    """Where another table goes beside a frame-scores file: <name>.<table>.parquet (regions,
    videos, events)."""
    from vadctl.scoring.tables import beside as where

    return where(scores_path, table)


def score(
    model_path: PathLike,
    store: PathLike | FeatureStore | None = None,
    split: str = defaults.TEST_SPLIT,
    out: PathLike = defaults.SCORES,
    *,
    regions_out: PathLike | None = None,
    threshold: str | None = None,
    videos: Sequence[str] | None = None,
    backend: str = "torch",
    onnx: PathLike | None = None,
    workers: int = 1,
    classes: str | Sequence[str] | None = None,
    weights: Mapping[str, PathLike] | Iterable[str] | None = None,
    progress: ProgressArg = None,
) -> Path:
    """Score every usable video of `split` with a fitted model; writes frame scores to `out`, and
    beside it region scores (or to `regions_out`), per-video and per-event tables
    (<name>.videos.parquet, <name>.events.parquet), each atomically; returns `out`. `workers` > 1
    scores videos in that many processes (same tables as serial).

    Rows carry their provenance (model_sha256, video_fingerprint, run_id, scored_at, split) and the
    files' Parquet metadata holds the vadctl version, store, split, feature entries and threshold.
    `classes` ("a,b" or a list) names other classes for models with an open vocabulary (plovad on
    CLIP features); their text tower's weights are found like featurizers' or given in `weights`."""
    from vadctl.executors.choose import check_workers
    from vadctl.models.calibration import parse_rule
    from vadctl.models.files import load_model
    from vadctl.scoring.score import score_tables
    from vadctl.scoring.tables import write_tables
    from vadctl.store import check_split, check_video_id

    check_workers(workers)
    check_split(split)
    if threshold is not None:
        parse_rule(threshold)
    if videos is not None:
        videos = [check_video_id(video) for video in videos]
    out = checks.output_file(out, "--out")
    regions_out = checks.output_file(regions_out if regions_out is not None else regions_path(out), "--regions-out")
    loaded = load_model(Path(model_path))
    if backend == "onnx" and onnx is None:
        onnx = _default_onnx(Path(model_path))
    classes = _class_list(classes)
    feature_store = _readable(store)
    tables = score_tables(
        loaded,
        feature_store,
        split,
        list(videos) if videos is not None else None,
        threshold,
        backend,
        Path(onnx) if onnx is not None else None,
        progress=as_progress(progress),
        classes=classes,
        weights=_weights_dict(weights),
        workers=workers,
        model_path=Path(model_path),
    )
    return write_tables(tables.scores, loaded, Path(model_path), feature_store, split, threshold, out, regions_out)


def evaluate(
    scores: PathLike,
    labels: PathLike,
    *,
    column: str = "score",
    partial: bool = False,
    plots: PathLike | None = None,
) -> dict[str, Any]:
    """Frame-level metrics of a scores file against labels.csv: `micro_auroc`, `macro_auroc`, `ap`,
    `eer`, the confusion matrix at the model's threshold and per-video figures; with `plots`, ROC
    and per-video timeline PNGs are written there (listed under `plots`)."""
    from vadctl.review.metrics import align, read_labels, read_scores
    from vadctl.review.metrics import evaluate as compute

    if plots is not None:
        checks.output_folder(plots, "--plots")
    table = read_scores(Path(scores), column)
    joined, notes = align(table, read_labels(Path(labels)), partial=partial)
    metrics = compute(joined, column, notes)
    result = metrics.to_dict()
    if plots is not None:
        from vadctl.review.report import write_plots

        result["plots"] = [str(p) for p in write_plots(joined, metrics, Path(plots))]
    return result


def run(
    job: PathLike,
    *,
    dry_run: bool = False,
    wait: float = 0.0,
    progress: ProgressArg = None,
):
    """Run a job file (`vadctl run`): extract new videos, score what is unscored into the results
    dataset, log it; returns a `jobs.RunReport` (`exit_code` 0, or 1 when videos failed, listed in
    `failed`). `dry_run` says what would be extracted and scored and touches nothing. When another
    run holds the results dataset, waits up to `wait` seconds, then raises `StoreBusyError`. A job
    with `[review] out` ends by updating that review site (`review`; `report.review` is its page)."""
    from vadctl.errors import VadctlError
    from vadctl.nightly.jobfile import load_job
    from vadctl.nightly.runner import run_job

    loaded = load_job(job)
    report = run_job(loaded, dry_run=dry_run, wait=wait, progress=as_progress(progress))
    if loaded.review is not None and not dry_run and loaded.models:
        # [review] out: the run ends with a fresh review page (the results are committed by now;
        # a page that cannot be written fails the run's exit code, never its results)
        try:
            site = review(loaded.results, loaded.review, top=loaded.review_top, progress=progress)
            report.review = str(site.index)
            report.notes.extend(f"review: {note}" for note in site.notes)
        except VadctlError as error:
            report.review_error = str(error)
            report.notes.append(f"review page not written: {error}")
    return report


def events(
    results: PathLike,
    *,
    since: str | Any = None,
    model: str | None = None,
    min_len: int | None = None,
    min_gap: int | None = None,
    thumbs: PathLike | None = None,
    store: PathLike | None = None,
    progress: ProgressArg = None,
):
    """Events as a polars DataFrame: from a results dataset folder (as `vadctl run` found them), or
    computed from a scores file of `vadctl score` (with `min_len`/`min_gap`, regions read beside it).

    `since` (a date, YYYY-MM-DD, today, yesterday or Nd) keeps events of runs on or after that day;
    `thumbs` writes a PNG of each event's peak frame there (column `thumbnail`), decoded from the
    source the store recorded (`store` overrides the store named in the files' metadata)."""
    from vadctl.review.event_reader import read_events

    return read_events(
        Path(results),
        since=since,
        model=model,
        min_len=min_len,
        min_gap=min_gap,
        thumbs=Path(thumbs) if thumbs is not None else None,
        store=Path(store) if store is not None else None,
        progress=as_progress(progress),
    )


def review(
    results: PathLike,
    out: PathLike = "review",
    *,
    since: str | Any = None,
    model: str | None = None,
    video: str | None = None,
    top: int | None = None,
    store: PathLike | None = None,
    progress: ProgressArg = None,
):
    """Write (or bring up to date) the static review site of a results dataset (or scores files) in
    `out`: open `out/index.html` from disk, offline. Only events it has no entry for yet are
    decoded and plotted. `video` is an id or a glob; `top` shows the N highest peaks in full (the
    counts cover every selected event). Returns a `SiteReport` (index, events, shown, rendered,
    kept, notes); a missing, deleted, changed or undecodable source is a note, never an error."""
    from vadctl.review.site import write_site

    return write_site(
        Path(results),
        Path(out),
        since=since,
        model=model,
        video=video,
        top=top,
        store=Path(store) if store is not None else None,
        progress=as_progress(progress),
    )


@dataclass
class InferReport:
    """What `infer` did: where scores went, which videos were scored, which failed (and why),
    the annotated videos written, and the extract reports of the run."""

    scores: Path | None
    videos: list[str]
    failed: dict[str, str]  # video id → one-line reason naming the file
    annotated: list[Path] = field(default_factory=list)
    extract_reports: list = field(default_factory=list)


def infer(
    videos: PathLike | Sequence[PathLike],
    model: PathLike,
    store: PathLike | FeatureStore | None = None,
    out: PathLike = defaults.INFER_SCORES,
    *,
    video_out: PathLike | None = None,
    split: str = defaults.INFER_SPLIT,
    threshold: str | None = None,
    classes: str | Sequence[str] | None = None,
    weights: Mapping[str, PathLike] | Iterable[str] | None = None,
    backend: str = "torch",
    onnx: PathLike | None = None,
    progress: ProgressArg = None,
) -> InferReport:
    """New video files (or folders of them) end to end with a fitted model: extract exactly the
    feature entries the model file records (the store's cache is reused: a video already there
    costs nothing), score, write the Parquet tables (frames to `out`, the rest beside it) and, with
    `video_out`, an annotated MP4 per video. Videos that cannot be read are reported in `failed`;
    the others are still scored. Any model works, each with the features it was fitted on."""
    from vadctl.extraction.for_model import extract_jobs
    from vadctl.models.files import load_model, read_header
    from vadctl.video.catalog import discover

    model = Path(model)
    loaded = load_model(model)
    header = read_header(model)
    jobs = extract_jobs(header, str(model))
    paths = [videos] if isinstance(videos, str | Path) else list(videos)
    sources = {s.video_id: s for s in discover([Path(p) for p in paths])}
    if not sources:
        raise UsageError(f"{', '.join(str(p) for p in paths)}: no videos found")
    opened = _writable(store)
    reports, failed = [], {}
    for job in jobs:
        report = extract(
            paths,
            opened,
            split,
            job.features,
            job.params,
            weights,
            resize=job.resize,
            decoder=job.decode.decoder or "decord",  # the decoder of the entries the model was fitted on
            clip_len=job.clips.length,
            clip_stride=job.clips.stride,
            frame_step=job.clips.step,
            retry_failed=True,
            progress=progress,
        )
        reports.append(report)
        made = {spec.name: spec.key for spec in report.specs}
        for name, key in job.expected.items():
            if made.get(name) != key:
                raise ModelFileError(
                    f"{model}: was fitted on {key}, and extracting with its recorded parameters now gives "
                    f"{made.get(name)} (another featurizer version or other weights); fit the model again"
                )
        for result in report.failed:
            failed.setdefault(result.video_id, result.error or f"{sources[result.video_id].path}: failed")
    scored = [v for v in sources if v not in failed]
    if not scored:
        return InferReport(None, [], failed, [], reports)
    from vadctl.scoring.score import score_tables
    from vadctl.scoring.tables import write_tables

    classes = _class_list(classes)
    explicit = _weights_dict(weights)
    tables = score_tables(
        loaded,
        opened,
        split,
        scored,
        threshold,
        backend,
        Path(onnx) if onnx is not None else (_default_onnx(model) if backend == "onnx" else None),
        as_progress(progress),
        classes=classes,
        weights=explicit,
    )
    written = write_tables(tables.scores, loaded, model, opened, split, threshold, out)
    annotated = []
    if video_out is not None:
        import polars as pl

        from vadctl.review.annotate import annotate

        for video_id in scored:
            frames = tables.frames.filter(pl.col("video") == video_id)
            regions = tables.regions.filter(pl.col("video") == video_id)
            target = Path(video_out) / f"{_safe_name(video_id)}.mp4"
            annotated.append(annotate(sources[video_id].path, frames, regions, target))
    return InferReport(written, scored, failed, annotated, reports)


def _weights_dict(weights) -> dict[str, Path]:
    from vadctl.backbones.weights import parse_weight_options

    if weights is None:
        return {}
    explicit = weights if isinstance(weights, Mapping) else parse_weight_options(weights)
    return {k: Path(v) for k, v in explicit.items()}


def _default_onnx(model: Path) -> Path:
    from vadctl.scoring.onnx import default_onnx_path

    return default_onnx_path(model)


def _class_list(classes: str | Sequence[str] | None) -> list[str] | None:
    """--classes "a,b" (or a list) as a list of names."""
    if isinstance(classes, str):
        return [c.strip() for c in classes.split(",") if c.strip()]
    return list(classes) if classes is not None else None


def _safe_name(video_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in video_id)
