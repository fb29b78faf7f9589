"""Long videos in segments: where to cut them, what a segment covers, and which rows are its own.

A segment's boundaries fall on a shard boundary of every dense array written (shard rows are
powers of two, `store.zarrio.shard_rows`), on a decode window (so frame batches are the same as an
unsplit run's) and on a clip start, so each shard of the video's arrays has exactly one writer and
holds what a serial run would write there. A segment decodes its frames plus the context its
featurizers declare: `context_before` frames before it (flow and regions: the frame before, handed
in as `FrameWindow.previous`), and, for clip-level featurizers, the frames up to its last clip's end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vadctl.store.writer import array_shard_rows


@dataclass
class Split:
    """Outcome of a whole-video task: the video is long; extract it in segments (nothing written)."""

    plan: object  # extract._Plan
    n_frames: int


@dataclass(frozen=True)
class Segment:
    """Part of a long video: its rows of frame-level (`frames`) and clip-level (`clips`) entries,
    and the frames decoded for them (`decode`: with the context its featurizers need)."""

    index: int
    frames: tuple[int, int]
    clips: tuple[int, int]
    decode: tuple[int, int]


@dataclass
class SegmentedVideo:
    """A new version of a long video being written in segments: the record it will commit, the
    entry groups prepared for the whole video (spec key → group), and what each segment covers."""

    plan: object  # extract._Plan
    record: dict
    info: object  # video.VideoInfo
    segments: list[Segment]
    groups: dict[str, str]
    tag: str
    running: list[str]
    loaded: list[str]
    started: float  # wall clock, for the video's time across its segments

    def part(self, key: str, index: int) -> str:
        """The group holding segment `index`'s ragged rows of an entry until they are joined."""
        return f"{self.groups[key]}.part{index:05d}"

    def all_parts(self) -> list[str]:
        return [self.part(key, s.index) for key in self.groups for s in self.segments]


@dataclass
class SegmentDone:
    index: int
    frames: int
    seconds: float
    error: str | None = None
    transient: bool = False  # the error came from the machine (full disk, lost worker), not the video


def plan_segments(info, running, pending: set[str], clips, window: int, segment_frames: int) -> list[Segment] | None:
    """The segments of a video longer than `segment_frames` (rounded up to the alignment) when
    every running featurizer can be split, else None. `pending`: names of the entries written."""
    if not segment_frames or info.n_frames <= segment_frames:
        return None
    if not all(f.segmentable for f in running):
        return None
    table = clips.table(info.n_frames)
    align = math.lcm(window, *(f.alignment for f in running))
    for featurizer in running:
        if featurizer.name not in pending:
            continue
        n_index = featurizer.n_index(info, clips)
        for aspec in featurizer.arrays(info).values():
            if aspec.ragged:
                continue
            rows = array_shard_rows(aspec, n_index)
            align = math.lcm(align, rows * clips.stride if featurizer.axis == "clip" else rows)
    length = -(-segment_frames // align) * align
    if info.n_frames <= length:
        return None
    before = max((f.context_before for f in running if f.axis == "frame"), default=0)
    has_clips = any(f.axis == "clip" for f in running)
    segments = []
    for index, first in enumerate(range(0, info.n_frames, length)):
        stop = min(first + length, info.n_frames)
        clip_lo = int(np.searchsorted(table[:, 0], first))
        clip_hi = len(table) if stop == info.n_frames else int(np.searchsorted(table[:, 0], stop))
        decode_to = stop
        if has_clips and clip_hi > clip_lo:
            last = clips.frame_indices(int(table[clip_hi - 1, 0]), info.n_frames).max()
            decode_to = max(stop, int(last) + 1)
        decode_from = max(0, first - max(before - 1, 0))
        segments.append(Segment(index, (first, stop), (clip_lo, clip_hi), (decode_from, decode_to)))
    return segments


def rows_in(out) -> int:
    if out.dense:
        return len(next(iter(out.dense.values())))
    return len(out.counts) if out.counts is not None else 0


def rows_inside(out, start: int, keep: tuple[int, int]):
    """(dense, ragged, counts) of `out` (rows for indices start, start + 1, …) limited to the
    indices in `keep` = [lo, hi): a segment writes only its own rows, not its context's."""
    n = rows_in(out)
    keep_from, keep_to = max(keep[0] - start, 0), max(min(keep[1] - start, n), 0)
    if keep_from == 0 and keep_to == n:
        return out.dense, out.ragged, out.counts
    dense = {name: rows[keep_from:keep_to] for name, rows in out.dense.items()}
    ragged, counts = out.ragged, out.counts
    if counts is not None:
        ends = np.concatenate([[0], np.cumsum(counts)])
        ragged = {name: rows[ends[keep_from] : ends[keep_to]] for name, rows in out.ragged.items()}
        counts = counts[keep_from:keep_to]
    return dense, ragged, counts
