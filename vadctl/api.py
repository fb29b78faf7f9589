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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vadctl import checks, defaults
from vadctl.errors import UsageError
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
    progress: ProgressArg = None,
):
    """Featurize every video under `roots` into `split` of the store, doing only new or changed
    work; returns an `extract.ExtractReport` (failed videos are listed there, not raised)."""
    from vadctl import catalog
    from vadctl.extract import Extractor
    from vadctl.features import registry
    from vadctl.features.deep import attach_weights
    from vadctl.specs import ClipSpec, DecodeSpec
    from vadctl.store import check_split
    from vadctl.weights import WeightResolver, parse_weight_options

    check_split(split)
    window = checks.whole(window, "--window")
    wait = checks.real(wait, "--wait", at_least=0)
    if isinstance(roots, str | Path):
        roots = [roots]
    names = registry.parse_names(features)
    featurizers = registry.build(names, feature_params(params))
    explicit = parse_weight_options(weights) if weights is not None and not isinstance(weights, Mapping) else weights
    attach_weights(featurizers, WeightResolver(explicit={k: Path(v) for k, v in (explicit or {}).items()}))
    clips = ClipSpec(clip_len, clip_stride, frame_step)
    decode = DecodeSpec.parse(resize)
    found = catalog.scan([Path(r) for r in roots])
    if not found.sources:
        where = ", ".join(str(r) for r in roots)
        suffixes = ", ".join(sorted(catalog.VIDEO_SUFFIXES))
        more = f" and {len(found.skipped) - 1} more" if len(found.skipped) > 1 else ""
        skipped = f"; skipped {found.skipped[0]}{more}" if found.skipped else ""
        raise UsageError(f"{where}: no videos found (looked for {suffixes} and folders of numbered frames){skipped}")
    extractor = Extractor(
        _writable(store),
        featurizers,
        names,
        split,
        scene=scene,
        decode=decode,
        clips=clips,
        window=window,
        force=force,
        retry_failed=retry_failed,
        wait_timeout=wait,
        debug=debug,
    )
    report = extractor.run(found.sources, as_progress(progress))
    report.skipped = found.skipped
    return report


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
    progress: ProgressArg = None,
) -> Path:
    """Fit `model` on the cached features of `split` and save it (default:
    stores/models/<model>.safetensors); returns the model file's path.

    `epochs`, `steps` and `device` are shorthands for the parameters of models that train in steps.
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
    training = TrainOptions(resume=resume, checkpoint_every=checkpoint_every, progress=report)
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
        )
    finally:
        for note in training.notes:
            report.note(note)
    return result.path


def regions_path(scores_path: PathLike) -> Path:
    """Where region scores go beside a frame-scores file: <name>.regions.parquet."""
    path = Path(scores_path)
    return path.with_name(path.stem + ".regions.parquet")


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
    progress: ProgressArg = None,
) -> Path:
    """Score every usable video of `split` with a fitted model; writes frame scores to `out` and
    region scores beside it (or to `regions_out`), each atomically; returns `out`."""
    from vadctl.models.files import load_model
    from vadctl.pipeline import score_model
    from vadctl.scoring import parse_rule, write_parquet_atomic
    from vadctl.store import check_split, check_video_id

    check_split(split)
    if threshold is not None:
        parse_rule(threshold)
    if videos is not None:
        videos = [check_video_id(video) for video in videos]
    out = checks.output_file(out, "--out")
    regions_out = checks.output_file(regions_out if regions_out is not None else regions_path(out), "--regions-out")
    loaded = load_model(Path(model_path))
    if backend == "onnx" and onnx is None:
        from vadctl.onnx_export import default_onnx_path

        onnx = default_onnx_path(Path(model_path))
    frames, regions = score_model(
        loaded,
        _readable(store),
        split,
        list(videos) if videos is not None else None,
        threshold,
        backend,
        Path(onnx) if onnx is not None else None,
        progress=as_progress(progress),
    )
    written = write_parquet_atomic(frames, Path(out))
    write_parquet_atomic(regions, regions_out)
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
