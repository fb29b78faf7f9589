"""`vadctl demo`: the whole job on a built-in synthetic data set, offline, in about a minute."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl.cli.common import StoreOption, human_seconds, one_line_errors, out, store_path
from vadctl.cli.extract_cmd import RichProgress


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def demo(
        folder: Path = typer.Option(Path("stores/demo"), help="Where the demo videos, models and outputs go."),
        store: Path | None = StoreOption,
        seed: int = typer.Option(7, help="Seed of the generated scene."),
        frames: int = typer.Option(120, min=48, help="Frames per generated video."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Generate a labelled synthetic scene, then extract → fit → score → eval (AI-VAD, FUVAS; plovad
        from video-level labels)."""
        import time

        from vadctl import demo as demo_lib

        started = time.perf_counter()
        out.print(
            f"demo data: {folder}/ (train: normal walkers; weak: one anomaly each, labelled per video; test: "
            "normal, fast cyclist, against the flow, loitering on the lawn)",
            markup=False,
        )
        with RichProgress(quiet) as progress:
            result = demo_lib.run(folder, store_path(store), progress, seed=seed, n_frames=frames)
        for report in result.extract_reports:
            copied = len(result.copied) if report.split == "weak" else 0  # train's videos, up to date in weak
            out.print(
                f"extract {report.split}: {report.count('extracted')} extracted, "
                f"{report.count('up to date')} up to date, {len(report.failed)} failed "
                f"({report.frames} frames, {human_seconds(report.seconds)})"
                + (f"; {copied} copied from split train, not decoded again" if copied else ""),
                markup=False,
            )
        kinds = _kinds(result.data.labels.parent)
        table = Table(
            title="demo results (frame-level AUROC on the test videos)",
            title_justify="left",
        )
        table.add_column("model")
        table.add_column("micro", justify="right")
        table.add_column("macro", justify="right")
        for video, kind in kinds.items():
            table.add_column(escape(f"{video} {kind}"), justify="right")
        videos = Table(title="at each model's threshold", title_justify="left")
        for column in ("model", "frame recall", "frame FPR", "videos called right", "kind named right"):
            videos.add_column(column, justify="left" if column == "model" else "right")
        for name, metrics in result.metrics.items():
            per_video = {v["video"]: v["auroc"] for v in metrics["videos"]}
            cells = [f"{per_video[v]:.3f}" if per_video.get(v) is not None else "–" for v in kinds]
            table.add_row(name, f"{metrics['micro_auroc']:.3f}", f"{metrics['macro_auroc']:.3f}", *cells)
            c = metrics.get("confusion") or {"fp": 0, "tn": 0}
            fpr = c["fp"] / (c["fp"] + c["tn"]) if c["fp"] + c["tn"] else 0.0
            video_accuracy, class_accuracy = metrics.get("video_accuracy"), metrics.get("class_accuracy")
            videos.add_row(
                name,
                f"{metrics['recall']:.2f}" if metrics.get("recall") is not None else "–",
                f"{fpr:.2f}",
                f"{video_accuracy:.2f}" if video_accuracy is not None else "–",
                f"{class_accuracy:.2f}" if class_accuracy is not None else "–",
            )
        out.print(table)
        out.print(videos)
        out.print(
            "frame recall and FPR: test frames flagged among anomalous and normal ones; "
            "videos called right: share of test videos called anomalous or normal correctly (plovad: its MIL head's "
            "decision; the others: any frame above the threshold); kind named right: normal counts as a kind"
        )
        out.print(f"store:  {result.store}", markup=False)
        for name in result.models:
            out.print(
                f"{name}: model {result.models[name]}, scores {result.scores[name]}, plots {result.plots[name]}/",
                markup=False,
            )
        if result.review is not None:
            review = result.review
            out.print(f"review page: {review.index} ({review.events} event(s); open it in a browser)", markup=False)
        out.print(
            f"done in {human_seconds(time.perf_counter() - started)}. Try: vadctl store info {result.store}",
            markup=False,
        )


def _kinds(root: Path) -> dict[str, str]:
    """Which anomaly each test video shows (from the generator's record, for the table header)."""
    meta = root / "kinds.json"
    return json.loads(meta.read_text()) if meta.exists() else {}
