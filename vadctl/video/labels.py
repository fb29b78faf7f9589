"""Video-level labels for weakly supervised models: a CSV `video,label[,class]`, or the review page's
verdicts (`video,start_frame,end_frame,verdict`, see `verdict_video_labels`).

`label` is 0 (normal) or 1 (anomalous); `class` names an anomalous video's kind in free text
("fighting", "cyclist"). Classes are optional, but when any anomalous video has one, all must.
Everything wrong with a file is a one-line `UsageError` naming the file, the line and the problem,
so a weak-supervision run never starts on labels it would silently misread.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vadctl.common.specs import canonical_json
from vadctl.errors import UsageError

NORMAL = "normal"  # the class name of normal videos in outputs and confusion matrices
VERDICT_HEADER = ["video", "start_frame", "end_frame", "verdict"]  # the review page's export
VERDICTS = {"false_alarm": 0, "reviewed": 1}


@dataclass(frozen=True)
class VideoLabels:
    """Which videos are anomalous, and of which class; `path` says where they were read."""

    path: str
    labels: dict[str, int]
    classes: dict[str, str] = field(default_factory=dict)  # anomalous video → class (empty: no classes)

    @property
    def class_names(self) -> list[str]:
        return sorted(set(self.classes.values()))

    @property
    def has_classes(self) -> bool:
        return bool(self.classes)

    def normal(self) -> list[str]:
        return sorted(v for v, y in self.labels.items() if y == 0)

    def anomalous(self) -> list[str]:
        return sorted(v for v, y in self.labels.items() if y == 1)

    def check_videos(self, available: Iterable[str], where: str) -> None:
        """Every labelled video must exist in `where` (a split of a store)."""
        unknown = sorted(set(self.labels) - set(available))
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" … ({len(unknown)} in all)" if len(unknown) > 5 else "")
            raise UsageError(f"{self.path}: unknown video id(s) {shown}: not in {where}")

    def digest(self) -> str:
        """sha256 of the labels' content (not their path): part of a training run's identity."""
        payload = canonical_json({"labels": self.labels, "classes": self.classes})
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_meta(self) -> dict:
        return {"path": self.path, "sha256": self.digest(), "labels": self.labels, "classes": self.classes}


def read_video_labels(path: str | Path) -> VideoLabels:
    """Read and validate a video-labels CSV (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such video-labels file (CSV video,label[,class])")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"{path}: cannot read as CSV: {error}") from None
    rows = [(number, row) for number, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not rows:
        raise UsageError(f"{path}: empty; expected a header video,label[,class] and one row per video")
    header = [cell.strip().lower() for cell in rows[0][1]]
    if header == VERDICT_HEADER:
        return verdict_video_labels(path, rows)
    if header[:2] != ["video", "label"] or header[2:] not in ([], ["class"]):
        raise UsageError(f"{path}: header {','.join(rows[0][1])!r}: expected video,label or video,label,class")
    labels: dict[str, int] = {}
    classes: dict[str, str] = {}
    unnamed: list[tuple[int, str]] = []
    for number, row in rows[1:]:
        cells = [cell.strip() for cell in row]
        if len(cells) < 2 or len(cells) > len(header):
            raise UsageError(f"{path} line {number}: expected {len(header)} fields ({','.join(header)}), got {row}")
        video, label = cells[0], cells[1]
        name = cells[2] if len(cells) > 2 else ""
        if not video:
            raise UsageError(f"{path} line {number}: empty video id")
        if label not in ("0", "1"):
            raise UsageError(f"{path} line {number}: label of video {video} must be 0 or 1, not {label!r}")
        if video in labels:
            raise UsageError(f"{path} line {number}: video {video} is labelled twice")
        labels[video] = int(label)
        if label == "0":
            if name and name.lower() != NORMAL:
                raise UsageError(f"{path} line {number}: video {video} is labelled normal (0) but has class {name!r}")
        elif name:
            if name.lower() == NORMAL:
                raise UsageError(f"{path} line {number}: video {video} is anomalous (1) but its class is {name!r}")
            classes[video] = name
        else:
            unnamed.append((number, video))
    _check_both(path, labels)
    if classes and unnamed:
        number, video = unnamed[0]
        raise UsageError(
            f"{path} line {number}: anomalous video {video} has no class, while others do "
            f"({', '.join(sorted(set(classes.values())))}); give every anomalous video a class or none"
        )
    return VideoLabels(str(path), labels, classes)


def _check_both(path: Path, labels: dict[str, int]) -> None:
    if not labels:
        raise UsageError(f"{path}: no videos listed (only a header)")
    present = set(labels.values())
    if len(present) < 2:
        kind = "normal (0)" if present == {0} else "anomalous (1)"
        raise UsageError(
            f"{path}: every video is labelled {kind}; weak supervision needs both normal and anomalous videos"
        )


def verdict_video_labels(path: Path, rows: list[tuple[int, list[str]]]) -> VideoLabels:
    """The review page's verdicts as video labels: a video with an event marked "reviewed" (a real
    anomaly) is anomalous; one whose every event was marked "false_alarm" is normal (a person looked
    at everything it was flagged for). Videos nobody judged are not in the file, so not labelled."""
    verdicts: dict[str, set[int]] = {}
    for number, row in rows[1:]:
        cells = [cell.strip() for cell in row]
        if len(cells) != len(VERDICT_HEADER) or not cells[0]:
            raise UsageError(f"{path} line {number}: expected {','.join(VERDICT_HEADER)}, got {row}")
        if cells[3] not in VERDICTS:
            raise UsageError(
                f"{path} line {number}: verdict {cells[3]!r} of video {cells[0]}: expected {' or '.join(VERDICTS)}"
            )
        verdicts.setdefault(cells[0], set()).add(VERDICTS[cells[3]])
    labels = {video: max(found) for video, found in verdicts.items()}
    _check_both(path, labels)
    return VideoLabels(str(path), labels)
