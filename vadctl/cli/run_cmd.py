"""`vadctl run JOB.toml`: the nightly job (extract new → score unscored → append results) in one command."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl.cli.common import err, human_seconds, one_line_errors, out

# Imported inside the functions that use them: the API and the stages below it (importing this module stays cheap).

SHOWN = 10  # videos listed per line in a dry run before "…"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN]) + (f", … ({len(items) - SHOWN} more)" if len(items) > SHOWN else "")
    return escape(shown)


def print_plan(report) -> None:
    out.print(f"dry run of {escape(report.job)}: nothing was changed", soft_wrap=True)
    for source in report.sources:
        out.print(
            f"extract {escape(source.root)} (split {escape(source.split)}): {len(source.to_extract)} of "
            f"{source.videos} video(s) to extract" + (f": {_listing(source.to_extract)}" if source.to_extract else "")
        )
    for model in report.models:
        out.print(
            f"score with {escape(model.name)} ({escape(model.kind)}, sha256 {model.sha256[:12]}): "
            f"{len(model.planned)} video(s) to score, {model.up_to_date} already scored"
            + (f": {_listing(model.planned)}" if model.planned else ""),
            soft_wrap=True,
        )
    _print_failures_and_notes(report)


def print_report(report) -> None:
    out.print(f"run {report.run_id} of {escape(report.name)} ({escape(report.job)}) in {human_seconds(report.seconds)}")
    if report.sources:
        table = Table(title="extract", title_justify="left")
        for column in ("source", "split", "videos", "extracted", "up to date", "failed", "time"):
            table.add_column(column, justify="left" if column in ("source", "split") else "right")
        for s in report.sources:
            table.add_row(
                escape(s.root),
                escape(s.split),
                str(s.videos),
                str(s.extracted),
                str(s.up_to_date),
                str(len(s.failed)),
                human_seconds(s.seconds),
            )
        out.print(table)
    if report.models:
        table = Table(title=f"score → {escape(report.results)}", title_justify="left")
        for column in ("model", "scored", "already scored", "failed", "frames", "events", "time"):
            table.add_column(column, justify="left" if column == "model" else "right")
        for m in report.models:
            table.add_row(
                escape(m.name),
                str(len(m.scored)),
                str(m.up_to_date),
                str(len(m.failed)),
                str(m.rows["frames"]),
                str(m.rows["events"]),
                human_seconds(m.seconds),
            )
        out.print(table)
    if report.review:
        out.print(f"review page: {escape(report.review)}", soft_wrap=True)
    _print_failures_and_notes(report)


def _print_failures_and_notes(report) -> None:
    for failure in report.failed:
        err.print(
            f"[red]failed[/] {escape(failure['stage'])} {escape(failure['split'])}/{escape(failure['video'])}: "
            f"{escape(failure['error'])}",
            soft_wrap=True,
        )
    for note in report.notes:
        err.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("run")
    @one_line_errors
    def run_cmd(
        job: Path = typer.Argument(
            ..., help="Job file (TOML; its paths are relative to it). See README, Nightly runs."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Say what would be extracted and scored; change nothing."
        ),
        wait: float = typer.Option(
            0.0,
            "--wait",
            min=0.0,
            metavar="SECONDS",
            help="When another run writes the same results, wait up to SECONDS for it instead of exiting at once.",
        ),
        quiet: bool = typer.Option(
            False, "--quiet", "-q", help="No progress bars, and no summary unless something failed (for cron)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    ) -> None:
        """Run a job: extract new videos, score what is unscored, append to the results dataset.

        Exit codes: 0 all done; 1 some videos failed (listed); 2 the job could not run (bad job file, another run busy).
        """
        from vadctl import api
        from vadctl.cli.job_progress import JobProgress

        with JobProgress(quiet or as_json) as progress:
            report = api.run(job, dry_run=dry_run, wait=wait, progress=progress)
        if as_json:
            out.print_json(data=report.to_dict())
        elif dry_run:
            print_plan(report)
        elif not quiet or report.exit_code:
            print_report(report)
        if report.exit_code:
            raise typer.Exit(report.exit_code)
