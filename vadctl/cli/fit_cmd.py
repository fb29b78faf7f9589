"""`vadctl fit` and `vadctl models`: train on cached features; list what can be trained."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from rich.table import Table

from vadctl.cli.common import StoreOption, err, human_seconds, one_line_errors, out, parse_assignments, store_path

DEFAULT_RULE = "robust:3"  # vadctl.scoring.DEFAULT_RULE, repeated so `--help` needs no heavy imports


def default_model_path(name: str) -> Path:
    return Path("stores/models") / f"{name}.safetensors"


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def fit(
        model: str = typer.Option(..., "--model", "-m", help="Model to fit (list them with `vadctl models`)."),
        store: Path | None = StoreOption,
        split: str = typer.Option("train", help="Split with normal training videos."),
        out_path: Path | None = typer.Option(
            None, "--out", "-o", help="Model file [default: stores/models/<model>.safetensors]."
        ),
        param: list[str] = typer.Option([], "--param", "-p", help="Model parameter KEY=VALUE (repeatable)."),
        threshold: str = typer.Option(
            DEFAULT_RULE,
            help="Threshold rule on held-out normal scores: robust:K (median + Kσ̂, σ̂ = q84.13 − median), "
            "sigma:K (μ+Kσ) or percentile:P.",
        ),
        validation_fraction: float = typer.Option(
            0.2, help="Share of training videos held out to calibrate models that cannot cross-fit."
        ),
        seed: int = typer.Option(0, help="Seed for the held-out video choice."),
        epochs: float | None = typer.Option(None, help="Neural models: training epochs (= -p epochs=…)."),
        steps: int | None = typer.Option(None, help="Neural models: training steps, overriding epochs (= -p steps=…)."),
        device: str | None = typer.Option(None, help="Neural models: auto, cpu or cuda[:i] (= -p device=…)."),
        resume: bool = typer.Option(False, help="Neural models: continue from the checkpoint in <out>.ckpt/."),
        checkpoint_every: int = typer.Option(100, help="Neural models: save a checkpoint every N steps."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Fit a model on the cached features of a split and save it (safetensors + JSON)."""
        from vadctl.cli.train_progress import RichTrainProgress
        from vadctl.pipeline import fit_model
        from vadctl.store import FeatureStore
        from vadctl.training import TrainOptions

        params = parse_assignments(param, "--param", "n_components_velocity=2")
        for key, value in (("epochs", epochs), ("steps", steps), ("device", device)):
            if value is not None:
                params[key] = value
        feature_store = FeatureStore(store_path(store), read_only=True)
        path = out_path or default_model_path(model)
        training = TrainOptions(resume=resume, checkpoint_every=checkpoint_every, progress=RichTrainProgress(quiet))
        try:
            result = fit_model(
                feature_store,
                model,
                params,
                split,
                validation_fraction=validation_fraction,
                seed=seed,
                rule=threshold,
                out=path,
                training=training,
            )
        except KeyboardInterrupt:
            for note in training.notes:
                err.print(note)
            err.print(f"[yellow]interrupted[/]: no model file written; continue with `vadctl fit … -o {path} --resume`")
            raise typer.Exit(130) from None
        for note in result.notes:
            out.print(note)
        cal = result.calibration
        out.print(
            f"[bold]{model}[/] fitted on {len(result.fit_videos)} video(s) of split {split!r} "
            f"in {human_seconds(result.seconds)}"
        )
        out.print("features: " + ", ".join(f"{role}={spec.key}" for role, spec in result.model.features_.items()))
        out.print(
            f"threshold {cal.rule}: {cal.threshold():.6g} (median {cal.median:.6g}, σ̂ {cal.robust_std:.6g}, "
            f"μ {cal.mean:.6g}, σ {cal.std:.6g} over {cal.n_frames} held-out normal frames, {cal.method} on "
            f"{len(cal.videos)} video(s); flags {cal.flagged_share():.1%} of them)"
        )
        for warning in result.warnings:
            err.print(f"[yellow]warning[/]: {warning}", soft_wrap=True)
        out.print(f"model file: {result.path}")

    @app.command()
    @one_line_errors
    def models(
        name: str | None = typer.Argument(None, help="Show one model in detail."),
        file: Path | None = typer.Option(None, "--file", "-f", help="Describe a fitted model file instead."),
    ) -> None:
        """List models, their parameters and the features they need."""
        from vadctl.models import MODELS, model_class

        if file is not None:
            _describe_file(file)
            return
        if name is not None:
            cls = model_class(name)
            out.print(f"[bold]{cls.name}[/]: {cls.summary}")
            out.print(f"needs: {cls.needs}")
            out.print(inspect.getdoc(inspect.getmodule(cls)) or "")
            _params_table(cls)
            return
        table = Table(title="models", title_justify="left")
        for column in ("model", "what", "needs features"):
            table.add_column(column)
        for key in sorted(MODELS):
            cls = MODELS[key]
            table.add_row(key, cls.summary, cls.needs)
        out.print(table)
        out.print("`vadctl models NAME` lists a model's parameters (set them with `vadctl fit -p KEY=VALUE`).")


def _params_table(cls) -> None:
    table = Table(title="parameters", title_justify="left")
    table.add_column("parameter")
    table.add_column("default")
    for key, value in cls.param_defaults().items():
        table.add_row(key, repr(value))
    out.print(table)


def _describe_file(path: Path) -> None:
    from vadctl.models.files import read_header

    header = read_header(path)
    out.print(
        f"[bold]{path}[/]: vadctl model {header['model']} (file format {header['format_version']}, "
        f"vadctl {header['vadctl_version']}, created {header['provenance'].get('created_at', '?')})"
    )
    for role, spec in header["features"].items():
        out.print(f"  {role}: {spec['name']}@{spec['hash']}")
    cal = header["calibration"]
    out.print(
        f"  calibration: {cal['method']} on {len(cal['videos'])} video(s), {cal['n_frames']} frames, "
        f"μ={cal['mean']:.6g}, σ={cal['std']:.6g}, rule {cal.get('rule', 'sigma:3')}"
    )
    prov = header["provenance"]
    if "store" in prov:
        out.print(f"  fitted on: {prov['store']} split {prov.get('split')} ({len(prov.get('fit_videos', []))} videos)")
    out.print("  params: " + ", ".join(f"{k}={v!r}" for k, v in header["params"].items()))
