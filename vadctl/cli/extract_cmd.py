"""`vadctl extract`: featurize videos into the store once; reruns do only new or changed work."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars
from rich.table import Table

from vadctl import defaults
from vadctl.cli.common import (
    EXIT_PARTIAL,
    StoreOption,
    debug_enabled,
    err,
    human_seconds,
    one_line_errors,
    out,
    parse_feature_params,
    store_path,
)
from vadctl.common.progress import Progress

# The extraction stack (OpenCV, zarr, decord) loads inside the command, so other commands start fast.
DEFAULT_FEATURES = ",".join(defaults.FEATURES)


class RichProgress(Progress):
    """Bars over videos and over frames of all videos being extracted (by any number of workers),
    with throughput across them."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=quiet,
        )
        self.videos = self.bar.add_task("videos", total=0, rate="")
        self.frames = self.bar.add_task("frames", total=0, rate="", visible=False)
        self.running: list[str] = []

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def planned(self, n_videos: int, n_work: int) -> None:
        self.bar.update(self.videos, total=n_videos, description=f"videos ({n_work} to extract)")

    def _describe(self) -> None:
        shown = escape(self.running[-1]) if self.running else ""
        more = f" +{len(self.running) - 1}" if len(self.running) > 1 else ""
        self.bar.update(self.frames, description=f"  {shown}{more}")

    def video_started(self, video_id: str, n_frames: int) -> None:
        task = self.bar.tasks[self.frames]
        self.bar.update(self.frames, total=(task.total or 0) + n_frames, visible=True)
        self.running.append(video_id)
        self._describe()

    def frames_done(self, n: int) -> None:
        self.bar.advance(self.frames, n)
        task = self.bar.tasks[self.frames]
        if task.elapsed:
            self.bar.update(self.frames, rate=f"{task.completed / task.elapsed:.0f} frames/s")

    def video_finished(self, result) -> None:
        self.bar.advance(self.videos, 1)
        if result.video_id in self.running:
            self.running.remove(result.video_id)
            self._describe()
        if result.status == "failed" and not self.quiet:
            err.print(f"[red]failed[/] {escape(result.video_id)}: {why_failed(result)}", soft_wrap=True)


def why_failed(result) -> str:
    """A failed video's reason (escaped), and whether the next run tries it again."""
    text = escape(str(result.error))
    if result.status != "failed" or result.failure != "transient":
        return text
    if result.attempts and result.attempts >= defaults.TRANSIENT_ATTEMPTS:
        return text + f" (transient, {result.attempts} attempts: not retried again without --retry-failed)"
    bound = defaults.TRANSIENT_ATTEMPTS
    return text + f" (transient, attempt {result.attempts or 1} of {bound}: the next run retries it)"


