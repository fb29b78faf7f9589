"""`vadctl score`: frame (and region) scores of a split with a fitted model, written as Parquet."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from vadctl import defaults
from vadctl.cli.common import StoreOption, human_seconds, one_line_errors, out, store_path


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def score(
        model: Path = typer.Option(..., "--model", "-m", help="Fitted model file (from `vadctl fit`)."),
        store: Path | None = StoreOption,
        split: str = typer.Option("test", help="Split to score."),
        out_path: Path = typer.Option(defaults.SCORES, "--out", "-o", help="Frame scores (Parquet)."),
        regions_out: Path | None = typer.Option(
            None, help="Region scores (Parquet) [default: beside --out as <name>.regions.parquet]."
        ),
        threshold: str | None = typer.Option(None, help="Override the model's rule: sigma:K or percentile:P."),
        videos: str | None = typer.Option(None, help="Only these comma-separated video ids."),
        backend: str = typer.Option("torch", help="Neural models: run the network with torch or onnx."),
        onnx: Path | None = typer.Option(
            None, help="ONNX file for --backend onnx [default: the model file with suffix .onnx]."
        ),
        classes: str | None = typer.Option(
            None, help='Open-vocabulary models: name these comma-separated classes instead ("fighting,theft").'
        ),
        weights: list[str] = typer.Option(
            [],
            "--weights",
            help="With --classes: CLIP weights for the text tower, clip=PATH (else found as extract finds them).",
        ),
    ) -> None:
        """Score every frame of a split; writes video, frame, score, score_norm, is_anomaly, threshold, model."""
        import time

        import polars as pl

        from vadctl import api
        from vadctl.models.files import read_header

        started = time.perf_counter()
        chosen = [v.strip() for v in videos.split(",") if v.strip()] if videos else None
        regions_path = regions_out or api.regions_path(out_path)
        written = api.score(
            model,
            store_path(store),
            split,
            out_path,
            regions_out=regions_path,
            threshold=threshold,
            videos=chosen,
            backend=backend,
            onnx=onnx,
            classes=classes,
            weights=weights,
        )
        frames = pl.read_parquet(written, columns=["video", "is_anomaly"])
        n_boxes = pl.scan_parquet(regions_path).select(pl.len()).collect().item()
        header = read_header(model)
        rule = threshold or header["calibration"]["rule"]
        out.print(
            f"scored {frames['video'].n_unique()} video(s), {len(frames)} frames of split {escape(repr(split))} with "
            f"{escape(header['model'])} ({backend}) in {human_seconds(time.perf_counter() - started)}; "
            f"{int(frames['is_anomaly'].sum())} frames above the threshold ({rule})"
        )
        out.print(f"frames: {escape(str(written))}")
        out.print(f"regions: {escape(str(regions_path))} ({n_boxes} boxes)")
        videos_table = pl.read_parquet(api.beside(written, "videos"))
        if "class" in videos_table.columns:
            named = ", ".join(
                f"{escape(r['video'])}: {escape(str(r['class']))} ({r['class_prob']:.2f})"
                for r in videos_table.filter(pl.col("is_anomaly")).head(8).iter_rows(named=True)
            )
            out.print(f"classes of flagged videos: {named or 'none flagged'}")
        tables = ", ".join(escape(str(api.beside(written, t))) for t in ("videos", "events"))
        out.print(f"videos, events: {tables}")
