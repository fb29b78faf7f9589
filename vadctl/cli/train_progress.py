"""A rich progress bar for training steps, with the latest losses (the CLI side of training progress)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from vadctl.cli.common import err, out
from vadctl.common.progress import Progress


class RichTrainProgress(Progress):
    """Steps done / total, elapsed, remaining, and `name=value` of each loss of the last step."""

    def __init__(self, quiet: bool = False):
        self.bar = Bar(
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

    def train_started(self, label: str, total: int, done: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(f"training {label}", total=total, completed=done, losses="")

    def train_step(self, step: int, losses: Mapping[str, float]) -> None:
        text = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
        self.bar.update(self.task, completed=step, losses=text)

    def train_finished(self) -> None:
        self.bar.stop()

    def note(self, text: str) -> None:
        out.print(escape(text))