def print_report(report, store_path, failures_shown: bool) -> None:
    from vadctl.extraction.extractor import EXTRACTED, FAILED, FAILED_EARLIER, UP_TO_DATE

    table = Table(title=escape(f"extract → {store_path} (split {report.split})"), title_justify="left")
    for column in ("extracted", "up to date", "failed", "frames", "time", "frames/s"):
        table.add_column(column, justify="right")
    # throughput of the run (all workers together), over its wall time
    rate = f"{report.frames / report.seconds:.0f}" if report.frames and report.seconds > 0 else "–"
    table.add_row(
        str(report.count(EXTRACTED)),
        str(report.count(UP_TO_DATE)),
        str(len(report.failed)),
        str(report.frames),
        human_seconds(report.seconds),
        rate,
    )
    out.print(table)
    out.print("features: " + ", ".join(spec.key for spec in report.specs), markup=False)
    if report.count(EXTRACTED) == 0 and not report.failed:
        out.print(f"nothing new: all {len(report.results)} videos up to date ({human_seconds(report.seconds)})")
    earlier = [r for r in report.failed if r.status == FAILED_EARLIER]
    for result in report.failed:
        if result.status == FAILED and failures_shown:
            continue
        tag = "failed earlier" if result.status == FAILED_EARLIER else "failed"
        err.print(f"[red]{tag}[/] {escape(result.video_id)}: {why_failed(result)}", soft_wrap=True)
    if earlier:
        err.print(
            f"{len(earlier)} video(s) failed in an earlier run and are unchanged; pass --retry-failed to try them again"
        )
    for result in report.results:
        if result.truncated:
            err.print(
                f"[yellow]truncated[/] {escape(result.video_id)}: {escape(result.truncated)} (its frames kept)",
                soft_wrap=True,
            )
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/] {escape(str(skipped.path))}: {escape(skipped.reason)}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def extract(
        roots: list[Path] = typer.Argument(..., help="Video files or folders to search (recursively)."),
        store: Path | None = StoreOption,
        split: str = typer.Option("train", help="Split the videos belong to (train, test, ...)."),
        features: str = typer.Option(DEFAULT_FEATURES, help="Comma-separated featurizers."),
        param: list[str] = typer.Option(
            [],
            "--param",
            "-p",
            help="Featurizer parameter FEATURE.PARAM=VALUE (repeatable), e.g. -p velocity.n_bins=4.",
        ),
        weights: list[str] = typer.Option(
            [],
            "--weights",
            "-w",
            help="Weight file KEY=PATH (repeatable), e.g. -w clip=/w/clip-ViT-L-14-openai.safetensors; "
            "see `vadctl weights` for keys and where files are otherwise looked for.",
        ),
        scene: str | None = typer.Option(None, help="Scene label recorded for these videos."),
        resize: str | None = typer.Option(None, help="Decode at WIDTHxHEIGHT (or WIDTH, keeping aspect)."),
        clip_len: int = typer.Option(defaults.CLIP_LENGTH, help="Frames per clip (clip table, clip-level features)."),
        clip_stride: int = typer.Option(defaults.CLIP_STRIDE, help="Frames between clip starts."),
        frame_step: int = typer.Option(defaults.FRAME_STEP, help="Take every n-th frame inside a clip."),
        window: int = typer.Option(defaults.WINDOW, help="Frames decoded at a time (bounds memory)."),
        force: bool = typer.Option(False, help="Re-extract even what is up to date."),
        retry_failed: bool = typer.Option(False, help="Try again videos that failed in an earlier run."),
        keep_truncated: bool = typer.Option(
            False,
            help="Keep the frames of a file cut short (fewer frames than its container declares), "
            "recorded as truncated, instead of failing it.",
        ),
        decoder: str = typer.Option(
            "auto",
            help="Video decoder: decord, pyav, or auto (decord where it installs, else PyAV); recorded per "
            "video. Features decoded by PyAV are entries of their own.",
        ),
        wait: float = typer.Option(defaults.WAIT_SECONDS, help="Seconds to wait for videos locked by another run."),
        debug: bool = typer.Option(
            False, help="Record full tracebacks for unexpected failures (also `vadctl --debug extract`)."
        ),
        workers: int = typer.Option(
            defaults.WORKERS,
            "--workers",
            "-j",
            help="Videos extracted at once, each in its own process (1: in this process). "
            "With --executor ray, N > 1 caps the tasks in flight.",
        ),
        executor: str = typer.Option("local", help="Where work runs: local (processes here) or ray (a Ray cluster)."),
        ray_address: str | None = typer.Option(
            None, help="Ray cluster to join: auto (started with `ray start`) or ray://HOST:PORT [default: a local one]."
        ),
        segment_frames: int | None = typer.Option(
            None,
            help="Split videos longer than this many frames into segments extracted in parallel "
            f"(rounded up to chunk boundaries; 0: never) [default: {defaults.SEGMENT_FRAMES} when parallel].",
            show_default=False,
        ),
        follow_links: bool = typer.Option(
            False, "--follow-links", help="Follow symlinked folders that lead outside the roots (skipped by default)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
    ) -> None:
        """Decode videos once and cache their features in the store."""
        from vadctl import api

        with RichProgress(quiet or as_json) as progress:
            report = api.extract(
                roots,
                store_path(store),
                split,
                features,
                parse_feature_params(param),
                weights,
                scene=scene,
                resize=resize,
                clip_len=clip_len,
                clip_stride=clip_stride,
                frame_step=frame_step,
                window=window,
                force=force,
                retry_failed=retry_failed,
                keep_truncated=keep_truncated,
                decoder=decoder,
                wait=wait,
                debug=debug or debug_enabled(),
                workers=workers,
                executor=executor,
                ray_address=ray_address,
                segment_frames=segment_frames,
                follow_links=follow_links,
                progress=progress,
            )
        if as_json:
            out.print_json(data={"store": str(store_path(store)), **report.to_dict()})
        else:
            print_report(report, store_path(store), failures_shown=not quiet)
        if report.failed:
            raise typer.Exit(EXIT_PARTIAL)
