"""The Python API: one call per job, and the one place where a job is assembled.

The CLI, the demo, the nightly runner, executors, tests and benchmarks all call these functions,
so a job behaves the same whoever starts it. Keyword names follow the CLI options. Nothing here
prints: progress reaches the caller through `progress=` (a `vadctl.progress.Progress` or any
callable receiving `fn(event, **fields)`).

    from vadctl import api
    report = api.extract(["videos/train"], "stores/cam.zarr", split="train")
    model = api.fit("aivad", "stores/cam.zarr", "models/aivad.safetensors")
    scores = api.score(model, "stores/cam.zarr", "test", "scores.parquet")
    metrics = api.evaluate(scores, "labels.csv")
    done = api.infer(["new/cam3.mp4"], model, "stores/cam.zarr", "cam3.parquet", video_out="annotated/")
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from vadctl import checks, defaults
from vadctl.errors import ModelFileError, UsageError
from vadctl.progress import Progress, as_progress
from vadctl.store import FeatureStore

PathLike = str | Path
ProgressArg = Progress | Callable[..., Any] | None


def open_store(path: PathLike | None = None, *, create: bool = False, read_only: bool = True) -> FeatureStore:
    """The feature store at `path` (default: $VADCTL_STORE or stores/default.zarr), for reading
    unless `read_only=False`; `create=True` makes an empty one when there is none."""
    where = defaults.store_path(path)
    if create and not (where / "zarr.json").is_file():
        checks.output_folder(where, "--store")
    return FeatureStore(where, create=create, read_only=read_only and not create)


def verify(store: PathLike | FeatureStore | None = None, *, deep: bool = False, forget_damaged: bool = False):
    """(entries checked, problems): every committed entry holds what was written (cheap: file
    counts and sizes; `deep`: every file re-hashed) and every record is readable. With
    `forget_damaged`, damaged data is taken out of use (quarantined) so `extract` redoes it."""
    if not forget_damaged:
        return _readable(store).verify(deep=deep)
    from vadctl.store.maintenance import forget_damaged as forget

    writable = _writable(store, create=False)
    checked, problems = writable.verify(deep=deep)
    forget(writable, problems)
    return checked, problems


def gc(store: PathLike | FeatureStore | None = None, *, apply: bool = False):
    """Entries superseded by newer parameters and data no record refers to: listed, and removed
    with `apply=True` (a `store.maintenance.MaintenanceReport`)."""
    from vadctl.store.maintenance import gc as collect

    return collect(_writable(store, create=False), apply=apply)


def prune(store: PathLike | FeatureStore | None = None, *, missing_sources: bool = True, apply: bool = False):
    """Videos whose source file is gone: listed, and forgotten with `apply=True`."""
    from vadctl.store.maintenance import MaintenanceReport, prune_missing_sources

    if not missing_sources:
        return MaintenanceReport(applied=apply)
    return prune_missing_sources(_writable(store, create=False), apply=apply)


def _writable(store: PathLike | FeatureStore | None, create: bool = True) -> FeatureStore:
    if isinstance(store, FeatureStore):
        return store
    return open_store(store, create=create, read_only=False)


def _readable(store: PathLike | FeatureStore | None) -> FeatureStore:
    return store if isinstance(store, FeatureStore) else open_store(store)


def feature_params(params: Mapping[str, Any] | Iterable[str] | None) -> dict[str, dict[str, Any]]:
    """Featurizer parameters as {feature: {param: value}}, from that form, from {'feature.param':
    value}, or from ['feature.param=value', ...] (values parsed as JSON when they parse)."""
    from vadctl.features.registry import featurizer_class
    from vadctl.options import parse_assignments

    if params is None:
        return {}
    flat = parse_assignments(params, "--param", "velocity.n_bins=4") if not isinstance(params, Mapping) else params
    nested: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        if isinstance(value, Mapping):
            featurizer_class(key)
            nested.setdefault(key, {}).update(value)
            continue
        name, dot, param = str(key).partition(".")
        if not dot or not name or not param:
            raise UsageError(f"--param {key}={value}: expected FEATURE.PARAM=VALUE (e.g. velocity.n_bins=4)")
        featurizer_class(name)
        nested.setdefault(name, {})[param] = value
    return nested


@dataclass(frozen=True)
class ExtractJob:
    """Everything that defines an extraction run, picklable: each worker process (local pool, Ray)
    rebuilds the run's extractor from it, once (`worker_extractor`)."""

    store: Path
    split: str
    names: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    weights: dict[str, Path]
    scene: str | None
    resize: str | None
    clip_len: int
    clip_stride: int
    frame_step: int
    window: int
    force: bool
    retry_failed: bool
    wait: float
    debug: bool
    segment_frames: int | None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def build_extractor(job: ExtractJob, store: FeatureStore | None = None, needs_store: bool = True):
    """The run's `Extractor`: featurizers built and their weights found, store opened for writing
    (unless given, or `needs_store` is False: a dry run's extractor may have no store)."""
    from vadctl.extract import Extractor
    from vadctl.features import registry
    from vadctl.features.deep import attach_weights
    from vadctl.specs import ClipSpec, DecodeSpec
    from vadctl.weights import WeightResolver

    featurizers = registry.build(job.names, job.params)
    attach_weights(featurizers, WeightResolver(explicit=dict(job.weights)))
    return Extractor(
        store if store is not None or not needs_store else _writable(job.store, create=False),
        featurizers,
        job.names,
        job.split,
        scene=job.scene,
        decode=DecodeSpec.parse(job.resize),
        clips=ClipSpec(job.clip_len, job.clip_stride, job.frame_step),
        window=job.window,
        force=job.force,
        retry_failed=job.retry_failed,
        wait_timeout=job.wait,
        debug=job.debug,
        segment_frames=job.segment_frames,
    )


