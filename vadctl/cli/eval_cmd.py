"""`vadctl eval`: AUROC (micro and macro), AP, EER, confusion matrix and plots against labels."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl.cli.common import err, is_stdout, one_line_errors, out

# Imported inside the functions that use them: the API and the stages below it (importing this module stays cheap).


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def print_metrics(metrics: dict) -> None:
    summary = Table(
        title=escape(
            f"evaluation of {metrics['column']!r} over {metrics['frames']} frames ({metrics['anomalous']} anomalous)"
        ),
        title_justify="left",
    )
    for column in ("micro AUROC", "macro AUROC", "AP", "EER", "F1@thr", "precision", "recall"):
        summary.add_column(column, justify="right")
    summary.add_row(
        _fmt(metrics["micro_auroc"]),
        f"{_fmt(metrics['macro_auroc'])} ({metrics['macro_videos']} videos)",
        _fmt(metrics["ap"]),
        _fmt(metrics["eer"]),
        _fmt(metrics["f1"]),
        _fmt(metrics["precision"]),
        _fmt(metrics["recall"]),
    )
    out.print(summary)
    if metrics["confusion"]:
        c = metrics["confusion"]
        out.print(f"frames at threshold: TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}")
    if metrics.get("video_confusion"):
        c = metrics["video_confusion"]
        out.print(
            f"videos (any frame flagged): TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}  "
            f"accuracy {metrics['video_accuracy']:.3f}"
        )
    if metrics.get("class_confusion"):
        print_classes(metrics)
    single = metrics["single_class_videos"]
    if single:
        out.print(
            f"macro AUROC leaves out {len(single)} single-class video(s) (no AUROC defined): "
            + escape(", ".join(single))
        )
    per_video = Table(title="per video", title_justify="left")
    for column in ("video", "frames", "anomalous", "AUROC", "flagged"):
        per_video.add_column(column, justify="left" if column == "video" else "right")
    for v in metrics["videos"]:
        per_video.add_row(
            escape(v["video"]), str(v["frames"]), str(v["anomalous"]), _fmt(v["auroc"], 3), str(v["flagged"])
        )
    out.print(per_video)
    for note in metrics["notes"]:
        err.print(f"[yellow]note[/]: {escape(note)}")


def print_classes(metrics: dict) -> None:
    """The multi-class confusion matrix over videos (true down, predicted across)."""
    c = metrics["class_confusion"]
    named = metrics["class_accuracy_anomalous"]
    title = f"video classes: accuracy {metrics['class_accuracy']:.3f} over all videos" + (
        f", {named:.3f} of anomalous videos named right" if named is not None else ""
    )
    table = Table(title=escape(title), title_justify="left")
    table.add_column("true \\ predicted")
    for label in c["labels"]:
        table.add_column(escape(label), justify="right")
    for label, row in zip(c["labels"], c["matrix"], strict=True):
        table.add_row(escape(label), *(str(v) for v in row))
    out.print(table)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @one_line_errors
    def evaluate_cmd(
        scores: Path = typer.Option(..., "--scores", help="Frame scores from `vadctl score` (Parquet)."),
        labels: Path = typer.Option(..., "--labels", help="labels.csv: video,frame,label (0-based, 1 = anomalous)."),
        column: str = typer.Option("score", help="Score column to evaluate."),
        json_out: Path | None = typer.Option(
            None, "--json", help="Also write the metrics as JSON here; '-' prints them (and only them) to stdout."
        ),
        plots: Path | None = typer.Option(None, help="Write ROC and per-video timeline PNGs into this folder."),
        partial: bool = typer.Option(False, help="Evaluate the frames present in both files; list the rest."),
    ) -> None:
        """Compare frame scores with ground truth."""
        from vadctl import api
        from vadctl.common import checks
        from vadctl.common.atomic import write_atomic

        if json_out is not None:
            checks.output_file(json_out, "--json")
        metrics = api.evaluate(scores, labels, column=column, partial=partial, plots=plots)
        data = json.dumps({k: v for k, v in metrics.items() if k != "plots"}, indent=2)
        if is_stdout(json_out):
            print(data)
            for note in metrics["notes"]:
                err.print(f"[yellow]note[/]: {escape(note)}")
            return
        print_metrics(metrics)
        if json_out is not None:
            write_atomic(json_out, lambda tmp: Path(tmp).write_text(data))
            out.print(f"metrics: {escape(str(json_out))}")
        if plots is not None:
            out.print(f"plots: {escape(str(plots))}/ ({len(metrics['plots'])} PNG files)")
