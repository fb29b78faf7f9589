"""Events: runs of anomalous frames, merged across short gaps, short ones dropped, peak and box."""

from datetime import date

import numpy as np
import polars as pl
import pytest

from vadctl.errors import UsageError
from vadctl.scoring.events import anomalous_runs, find_events, parse_since


def runs(flags: str, min_len: int = 1, min_gap: int = 0) -> list[tuple[int, int]]:
    values = np.array([c == "x" for c in flags])
    return anomalous_runs(np.arange(len(values)), values, min_len, min_gap)


def test_contiguous_runs_merge_across_short_gaps_and_short_runs_drop():
    assert runs("..xxx..x....xx") == [(2, 4), (7, 7), (12, 13)]
    assert runs("..xxx..x....xx", min_gap=3) == [(2, 7), (12, 13)]  # gap of 2 < 3 merges; gap of 4 does not
    assert runs("..xxx..x....xx", min_gap=5) == [(2, 13)]
    assert runs("..xxx..x....xx", min_len=3) == [(2, 4)]  # lengths 3, 1, 2
    assert runs("..xxx..x....xx", min_len=6, min_gap=3) == [(2, 7)]  # merged span counts the gap
    assert runs("......") == []
    with pytest.raises(UsageError):
        runs("x", min_len=0)


def test_events_carry_peak_times_union_of_top_boxes_and_provenance():
    scores = np.array([0, 0, 5, 9, 7, 0, 0, 0, 0, 6, 6, 0], float)
    frames = pl.DataFrame(
        {
            "video": ["v"] * 12,
            "frame": np.arange(12),
            "score": scores,
            "score_norm": scores / 3,
            "is_anomaly": scores > 4,
            "model_sha256": ["abc"] * 12,
            "run_id": ["r1"] * 12,
        }
    )
    regions = pl.DataFrame(
        {
            "video": ["v"] * 4,
            "frame": [2, 3, 3, 9],
            "x1": [10.0, 30.0, 0.0, 50.0],
            "y1": [10.0, 5.0, 0.0, 50.0],
            "x2": [20.0, 40.0, 100.0, 60.0],
            "y2": [20.0, 15.0, 100.0, 60.0],
            "score": [5.0, 9.0, 0.1, 6.0],  # frame 3's low-scoring full-frame box is normal traffic
        }
    )
    events = find_events(frames, regions, min_len=2, min_gap=2, fps={"v": 10.0})
    assert events.select("start_frame", "end_frame", "peak_frame", "peak_score").rows() == [
        (2, 4, 3, 9.0),
        (9, 10, 9, 6.0),
    ]
    first = events.row(0, named=True)
    assert (first["start_s"], first["end_s"], first["n_frames"]) == (0.2, 0.5, 3)
    assert (first["x1"], first["y1"], first["x2"], first["y2"]) == (10.0, 5.0, 40.0, 20.0)
    assert first["peak_score_norm"] == 3.0 and first["model_sha256"] == "abc" and first["run_id"] == "r1"
    assert find_events(frames.with_columns(is_anomaly=False)).is_empty()


def test_since_accepts_dates_and_days_back_and_rejects_the_rest():
    today = date(2024, 5, 10)
    assert parse_since("2024-05-01", today) == date(2024, 5, 1)
    assert parse_since("1d", today) == date(2024, 5, 9)
    assert parse_since("yesterday", today) == date(2024, 5, 9)
    assert parse_since(None) is None
    for bad in ("2024-13-01", "last week", "d"):
        with pytest.raises(UsageError, match="--since"):
            parse_since(bad, today)


def test_a_gap_of_exactly_min_gap_splits_and_single_frames_follow_min_len():
    """Merging is for gaps *shorter* than min_gap: a gap of exactly min_gap frames splits events."""
    assert runs("xx...xx", min_gap=3) == [(0, 1), (5, 6)]  # gap 3 = min_gap: two events
    assert runs("xx...xx", min_gap=4) == [(0, 6)]  # gap 3 < 4: one event
    assert runs("xx..xx", min_gap=2) == [(0, 1), (4, 5)]
    assert runs(".x..", min_len=1) == [(1, 1)]  # one flagged frame is an event when min_len is 1
    assert runs(".x..", min_len=2) == []  # and not when it is 2
    assert runs(".x.xx", min_len=2, min_gap=2) == [(1, 4)]  # merged across a 1-frame gap: 4 frames long
