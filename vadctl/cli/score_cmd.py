"""`vadctl score`: frame (and region) scores of a split with a fitted model, written as Parquet."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import typer
from rich.markup import escape

from vadctl import defaults
from vadctl.cli.common import StoreOption, err, fail, human_seconds, is_stdout, one_line_errors, out, store_path


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def score(
        model: Path = typer.Option(..., "--model", "-m", help="Fitted model file (from `vadctl fit`)."),
        store: Path | None = StoreOption,
        split: str = typer.Option("test", help="Split to score."),
        out_path: Path = typer.Option(
            defaults.SCORES, "--out", "-o", help="Frame scores (Parquet); '-' writes them to stdout."
        ),
        regions_out: Path | None = typer.Option(
            None,
            help="Region scores (Parquet) [default: beside --out as <name>.regions.parquet; none with --out -].",
        ),
        threshold: str | None = typer.Option(
            None, help="Override the model's rule: robust:K, sigma:K or percentile:P."
        ),
        videos: str | None = typer.Option(None, help="Only these comma-separated video ids."),
        backend: str = typer.Option("torch", help="Neural models: run the network with torch or onnx."),
        onnx: Path | None = typer.Option(
            None, help="ONNX file for --backend onnx [default: the model file with suffix .onnx]."
        ),
        workers: int = typer.Option(
            1, "--workers", "-j", help="Videos scored at once, each worker process loading the model once."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of text."),
        classes: str | None = typer.Option(
            None, help='Open-vocabulary models: name these comma-separated classes instead ("fighting,theft").'
        ),
        weights: list[str] = typer.Option(
            [],
            "--weights",
            help="With --classes: CLIP weights for the text tower, clip=PATH (else found as extract finds them).",
        ),
    ) -> None:
        """Score every frame of a split: video, frame, time_s, score, score_norm, is_anomaly, threshold, model,
        and provenance (model_sha256, video_fingerprint, run_id, scored_at, split)."""
        import time

        import polars as pl

        from vadctl import api
        from vadctl.cli.job_progress import JobProgress
        from vadctl.models.files import read_header
        from vadctl.scoring.provenance import read_metadata

        to_stdout = is_stdout(out_path)
        if to_stdout and as_json:
            raise fail("--out - and --json both write to stdout; give --out a file")
        say = err if to_stdout else out  # stdout carries the Parquet bytes
        started = time.perf_counter()
        chosen = [v.strip() for v in videos.split(",") if v.strip()] if videos else None
        with tempfile.TemporaryDirectory(prefix="vadctl-score-") as scratch:
            target = Path(scratch) / "scores.parquet" if to_stdout else out_path
            regions_path = regions_out or api.regions_path(target)
            with JobProgress(quiet or as_json) as progress:
                written = api.score(
                    model,
                    store_path(store),
                    split,
                    target,
                    regions_out=regions_path,
                    threshold=threshold,
                    videos=chosen,
                    backend=backend,
                    onnx=onnx,
                    workers=workers,
                    classes=classes,
                    weights=weights,
                    progress=progress,
                )
            frames = pl.read_parquet(written, columns=["video", "is_anomaly"])
            n_boxes = pl.scan_parquet(regions_path).select(pl.len()).collect().item()
            meta = read_metadata(written)
            videos_table = pl.read_parquet(api.beside(written, "videos"))
            if to_stdout:
                with written.open("rb") as handle:
                    shutil.copyfileobj(handle, sys.stdout.buffer)
                sys.stdout.buffer.flush()
        header = read_header(model)
        rule = threshold or header["calibration"]["rule"]
        summary = {
            "model": str(model),
            "model_kind": header["model"],
            "model_sha256": meta.get("model_sha256"),
            "run_id": meta.get("run_id"),
            "split": split,
            "backend": backend,
            "videos": frames["video"].n_unique(),
            "frames": len(frames),
            "anomalous_frames": int(frames["is_anomaly"].sum()),
            "threshold_rule": rule,
            "regions": n_boxes,
            "frames_file": "-" if to_stdout else str(written),
            "regions_file": None if to_stdout and regions_out is None else str(regions_path),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if as_json:
            out.print_json(data=summary)
            return
        say.print(
            f"scored {summary['videos']} video(s), {summary['frames']} frames of split {escape(repr(split))} with "
            f"{escape(header['model'])} ({backend}) in {human_seconds(summary['seconds'])}; "
            f"{summary['anomalous_frames']} frames above the threshold ({escape(rule)})"
        )
        say.print(f"frames: {escape(summary['frames_file'])}")
        if summary["regions_file"] is not None:
            say.print(f"regions: {escape(summary['regions_file'])} ({n_boxes} boxes)")
        if "class" in videos_table.columns:
            named = ", ".join(
                f"{escape(r['video'])}: {escape(str(r['class']))} ({r['class_prob']:.2f})"
                for r in videos_table.filter(pl.col("is_anomaly")).head(8).iter_rows(named=True)
            )
            say.print(f"classes of flagged videos: {named or 'none flagged'}")
        if not to_stdout:
            tables = ", ".join(escape(str(api.beside(written, t))) for t in ("videos", "events"))
            say.print(f"videos, events: {tables}")