_WORKER_EXTRACTORS: dict[str, Any] = {}


def worker_extractor(job: ExtractJob):
    """This process's extractor for `job`, built on first use: a worker loads its featurizers'
    models once for all the videos it is given (`features.loaded` keeps them across runs)."""
    if job.run_id not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS.clear()
        _WORKER_EXTRACTORS[job.run_id] = build_extractor(job)
    return _WORKER_EXTRACTORS[job.run_id]


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
    wait: float = defaults.WAIT_SECONDS,
    debug: bool = False,
    workers: int = defaults.WORKERS,
    executor: str = "local",
    ray_address: str | None = None,
    segment_frames: int | None = None,
    progress: ProgressArg = None,
):
    """Featurize every video under `roots` into `split` of the store, doing only new or changed
    work; returns an `extract.ExtractReport` (failed videos are listed there, not raised).

    `workers`: videos extracted at once, in that many processes (`executor="local"`; 1 runs here)
    or Ray tasks (`executor="ray"`, on the cluster at `ray_address`, else a local one). Videos
    longer than `segment_frames` frames are cut into chunk-aligned segments that run in parallel
    (default: `defaults.SEGMENT_FRAMES` when running in parallel, never when serial; 0: never).
    The store written is the same, array for array, whatever the executor."""
    from vadctl.executors.choose import check_executor, make_pool

    check_executor(executor, workers, ray_address, segment_frames)
    parallel = executor == "ray" or workers > 1
    if segment_frames is None:
        segment_frames = defaults.SEGMENT_FRAMES if parallel else 0
    job, found, resources = _job(
        roots,
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
        wait=wait,
        debug=debug,
        segment_frames=segment_frames or None,
    )
    extractor = build_extractor(job, needs_store=False)  # featurizers and their weights checked first
    extractor.store = _writable(store)  # opened (or created) only once arguments, weights and videos check out
    pool = make_pool(extractor, job, executor, workers, ray_address, resources)
    report = extractor.run(found.sources, as_progress(progress), pool)
    report.skipped = found.skipped
    return report


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
    even a new store): a list of `extract.PlannedVideo`. `options` are `extract`'s keywords; those
    that only change how extraction runs (window, wait, debug, progress, workers, ...) are ignored."""
    import inspect

    unknown = sorted(set(options) - set(inspect.signature(extract).parameters))
    if unknown:
        raise TypeError(f"plan_extract() got unexpected keyword argument(s) {', '.join(unknown)}")
    what = {key: options[key] for key in _PLAN_OPTIONS if key in options}
    path = store.path if isinstance(store, FeatureStore) else defaults.store_path(store)
    existing = store if isinstance(store, FeatureStore) else None
    if existing is None and (path / "zarr.json").exists():
        existing = open_store(path)
    job, found, _ = _job(roots, path, split, features, params, weights, **what)
    extractor = build_extractor(job, existing, needs_store=False)
    return extractor.plan(found.sources, records=None if existing is not None else {})


_PLAN_OPTIONS = ("scene", "resize", "clip_len", "clip_stride", "frame_step", "force", "retry_failed")


def _job(
    roots,
    store,
    split,
    features,
    params,
    weights,
    *,
    scene=None,
    resize=None,
    clip_len=defaults.CLIP_LENGTH,
    clip_stride=defaults.CLIP_STRIDE,
    frame_step=defaults.FRAME_STEP,
    window=defaults.WINDOW,
    force=False,
    retry_failed=False,
    wait=defaults.WAIT_SECONDS,
    debug=False,
    segment_frames=None,
) -> tuple[ExtractJob, Any, dict[str, float]]:
    """The run's `ExtractJob`, the videos found and the GPUs per feature, for `extract` and
    `plan_extract` alike; every argument is checked here, before any store is opened."""
    from vadctl import catalog
    from vadctl.features import registry
    from vadctl.specs import ClipSpec, DecodeSpec
    from vadctl.store import check_split
    from vadctl.weights import parse_weight_options

    check_split(split)
    window = checks.whole(window, "--window")
    wait = checks.real(wait, "--wait", at_least=0)
    if isinstance(roots, str | Path):
        roots = [roots]
    names = registry.parse_names(features)
    nested, resources = split_resources(feature_params(params))
    explicit = parse_weight_options(weights) if weights is not None and not isinstance(weights, Mapping) else weights
    ClipSpec(clip_len, clip_stride, frame_step)  # checked before anything is written
    DecodeSpec.parse(resize)
    found = catalog.scan([Path(r) for r in roots])
    if not found.sources:
        where = ", ".join(str(r) for r in roots)
        suffixes = ", ".join(sorted(catalog.VIDEO_SUFFIXES))
        more = f" and {len(found.skipped) - 1} more" if len(found.skipped) > 1 else ""
        skipped = f"; skipped {found.skipped[0]}{more}" if found.skipped else ""
        raise UsageError(f"{where}: no videos found (looked for {suffixes} and folders of numbered frames){skipped}")
    job = ExtractJob(
        defaults.store_path(store.path if isinstance(store, FeatureStore) else store),
        split,
        tuple(names),
        nested,
        {k: Path(v) for k, v in (explicit or {}).items()},
        scene,
        resize,
        clip_len,
        clip_stride,
        frame_step,
        window,
        force,
        retry_failed,
        wait,
        debug,
        segment_frames,
    )
    return job, found, resources


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
    from vadctl.options import parse_assignments
    from vadctl.pipeline import fit_model
    from vadctl.scoring import parse_rule
    from vadctl.store import check_split
    from vadctl.training import TrainOptions

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
    return beside(scores_path, "regions")


def beside(scores_path: PathLike, table: str) -> Path:
    """Where another table goes beside a frame-scores file: <name>.<table>.parquet (regions,
    videos, events)."""
    path = Path(scores_path)
    return path.with_name(f"{path.stem}.{table}.parquet")


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
    from vadctl.models.files import load_model
    from vadctl.pipeline import score_tables
    from vadctl.scoring import parse_rule
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
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
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
    return write_tables(tables, loaded, Path(model_path), feature_store, split, threshold, out, regions_out)


def write_tables(
    tables, loaded, model_path: Path, store: FeatureStore, split: str, rule, out, regions_out=None
) -> Path:
    """Frames to `out`, the other tables beside it (regions to `regions_out` when given), each
    with its provenance (columns and Parquet metadata) and written atomically."""
    from vadctl.provenance import Provenance, with_provenance_frames, with_provenance_regions
    from vadctl.scoring import write_parquet_atomic

    provenance = Provenance.of(loaded, model_path, store.path, split, rule=rule)
    records = {r.video_id: r for r in store.videos(split)}
    frames = with_provenance_frames(tables.frames, provenance, records)
    regions = with_provenance_regions(tables.regions, provenance, records)
    written = write_parquet_atomic(frames, Path(out), provenance.metadata("frames"))
    regions_file = Path(regions_out) if regions_out is not None else regions_path(out)
    write_parquet_atomic(regions, regions_file, provenance.metadata("regions"))
    write_parquet_atomic(tables.videos, beside(out, "videos"), provenance.metadata("videos"))
    write_parquet_atomic(tables.events, beside(out, "events"), provenance.metadata("events"))
    return written


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
    from vadctl.metrics import align, read_labels, read_scores
    from vadctl.metrics import evaluate as compute

    if plots is not None:
        checks.output_folder(plots, "--plots")
    table = read_scores(Path(scores), column)
    joined, notes = align(table, read_labels(Path(labels)), partial=partial)
    metrics = compute(joined, column, notes)
    result = metrics.to_dict()
    if plots is not None:
        from vadctl.report import write_plots

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
    run holds the results dataset, waits up to `wait` seconds, then raises `StoreBusyError`."""
    from vadctl.jobfile import load_job
    from vadctl.jobs import run_job

    return run_job(load_job(job), dry_run=dry_run, wait=wait, progress=as_progress(progress))


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
    from vadctl.event_reader import read_events

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
    from vadctl.catalog import discover
    from vadctl.models.files import load_model, read_header
    from vadctl.recipes import extract_jobs

    model = Path(model)
    loaded = load_model(model)
    header = read_header(model)
    jobs = extract_jobs(header, str(model))
    paths = [videos] if isinstance(videos, str | Path) else list(videos)
    sources = {s.video_id: s for s in discover([Path(p) for p in paths])}
    if not sources:
        raise UsageError(f"{', '.join(str(p) for p in paths)}: no videos found")
    writable = _writable(store)
    reports, failed = [], {}
    for job in jobs:
        report = extract(
            paths,
            writable,
            split,
            job.features,
            job.params,
            weights,
            resize=job.resize,
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
    from vadctl.pipeline import score_tables

    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    explicit = _weights_dict(weights)
    tables = score_tables(
        loaded,
        writable,
        split,
        scored,
        threshold,
        backend,
        Path(onnx) if onnx is not None else (_default_onnx(model) if backend == "onnx" else None),
        as_progress(progress),
        classes=classes,
        weights=explicit,
    )
    written = write_tables(tables, loaded, model, writable, split, threshold, out)
    annotated = []
    if video_out is not None:
        from vadctl.annotate import annotate

        for video_id in scored:
            frames = tables.frames.filter(pl.col("video") == video_id)
            regions = tables.regions.filter(pl.col("video") == video_id)
            target = Path(video_out) / f"{_safe_name(video_id)}.mp4"
            annotated.append(annotate(sources[video_id].path, frames, regions, target))
    return InferReport(written, scored, failed, annotated, reports)


def _weights_dict(weights) -> dict[str, Path]:
    from vadctl.weights import parse_weight_options

    if weights is None:
        return {}
    explicit = weights if isinstance(weights, Mapping) else parse_weight_options(weights)
    return {k: Path(v) for k, v in explicit.items()}


def _default_onnx(model: Path) -> Path:
    from vadctl.onnx_export import default_onnx_path

    return default_onnx_path(model)


def _safe_name(video_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in video_id)
