"""`vadctl fit` and `vadctl models`: train on cached features; list what can be trained."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl import defaults
from vadctl.cli.common import StoreOption, err, human_seconds, one_line_errors, out, store_path


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
            defaults.THRESHOLD_RULE, help="Default threshold rule: sigma:K (μ+Kσ) or percentile:P."
        ),
        validation_fraction: float = typer.Option(
            defaults.VALIDATION_FRACTION,
            help="Share of training videos held out to calibrate models that cannot cross-fit.",
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
        import time

        from vadctl import api
        from vadctl.cli.train_progress import RichTrainProgress
        from vadctl.models.files import read_header

        started = time.perf_counter()
        path = out_path or defaults.model_path(model)
        try:
            written = api.fit(
                model,
                store_path(store),
                path,
                param,
                split=split,
                threshold=threshold,
                validation_fraction=validation_fraction,
                seed=seed,
                epochs=epochs,
                steps=steps,
                device=device,
                resume=resume,
                checkpoint_every=checkpoint_every,
                progress=RichTrainProgress(quiet),
            )
        except KeyboardInterrupt:
            hint = f"continue with `vadctl fit … -o {escape(str(path))} --resume`"
            err.print(f"[yellow]interrupted[/]: no model file written; {hint}")
            raise typer.Exit(130) from None
        header = read_header(written)
        cal = header["calibration"]
        fit_videos = header["provenance"].get("fit_videos", [])
        out.print(
            f"[bold]{escape(model)}[/] fitted on {len(fit_videos)} video(s) of split {escape(repr(split))} "
            f"in {human_seconds(time.perf_counter() - started)}"
        )
        out.print(
            "features: "
            + ", ".join(f"{role}={spec['name']}@{spec['hash']}" for role, spec in header["features"].items()),
            markup=False,
        )
        threshold_value = header["calibration"].get("threshold")
        shown = f"{threshold_value:.6g} " if threshold_value is not None else ""
        out.print(
            f"threshold {cal['rule']}: {shown}(μ={cal['mean']:.6g}, σ={cal['std']:.6g} over "
            f"{cal['n_frames']} held-out normal frames, {cal['method']} on {len(cal['videos'])} video(s))",
            markup=False,
        )
        out.print(f"model file: {escape(str(written))}")

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
            out.print(f"[bold]{escape(cls.name)}[/]: {escape(cls.summary)}")
            out.print(f"needs: {cls.needs}", markup=False)
            out.print(f"can: {_can(cls)}", markup=False)
            out.print(inspect.getdoc(inspect.getmodule(cls)) or "", markup=False)
            _params_table(cls)
            return
        table = Table(title="models", title_justify="left")
        for column in ("model", "what", "needs features", "can"):
            table.add_column(column)
        for key, cls in MODELS.items():
            table.add_row(*(escape(cell) for cell in (key, cls.summary, cls.needs, _can(cls))))
        out.print(table)
        out.print("`vadctl models NAME` lists a model's parameters (set them with `vadctl fit -p KEY=VALUE`).")


def _can(cls) -> str:
    """What a model declares it can do, in words."""
    can = cls.capabilities
    words = {
        "crossfit": "cross-fit calibration",
        "trains_in_steps": "steps, checkpoints, --resume",
        "onnx": "ONNX export",
    }
    return ", ".join(text for key, text in words.items() if getattr(can, key)) or "–"


def _params_table(cls) -> None:
    table = Table(title="parameters", title_justify="left")
    table.add_column("parameter")
    table.add_column("default")
    for key, value in cls.param_defaults().items():
        table.add_row(escape(key), escape(repr(value)))
    out.print(table)


def _describe_file(path: Path) -> None:
    from vadctl.models.files import read_header

    header = read_header(path)
    out.print(
        f"[bold]{escape(str(path))}[/]: "
        + escape(
            f"vadctl model {header['model']} (file format {header['format_version']}, "
            f"vadctl {header['vadctl_version']}, created {header['provenance'].get('created_at', '?')})"
        )
    )
    for role, spec in header["features"].items():
        out.print(f"  {role}: {spec['name']}@{spec['hash']}", markup=False)
    cal = header["calibration"]
    out.print(
        f"  calibration: {cal['method']} on {len(cal['videos'])} video(s), {cal['n_frames']} frames, "
        f"μ={cal['mean']:.6g}, σ={cal['std']:.6g}, rule {cal['rule']}",
        markup=False,
    )
    prov = header["provenance"]
    if "store" in prov:
        out.print(
            f"  fitted on: {prov['store']} split {prov.get('split')} ({len(prov.get('fit_videos', []))} videos)",
            markup=False,
        )
    out.print("  params: " + ", ".join(f"{k}={v!r}" for k, v in header["params"].items()), markup=False)
