"""A rich progress bar for training steps, with the latest losses (the CLI side of `TrainProgress`)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vadctl.cli.common import err


class RichTrainProgress:
    """Steps done / total, elapsed, remaining, and `name=value` of each loss of the last step."""

    def __init__(self, quiet: bool = False):
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=err,
            disable=quiet,
        )
        self.task = None

    def start(self, label: str, total: int, done: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(f"training {label}", total=total, completed=done, losses="")

    def update(self, step: int, losses: Mapping[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        self.bar.update(self.task, completed=step, losses=text)

    def finish(self) -> None:
        self.bar.stop()
