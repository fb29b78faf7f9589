"""`vadctl score`: frame (and region) scores of a split with a fitted model, written as Parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from vadctl.cli.common import StoreOption, human_seconds, one_line_errors, out, store_path


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def score(
        model: Path = typer.Option(..., "--model", "-m", help="Fitted model file (from `vadctl fit`)."),
        store: Path | None = StoreOption,
        split: str = typer.Option("test", help="Split to score."),
        out_path: Path = typer.Option(Path("stores/scores.parquet"), "--out", "-o", help="Frame scores (Parquet)."),
        regions_out: Path | None = typer.Option(
            None, help="Region scores (Parquet) [default: beside --out as <name>.regions.parquet]."
        ),
        threshold: str | None = typer.Option(
            None, help="Override the model's rule: robust:K, sigma:K or percentile:P."
        ),
        videos: str | None = typer.Option(None, help="Only these comma-separated video ids."),
        backend: str = typer.Option("torch", help="Neural models: run the network with torch or onnx."),
        onnx: Path | None = typer.Option(
            None, help="ONNX file for --backend onnx [default: the model file with suffix .onnx]."
        ),
    ) -> None:
        """Score every frame of a split; writes video, frame, score, score_norm, is_anomaly, threshold, model."""
        import time

        from vadctl.models.files import load_model
        from vadctl.pipeline import score_model
        from vadctl.scoring import write_parquet_atomic
        from vadctl.store import FeatureStore

        started = time.perf_counter()
        loaded = load_model(model)
        feature_store = FeatureStore(store_path(store), read_only=True)
        chosen = [v.strip() for v in videos.split(",") if v.strip()] if videos else None
        if backend == "onnx" and onnx is None:
            from vadctl.onnx_export import default_onnx_path

            onnx = default_onnx_path(model)
        frames, regions = score_model(loaded, feature_store, split, chosen, threshold, backend, onnx)
        write_parquet_atomic(frames, out_path)
        regions_path = regions_out or out_path.with_name(out_path.stem + ".regions.parquet")
        write_parquet_atomic(regions, regions_path)
        flagged = int(frames["is_anomaly"].sum())
        out.print(
            f"scored {frames['video'].n_unique()} video(s), {len(frames)} frames of split {split!r} with "
            f"{loaded.model.name} ({backend}) in {human_seconds(time.perf_counter() - started)}; "
            f"{flagged} frames above the threshold ({threshold or loaded.calibration.rule})"
        )
        out.print(f"frames: {out_path}")
        out.print(f"regions: {regions_path} ({len(regions)} boxes)")
