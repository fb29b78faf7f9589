"""Pictures of an event for the review page: a strip of its first, peak and last frame and a short
animated WebP clip, boxes drawn, decoded from the source video the store recorded.

The frames shown must be the frames that were scored: a source that is gone, changed since it was
scored, or no longer decodes gets no pictures and a note saying which, never a crash and never
pictures of other content. Only the event's span is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import polars as pl
from PIL import Image

from vadctl.errors import VadctlError
from vadctl.review.thumbs import OTHER_BOX, PEAK_BOX, UNION_BOX
from vadctl.scoring.provenance import video_fingerprint
from vadctl.store import FeatureStore, VideoRecord
from vadctl.video.catalog import VideoSource
from vadctl.video.reader import VideoReader

STRIP_HEIGHT = 150  # px of each frame in the strip
CLIP_HEIGHT = 180  # px of the clip's frames (smaller sources are not enlarged)
CLIP_FRAMES = 48  # at most this many frames in a clip: longer events are sampled evenly
CLIP_QUALITY = 60


@dataclass
class VideoFacts:
    """What the page says about a scored video, and why it has no pictures when it has none."""

    source: str = ""
    camera: str = ""
    problem: str | None = None


@dataclass
class Sources:
    """Store records and source checks, looked up once per video."""

    stores: dict[str, FeatureStore | str] = field(default_factory=dict)
    facts: dict[tuple, VideoFacts] = field(default_factory=dict)

    def record(self, store: str, split: str, video: str) -> VideoRecord | str:
        if not store:
            return "the results name no store to find the source video in (pass --store)"
        if store not in self.stores:
            try:
                self.stores[store] = FeatureStore(store, read_only=True)
            except VadctlError as error:
                self.stores[store] = f"cannot open store: {error}"
        opened = self.stores[store]
        if isinstance(opened, str):
            return opened
        record = opened.video(split, video)
        return record if record is not None else f"store {store} has no video {split}/{video}"

    def video(self, event: dict) -> VideoFacts:
        """Where the event's video is, its camera, and whether its frames can still be shown."""
        key = (event.get("store") or "", event.get("split") or "test", event["video"], event.get("video_fingerprint"))
        if key not in self.facts:
            self.facts[key] = _facts(self.record(*key[:3]), event)
        return self.facts[key]


def _camera(record: VideoRecord | None, video: str) -> str:
    if record is not None and record.scene:
        return record.scene
    if "/" in video:
        return video.split("/", 1)[0]
    return Path(record.source).parent.name if record is not None else ""


def _facts(record: VideoRecord | str, event: dict) -> VideoFacts:
    if isinstance(record, str):
        return VideoFacts(camera=_camera(None, event["video"]), problem=record)
    facts = VideoFacts(record.source, _camera(record, event["video"]))
    source = Path(record.source)
    if not source.exists():
        facts.problem = f"{source}: the video has been deleted or moved since it was scored"
        return facts
    scored = event.get("video_fingerprint")
    state, _ = VideoSource(event["video"], source, is_frame_folder=source.is_dir()).status_against(record.fingerprint)
    if state == "changed" or (scored and video_fingerprint(record) != scored):
        facts.problem = f"{source}: the video has changed since it was scored; its frames are not shown"
    return facts


def _draw_box(image: np.ndarray, box, color, width: int) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, width)


def _annotate(rgb: np.ndarray, event: dict, boxes: list[tuple]) -> np.ndarray:
    """BGR frame with the event's box (blue) and the frame's scored boxes (top red, others amber)."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    width = max(1, round(max(image.shape[:2]) / 300))
    if event.get("x1") is not None:
        _draw_box(image, (event["x1"], event["y1"], event["x2"], event["y2"]), UNION_BOX, width)
    for i, box in enumerate(boxes):
        _draw_box(image, box, PEAK_BOX if i == 0 else OTHER_BOX, width)
    return image


def _scaled(image: np.ndarray, height: int, enlarge: bool) -> np.ndarray:
    h, w = image.shape[:2]
    if h == height or (h < height and not enlarge):
        return image
    size = (max(1, round(w * height / h)), height)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if h > height else cv2.INTER_NEAREST)


def boxes_by_frame(regions: pl.DataFrame | None) -> dict[int, list[tuple]]:
    """Scored boxes of one video's frames, highest score first."""
    found: dict[int, list[tuple]] = {}
    if regions is None or not len(regions):
        return found
    for row in regions.sort("score", descending=True).iter_rows(named=True):
        found.setdefault(int(row["frame"]), []).append((row["x1"], row["y1"], row["x2"], row["y2"]))
    return found


def decode_span(source: str, video: str, start: int, stop: int) -> tuple[np.ndarray, float]:
    """Frames [start, stop) of a source (RGB) and its frame rate; `VadctlError` naming the file when
    it does not decode them."""
    path = Path(source)
    with VideoReader(VideoSource(video, path, is_frame_folder=path.is_dir())) as reader:
        frames = [w.frames for w in reader.windows(64, start=start, stop=stop)]
        fps = reader.info.fps
    if not frames or sum(len(f) for f in frames) < stop - start:
        raise VadctlError(f"{source}: decodes fewer frames than were scored (wanted frames {start}–{stop - 1})")
    return np.concatenate(frames), fps


def write_media(event: dict, frames: np.ndarray, boxes: dict[int, list[tuple]], folder: Path, fps: float) -> None:
    """strip.png (first, peak, last frame) and clip.webp of an event whose frames are `frames`."""
    start, end, peak = int(event["start_frame"]), int(event["end_frame"]), int(event["peak_frame"])
    picks = [start, peak, end]
    strip = [_scaled(_annotate(frames[i - start], event, boxes.get(i, [])), STRIP_HEIGHT, True) for i in picks]
    gap = np.full((STRIP_HEIGHT, 4, 3), 255, np.uint8)
    cv2.imwrite(str(folder / "strip.png"), np.concatenate([strip[0], gap, strip[1], gap, strip[2]], axis=1))
    step = max(1, -(-len(frames) // CLIP_FRAMES))
    images = []
    for offset in range(0, len(frames), step):
        bgr = _scaled(_annotate(frames[offset], event, boxes.get(start + offset, [])), CLIP_HEIGHT, False)
        images.append(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    duration = round(1000 * step / (fps or 10.0))
    images[0].save(
        folder / "clip.webp",
        "WEBP",
        save_all=True,
        append_images=images[1:],
        duration=duration,
        loop=0,
        quality=CLIP_QUALITY,
        method=2,
    )
