"""A PNG of each event's peak frame with its boxes drawn, decoded from the video the store recorded.

Boxes are in source-video pixels, so the frame is decoded at its native size. A video whose source
is gone or unreadable gets no picture (a note says why); the other events still do.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from vadctl.defaults import TEST_SPLIT
from vadctl.errors import VadctlError
from vadctl.store import FeatureStore
from vadctl.video.catalog import VideoSource
from vadctl.video.reader import VideoReader

PEAK_BOX = (0, 0, 255)  # BGR red: the highest-scoring box of the peak frame
OTHER_BOX = (0, 200, 255)  # amber: other scored boxes of that frame
UNION_BOX = (255, 160, 0)  # blue: where the whole event happened


def thumbnail_name(event: dict) -> str:
    video = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(event["video"])).strip("_") or "video"
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(event.get("model") or "model"))
    digest = str(event.get("model_sha256") or "")[:8]
    tag = f"{model}-{digest}" if digest else model
    return f"{tag}__{video}__{event['start_frame']}-{event['end_frame']}.png"


def _box(image: np.ndarray, box, color, width: int) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, width)


def draw(frame_rgb: np.ndarray, event: dict, boxes: pl.DataFrame | None) -> np.ndarray:
    """The peak frame (BGR, for cv2.imwrite) with the event's boxes and a caption."""
    image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    scale = max(1, round(max(image.shape[:2]) / 400))
    if event.get("x1") is not None:
        _box(image, (event["x1"], event["y1"], event["x2"], event["y2"]), UNION_BOX, scale)
    if boxes is not None and len(boxes):
        ordered = boxes.sort("score", descending=True)
        for i, row in enumerate(ordered.iter_rows(named=True)):
            _box(image, (row["x1"], row["y1"], row["x2"], row["y2"]), PEAK_BOX if i == 0 else OTHER_BOX, scale)
    caption = f"{event['video']} frame {event['peak_frame']} score {event['peak_score']:.3g}"
    cv2.putText(image, caption, (4, 12 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.35 * scale, (255, 255, 255), scale)
    return image


def write_thumbnails(
    events: pl.DataFrame, regions: pl.DataFrame | None, out_dir: Path, store_of: dict[str, str]
) -> tuple[list[str | None], list[str]]:
    """Write one PNG per event; returns (path or None per event, in order; notes on what failed).

    `events` need video, split, start/end/peak frame, peak_score (and x1..y2, model, model_sha256,
    run_id when known); `regions` the scored boxes (video, frame, x1..y2, score, run_id,
    model_sha256); `store_of` maps an event's `store` key (a column) to the store path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str | None] = []
    notes: list[str] = []
    stores: dict[str, FeatureStore] = {}
    readers: dict[tuple[str, str, str], VideoReader | str] = {}
    for event in events.iter_rows(named=True):
        try:
            key = (event["store"], event.get("split") or TEST_SPLIT, event["video"])
            if key not in readers:
                readers[key] = _reader(stores, store_of[key[0]], key[1], key[2])
            reader = readers[key]
            if isinstance(reader, str):
                raise VadctlError(reader)
            frame = reader.frame(int(event["peak_frame"]))
        except VadctlError as error:
            span = f"{event['start_frame']}-{event['end_frame']}"
            notes.append(f"no thumbnail for {event['video']} frames {span}: {error}")
            written.append(None)
            continue
        boxes = None
        if regions is not None and len(regions):
            match = (pl.col("video") == event["video"]) & (pl.col("frame") == event["peak_frame"])
            for column in ("run_id", "model_sha256"):
                if column in regions.columns and event.get(column) is not None:
                    match &= pl.col(column) == event[column]
            boxes = regions.filter(match)
        path = out_dir / thumbnail_name(event)
        cv2.imwrite(str(path), draw(frame, event, boxes))
        written.append(str(path))
    for reader in readers.values():
        if isinstance(reader, VideoReader):
            reader.close()
    return written, notes


def _reader(stores: dict[str, FeatureStore], store_path: str, split: str, video: str) -> VideoReader | str:
    """A reader of the video's source as recorded in the store, or why there is none."""
    if store_path not in stores:
        stores[store_path] = FeatureStore(store_path, read_only=True)
    record = stores[store_path].video(split, video)
    if record is None:
        return f"store {store_path} has no video {split}/{video}"
    source = Path(record.source)
    if not source.exists():
        return f"source {source} is gone"
    return VideoReader(VideoSource(video, source, is_frame_folder=source.is_dir()))
