"""`vadctl fit` and `vadctl models`: train on cached features; list what can be trained."""

from __future__ import annotations

import inspect
import json
import shutil
import sys
import tempfile
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl import defaults
from vadctl.cli.common import StoreOption, err, fail, human_seconds, is_stdout, one_line_errors, out, store_path


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def fit(
        model: str = typer.Option(..., "--model", "-m", help="Model to fit (list them with `vadctl models`)."),
        store: Path | None = StoreOption,
        split: str = typer.Option("train", help="Split with normal training videos."),
        out_path: Path | None = typer.Option(
            None, "--out", "-o", help="Model file [default: stores/models/<model>.safetensors]; - writes it to stdout."
        ),
        param: list[str] = typer.Option([], "--param", "-p", help="Model parameter KEY=VALUE (repeatable)."),
        threshold: str = typer.Option(
            defaults.THRESHOLD_RULE,
            help="Threshold rule on held-out normal scores: robust:K (median + Kσ̂, σ̂ = q84.13 − median), "
            "sigma:K (μ+Kσ) or percentile:P.",
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
        time_limit: float | None = typer.Option(
            None, help="Neural models: stop after this many minutes of training (the steps done are kept)."
        ),
        video_labels: Path | None = typer.Option(
            None, help="Weakly supervised models (plovad): CSV video,label[,class] of the split's videos."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Fit a model on the cached features of a split and save it (safetensors + JSON)."""
        import time

        from vadctl import api
        from vadctl.cli.train_progress import RichTrainProgress
        from vadctl.models.files import read_header

        started = time.perf_counter()
        to_stdout = is_stdout(out_path)
        if to_stdout and resume:
            raise fail("--resume needs the checkpoints beside a model file; give --out a file, not '-'")
        scratch = tempfile.TemporaryDirectory(prefix="vadctl-fit-") if to_stdout else None
        path = Path(scratch.name) / f"{model}.safetensors" if scratch else out_path or defaults.model_path(model)
        say = err if to_stdout else out  # stdout carries the model file
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
                time_limit=None if time_limit is None else time_limit * 60,
                video_labels=video_labels,
                progress=RichTrainProgress(quiet),
            )
        except KeyboardInterrupt:
            hint = f"continue with `vadctl fit … -o {escape(str(path))} --resume`"
            err.print(f"[yellow]interrupted[/]: no model file written; {hint}")
            raise typer.Exit(130) from None
        header = read_header(written)
        cal = header["calibration"]
        fit_videos = header["provenance"].get("fit_videos", [])
        say.print(
            f"[bold]{escape(model)}[/] fitted on {len(fit_videos)} video(s) of split {escape(repr(split))} "
            f"in {human_seconds(time.perf_counter() - started)}"
        )
        say.print(
            "features: "
            + ", ".join(f"{role}={spec['name']}@{spec['hash']}" for role, spec in header["features"].items()),
            markup=False,
        )
        threshold_value = header["calibration"].get("threshold")
        shown = f"{threshold_value:.6g} " if threshold_value is not None else ""
        robust = f"median {cal['median']:.6g}, σ̂ {cal['robust_std']:.6g}, " if "median" in cal else ""
        flagged = f"; flags {cal['flagged']:.1%} of them" if "flagged" in cal else ""
        say.print(
            f"threshold {cal['rule']}: {shown}({robust}μ {cal['mean']:.6g}, σ {cal['std']:.6g} over "
            f"{cal['n_frames']} held-out normal frames, {cal['method']} on {len(cal['videos'])} video(s){flagged})"
        )
        if scratch is not None:
            with written.open("rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            scratch.cleanup()
            return
        say.print(f"model file: {escape(str(written))}")

    @app.command()
    @one_line_errors
    def models(
        name: str | None = typer.Argument(None, help="Show one model in detail."),
        file: Path | None = typer.Option(None, "--file", "-f", help="Describe a fitted model file instead."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    ) -> None:
        """List models, their parameters and the features they need."""
        from vadctl.models import MODELS, model_class

        if as_json:
            print(json.dumps(_models_json(name, file), indent=2, default=str))
            return
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


def _models_json(name: str | None, file: Path | None) -> dict | list:
    """`vadctl models --json`: a model file's header (with its sha256), one model, or all of them."""
    from vadctl.models import MODELS, model_class
    from vadctl.models.files import read_header
    from vadctl.scoring.provenance import file_sha256

    if file is not None:
        return {"path": str(file), "sha256": file_sha256(file), **read_header(file)}

    def describe(cls, params: bool) -> dict:
        can = cls.capabilities
        found = {"model": cls.name, "summary": cls.summary, "needs": cls.needs}
        found["capabilities"] = {k: getattr(can, k) for k in ("crossfit", "trains_in_steps", "onnx")}
        return found | ({"params": cls.param_defaults()} if params else {})

    if name is not None:
        return describe(model_class(name), params=True)
    return [describe(cls, params=False) for _, cls in MODELS.items()]


def _can(cls) -> str:
    """What a model declares it can do, in words."""
    can = cls.capabilities
    words = {
        "crossfit": "cross-fit calibration",
        "trains_in_steps": "steps, checkpoints, --resume",
        "onnx": "ONNX export",
        "video_labels": "video-level labels (--video-labels)",
        "classes": "anomaly classes",
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
        f"μ={cal['mean']:.6g}, σ={cal['std']:.6g}, rule {cal.get('rule', 'sigma:3')}",
        markup=False,
    )
    prov = header["provenance"]
    if "store" in prov:
        out.print(
            f"  fitted on: {prov['store']} split {prov.get('split')} ({len(prov.get('fit_videos', []))} videos)",
            markup=False,
        )
    out.print("  params: " + ", ".join(f"{k}={v!r}" for k, v in header["params"].items()), markup=False)
