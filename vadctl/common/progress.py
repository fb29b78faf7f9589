"""How long library jobs tell their caller what they are doing, without knowing who shows it.

`vadctl.api` functions take `progress=`: a `Progress` subclass (the CLI draws rich bars; a
distributed executor forwards events to its driver) or any callable, which then receives every
event as `fn(event_name, **fields)` (a notebook can print or collect them). Every method of the
base class does nothing, so a subclass overrides only what it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Progress:
    """Events of extract, training and scoring jobs."""

    # extraction
    def planned(self, n_videos: int, n_work: int) -> None:
        """The run found `n_videos`, of which `n_work` need extracting."""

    def video_started(self, video_id: str, n_frames: int) -> None:
        """Extraction of one video began."""

    def frames_done(self, n: int) -> None:
        """`n` more frames of the current video were featurized."""

    def video_finished(self, result: Any) -> None:
        """A video is done (an `extract.VideoResult`: extracted, up to date or failed)."""

    # training (models that train in steps)
    def train_started(self, label: str, total: int, done: int) -> None:
        """Training of `label` runs to `total` steps, `done` of them already (when resumed)."""

    def train_step(self, step: int, losses: Mapping[str, float]) -> None:
        """Step `step` finished with these losses."""

    def train_finished(self) -> None:
        """Training stopped (finished, interrupted or failed)."""

    # scoring
    def scoring_started(self, label: str, n_videos: int) -> None:
        """`label` (a model, or model and split) is about to score `n_videos` videos."""

    def video_scored(self, video_id: str, n_frames: int) -> None:
        """One video's frames were scored."""

    # anything else worth a line to the user
    def note(self, text: str) -> None:
        """A remark about the job (e.g. "resumed from step 400")."""


EVENTS = tuple(name for name in vars(Progress) if not name.startswith("_"))


class CallbackProgress(Progress):
    """Progress as calls of one function: `fn(event_name, **fields)`."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def planned(self, n_videos: int, n_work: int) -> None:
        self.fn("planned", n_videos=n_videos, n_work=n_work)

    def video_started(self, video_id: str, n_frames: int) -> None:
        self.fn("video_started", video_id=video_id, n_frames=n_frames)

    def frames_done(self, n: int) -> None:
        self.fn("frames_done", n=n)

    def video_finished(self, result: Any) -> None:
        self.fn("video_finished", result=result)

    def train_started(self, label: str, total: int, done: int) -> None:
        self.fn("train_started", label=label, total=total, done=done)

    def train_step(self, step: int, losses: Mapping[str, float]) -> None:
        self.fn("train_step", step=step, losses=dict(losses))

    def train_finished(self) -> None:
        self.fn("train_finished")

    def scoring_started(self, label: str, n_videos: int) -> None:
        self.fn("scoring_started", label=label, n_videos=n_videos)

    def video_scored(self, video_id: str, n_frames: int) -> None:
        self.fn("video_scored", video_id=video_id, n_frames=n_frames)

    def note(self, text: str) -> None:
        self.fn("note", text=text)


ProgressArg = Progress | Callable[..., Any] | None  # what `progress=` accepts throughout the API


def as_progress(progress: Progress | Callable[..., Any] | None) -> Progress:
    """None → silent; a `Progress` as it is; any other callable → `CallbackProgress`."""
    if progress is None:
        return Progress()
    if isinstance(progress, Progress):
        return progress
    if callable(progress):
        return CallbackProgress(progress)
    raise TypeError(f"progress must be a vadctl.common.progress.Progress or a callable, not {type(progress).__name__}")


class Tee(Progress):
    """Every event to several receivers (e.g. the console's bars and a job's log file)."""

    def __init__(self, *receivers: Progress):
        self.receivers = receivers


def _forward(name: str) -> Callable[..., None]:
    def method(self: Tee, *args: Any, **kwargs: Any) -> None:
        for receiver in self.receivers:
            getattr(receiver, name)(*args, **kwargs)

    method.__name__ = name
    return method


for _name in EVENTS:
    setattr(Tee, _name, _forward(_name))
