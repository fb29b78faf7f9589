"""Progress bars of whole jobs: extraction's bars (videos, frames) plus one for scoring."""

from __future__ import annotations

from rich.markup import escape

from vadctl.cli.common import err
from vadctl.cli.extract_cmd import RichProgress


class JobProgress(RichProgress):
    """Bars for `vadctl run` and `vadctl score`: what extract shows, then videos scored per model."""

    def __init__(self, quiet: bool):
        super().__init__(quiet or not err.is_terminal)  # no bars into cron mails or pipes
        self.scoring = None
        self.bar.update(self.videos, visible=False)  # shown once an extraction plans its videos

    def planned(self, n_videos: int, n_work: int) -> None:
        self.bar.reset(self.videos, visible=True)
        super().planned(n_videos, n_work)

    def scoring_started(self, label: str, n_videos: int) -> None:
        self.bar.update(self.frames, visible=False)
        if self.scoring is None:
            self.scoring = self.bar.add_task("", total=n_videos, rate="")
        self.bar.reset(self.scoring, total=n_videos, description=f"scoring {escape(label)}", rate="")

    def video_scored(self, video_id: str, n_frames: int) -> None:
        if self.scoring is not None:
            self.bar.advance(self.scoring, 1)

    def video_finished(self, result) -> None:
        self.bar.advance(self.videos, 1)  # failures are listed once, in the job's report
