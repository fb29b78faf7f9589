"""`vadctl store verify --sources`: re-hash every source in full and mark changed ones for re-extraction.

A video's fingerprint (size, mtime, a hash of sampled blocks) is cheap and sees re-encodes, appends
and truncation, but not an edit that keeps size and mtime and misses the sampled blocks (e.g.
200 KB zeroed in the middle). Here every byte is read again and compared with the sha256 of the
whole source, recorded when the video was extracted. A mismatch marks the video's record
(`source_changed`, one atomic record write under the video's lock): the next `vadctl extract`
(or `vadctl run`) redoes the whole video. Records written before vadctl recorded that hash get
it here, the first time (and it vouches only for changes made after that).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import Timeout

from vadctl.store import FeatureStore
from vadctl.video.catalog import VideoSource

SAME, CHANGED, RECORDED, MISSING, BUSY, SKIPPED = "same", "changed", "recorded", "missing", "busy", "skipped"


@dataclass
class SourceCheck:
    """What re-hashing one video's source found: status (same, changed, recorded: the first full
    hash taken now, missing, busy: held by a writer, skipped: failed extraction) and details."""

    split: str
    video: str
    source: str
    status: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"split": self.split, "video": self.video, "source": self.source, "status": self.status} | (
            {"detail": self.detail} if self.detail else {}
        )

    def __str__(self) -> str:
        return f"{self.split}/{self.video} ({self.source})" + (f": {self.detail}" if self.detail else "")


def verify_sources(store: FeatureStore, splits: Iterable[str] | None = None) -> list[SourceCheck]:
    """Re-hash the source of every video of the store (or of some splits), compare with the hash
    recorded at extraction, and mark changed videos so the next extract redoes them. Videos a
    writer holds are listed as busy and left alone. `store` must be open for writing."""
    checks = []
    for split in splits or store.splits():
        for listed in store.videos(split, damaged_ok=True):
            lock = store.video_lock(split, listed.video_id)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                checks.append(SourceCheck(split, listed.video_id, listed.source, BUSY, "being written; run again"))
                continue
            try:
                record = store.video(split, listed.video_id)
                if record is not None:
                    checks.append(_check(store, record))
            finally:
                lock.release()
    return checks


def _check(store: FeatureStore, record) -> SourceCheck:
    found = SourceCheck(record.split, record.video_id, record.source, SAME)
    path = Path(record.source)
    if record.status == "failed":
        found.status, found.detail = SKIPPED, "its extraction failed; `vadctl extract --retry-failed` tries again"
        return found
    if record.source_changed:
        found.status, found.detail = CHANGED, f"{record.source_changed} (marked earlier; not extracted again yet)"
        return found
    if not path.exists():
        found.status, found.detail = MISSING, "`vadctl store prune --missing-sources` forgets it"
        return found
    source = VideoSource(record.video_id, path, is_frame_folder=path.is_dir())
    try:
        state, _ = source.status_against(record.fingerprint)
        if state == "changed":  # the cheap check sees it already: the next extract redoes it anyway
            found.status, found.detail = CHANGED, "size or sampled blocks differ; the next extract redoes it"
            return found
        full = source.content_sha256()
    except OSError as error:
        found.status, found.detail = MISSING, f"cannot read: {error.strerror or error}"
        return found
    if record.source_sha256 is None:
        record.source_sha256, record.source_sha256_from = full, "verify"
        store.save_video(record)
        found.status, found.detail = RECORDED, "no full hash from extraction; taken now, compared from now on"
    elif full != record.source_sha256:
        day = datetime.now(UTC).date().isoformat()
        record.source_changed = (
            f"source content changed since extraction (sha256 {record.source_sha256[:12]} → {full[:12]}, "
            f"found by store verify --sources on {day})"
        )
        store.save_video(record)
        found.status, found.detail = CHANGED, "same size and sampled blocks, other content; the next extract redoes it"
    return found
