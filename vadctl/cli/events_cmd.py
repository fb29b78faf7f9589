"""`vadctl events`: what an operator reviews in the morning, as a table, JSON or thumbnails."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl.cli.common import err, one_line_errors, out


def _span(start, end, digits: int = 1) -> str:
    if start is None or end is None:
        return "–"
    return f"{start:.{digits}f}–{end:.{digits}f}"


def print_events(events, results: Path) -> None:
    if len(events) == 0:
        out.print(f"no events in {escape(str(results))}")
        return
    table = Table(title=escape(f"{len(events)} event(s) in {results}"), title_justify="left")
    columns = ["date", "model", "video", "frames", "seconds", "peak frame", "peak score", "box"]
    if "thumbnail" in events.columns:
        columns.append("thumbnail")
    for column in columns:
        table.add_column(column, justify="right" if column.startswith("peak") else "left")
    for e in events.iter_rows(named=True):
        box = "–" if e.get("x1") is None else f"{e['x1']:.0f},{e['y1']:.0f},{e['x2']:.0f},{e['y2']:.0f}"
        cells = [
            str(e.get("date") or (e["scored_at"].date() if e.get("scored_at") else "–")),
            escape(str(e.get("model") or "–")),
            escape(str(e["video"])),
            f"{e['start_frame']}–{e['end_frame']}",
            _span(e["start_s"], e["end_s"]),
            str(e["peak_frame"]),
            f"{e['peak_score']:.4g}",
            box,
        ]
        if "thumbnail" in events.columns:
            cells.append(escape(e["thumbnail"] or "–"))
        table.add_row(*cells)
    out.print(table)


def register(app: typer.Typer) -> None:
    @app.command("events")
    @one_line_errors
    def events_cmd(
        results: Path = typer.Argument(
            ..., help="Results dataset folder (from `vadctl run`) or a frame-scores file (from `vadctl score`)."
        ),
        since: str | None = typer.Option(
            None,
            "--since",
            metavar="DATE",
            help="Only events of runs on or after DATE: YYYY-MM-DD, today, yesterday or Nd (N days back).",
        ),
        model: str | None = typer.Option(None, "--model", "-m", help="Only this model's events."),
        min_len: int | None = typer.Option(
            None, "--min-len", min=1, help="Scores file: shortest event in frames [default: 4]."
        ),
        min_gap: int | None = typer.Option(
            None, "--min-gap", min=0, help="Scores file: merge events fewer than this many frames apart [default: 8]."
        ),
        thumbs: Path | None = typer.Option(
            None, "--thumbs", metavar="DIR", help="Write a PNG of each event's peak frame, boxes drawn, into DIR."
        ),
        store: Path | None = typer.Option(
            None, "--store", "-s", help="Store to find source videos in [default: the one the results name]."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the events as JSON instead of a table."),
    ) -> None:
        """List events: runs of anomalous frames per video and model, with peak and box."""
        from vadctl import api

        notes: list[str] = []
        events = api.events(
            results,
            since=since,
            model=model,
            min_len=min_len,
            min_gap=min_gap,
            thumbs=thumbs,
            store=store,
            progress=lambda event, **fields: notes.append(fields["text"]) if event == "note" else None,
        )
        if as_json:
            print(json.dumps(events.to_dicts(), default=str, indent=1))
        else:
            print_events(events, results)
        for note in notes:
            err.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)
