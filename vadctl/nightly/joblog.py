"""A job's JSON-lines log: one object per event, for whoever reads last night's run (or greps it).

Every line has `ts` (UTC, ISO 8601), `level` (info, warning, error), `event`, `job`, `run_id`, and
where they apply `video` and `seconds`, plus the event's own fields. Lines are appended with one
write each, so concurrent writers and a killed run never interleave or corrupt earlier lines.
`JobLog` is also a `Progress`: handed to the extractor, it logs each video's outcome.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vadctl.common.progress import Progress
from vadctl.extraction.extractor import EXTRACTED, FAILED, FAILED_EARLIER


class JobLog(Progress):
    """Appends events to `path`; with no path it records nothing (a job without `log`)."""

    def __init__(self, path: Path | None, job: str, run_id: str):
        self.path = Path(path) if path is not None else None
        self.job = job
        self.run_id = run_id
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        if self.path is None:
            return
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "event": event,
            "job": self.job,
            "run_id": self.run_id,
        }
        record.update({k: round(v, 3) if k == "seconds" else v for k, v in fields.items() if v is not None})
        line = (json.dumps(record, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    # extraction outcomes, as the extractor reports them
    def video_finished(self, result: Any) -> None:

        if result.status == EXTRACTED:
            self.event("video_extracted", video=result.video_id, seconds=result.seconds, frames=result.frames)
        elif result.status == FAILED:
            self.event("video_failed", "error", video=result.video_id, seconds=result.seconds, error=result.error)
        elif result.status == FAILED_EARLIER:
            self.event("video_failed_earlier", "warning", video=result.video_id, error=result.error)

    def note(self, text: str) -> None:
        self.event("note", text=text)
