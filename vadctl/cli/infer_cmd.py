"""`vadctl infer`: new video files end to end with a fitted model (extract → score → Parquet [+ MP4])."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from vadctl import defaults
from vadctl.cli.common import EXIT_PARTIAL, StoreOption, err, human_seconds, one_line_errors, out, store_path


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def infer(
        videos: list[Path] = typer.Argument(..., help="Video files (or folders of them) to score."),
        model: Path = typer.Option(..., "--model", "-m", help="Fitted model file (from `vadctl fit`)."),
        store: Path | None = StoreOption,
        out_path: Path = typer.Option(defaults.INFER_SCORES, "--out", "-o", help="Frame scores (Parquet)."),
        video_out: Path | None = typer.Option(
            None, help="Write an annotated MP4 per video here (boxes, score strip, threshold, flagged frames)."
        ),
        split: str = typer.Option(defaults.INFER_SPLIT, help="Store split that keeps the new videos' features."),
        threshold: str | None = typer.Option(None, help="Override the model's rule: sigma:K or percentile:P."),
        classes: str | None = typer.Option(None, help="Open-vocabulary models: name these comma-separated classes."),
        weights: list[str] = typer.Option([], "--weights", help="Weights for weighted features, KEY=PATH."),
        backend: str = typer.Option("torch", help="Neural models: run the network with torch or onnx."),
        onnx: Path | None = typer.Option(None, help="ONNX file for --backend onnx [default: beside the model]."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Extract what the model needs from new videos (reusing the store's cache), score them, write
        Parquet (frames; regions, videos, events beside it) and optionally annotated videos."""
        import time

        import polars as pl

        from vadctl import api
        from vadctl.cli.extract_cmd import RichProgress

        started = time.perf_counter()
        with RichProgress(quiet) as progress:
            report = api.infer(
                videos,
                model,
                store_path(store),
                out_path,
                video_out=video_out,
                split=split,
                threshold=threshold,
                classes=classes,
                weights=weights,
                backend=backend,
                onnx=onnx,
                progress=progress,
            )
        for reason in report.failed.values():
            err.print(f"[bold red]error:[/] {escape(reason)}", soft_wrap=True)
        if report.scores is None:
            raise typer.Exit(EXIT_PARTIAL)
        frames = pl.read_parquet(report.scores, columns=["video", "is_anomaly"])
        fresh = {r.video_id for rep in report.extract_reports for r in rep.results if r.status == "extracted"}
        out.print(
            f"scored {len(report.videos)} video(s), {len(frames)} frames in "
            f"{human_seconds(time.perf_counter() - started)} ({len(fresh)} extracted now, "
            f"{len(report.videos) - len(fresh)} from the store's cache); "
            f"{int(frames['is_anomaly'].sum())} frames above the threshold"
        )
        out.print(f"frames: {escape(str(report.scores))} (regions, videos, events beside it)")
        for path in report.annotated:
            out.print(f"annotated: {escape(str(path))}")
        if report.failed:
            raise typer.Exit(EXIT_PARTIAL)
