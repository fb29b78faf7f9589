"""`vadctl review RESULTS --out DIR`: the morning's review as a static page (vadctl.review.site)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from vadctl.cli.common import err, one_line_errors, out


def register(app: typer.Typer) -> None:
    @app.command("review")
    @one_line_errors
    def review_cmd(
        results: Path = typer.Argument(
            ...,
            help="Results dataset folder (from `vadctl run`), a frame-scores file (from `vadctl score`) or a folder "
            "of them.",
        ),
        out_dir: Path = typer.Option(Path("review"), "--out", "-o", help="Folder of the site (index.html inside)."),
        since: str | None = typer.Option(
            None,
            "--since",
            metavar="DATE",
            help="Only events of runs on or after DATE: YYYY-MM-DD, today, yesterday, Nd.",
        ),
        model: str | None = typer.Option(None, "--model", "-m", help="Only this model's events."),
        video: str | None = typer.Option(None, "--video", help="Only this video id (or glob, e.g. 'cam1/*')."),
        top: int | None = typer.Option(
            None, "--top", min=1, metavar="N", help="Show the N highest-scoring events in full (counts cover all)."
        ),
        store: Path | None = typer.Option(
            None, "--store", "-s", help="Store to find source videos in [default: the one the results name]."
        ),
    ) -> None:
        """Write a static review page: overview, top events, clips and score timelines; open OUT/index.html."""
        from vadctl import api

        notes: list[str] = []
        report = api.review(
            results,
            out_dir,
            since=since,
            model=model,
            video=video,
            top=top,
            store=store,
            progress=lambda event, **fields: notes.append(fields["text"]) if event == "note" else None,
        )
        for note in notes:
            err.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)
        out.print(
            f"{report.shown} of {report.events} event(s) on the page ({report.rendered} new, {report.kept} kept): "
            f"{escape(str(report.index))}",
            soft_wrap=True,
        )
