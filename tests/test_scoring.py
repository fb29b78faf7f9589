"""Calibration, thresholds and atomic outputs."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vadctl.errors import UsageError
from vadctl.results import VideoScores
from vadctl.scoring import Calibration, frames_table, parse_rule, temporal_smooth, write_parquet_atomic


def calibration(values: np.ndarray) -> Calibration:
    return Calibration.from_scores([VideoScores("v", values)], "holdout")


def test_sigma_and_percentile_thresholds():
    values = np.random.default_rng(0).normal(5.0, 2.0, 20_000)
    cal = calibration(values)
    assert cal.threshold("sigma:3") == pytest.approx(values.mean() + 3 * values.std())
    assert cal.threshold("percentile:99") == pytest.approx(np.percentile(values, 99), rel=1e-3)
    assert cal.normalize(np.array([cal.threshold()]))[0] == pytest.approx(3.0)
    for bad in ("sigma", "sigma:x", "percentile:101", "mad:3"):
        with pytest.raises(UsageError):
            parse_rule(bad)


def test_frames_table_columns_and_flags():
    cal = calibration(np.array([0.0, 1.0, 2.0, 1.0]))
    table = frames_table(
        [VideoScores("01", np.array([0.5, 50.0]), extra={"score_minmax": np.array([0, 1])})], cal, "toy"
    )
    assert table.columns == [
        "video",
        "frame",
        "score",
        "score_norm",
        "is_anomaly",
        "threshold",
        "model",
        "score_minmax",
    ]
    assert table["is_anomaly"].to_list() == [False, True]
    assert table["frame"].to_list() == [0, 1]


def test_smoothing_is_gaussian_within_one_series():
    spike = np.zeros(21)
    spike[10] = 1.0
    smooth = temporal_smooth(spike, 3.0)
    assert smooth.sum() == pytest.approx(1.0, rel=1e-3) and smooth.argmax() == 10  # truncated at 4σ
    assert np.array_equal(temporal_smooth(spike, 0.0), spike)


def test_parquet_write_is_atomic(tmp_path: Path, monkeypatch):
    target = tmp_path / "scores.parquet"
    write_parquet_atomic(pl.DataFrame({"a": [1, 2]}), target)
    before = target.read_bytes()

    def crash(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half written")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(pl.DataFrame({"a": [3]}), target)
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no temp file left behind


def test_videos_and_events_tables_carry_classes():
    from vadctl.results import ClassScores
    from vadctl.scoring import events_table, videos_table

    cal = calibration(np.array([0.0, 1.0, 2.0, 1.0]))
    probs = np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]] * 3)
    named = VideoScores(
        "a", np.array([0, 9, 9, 0, 9, 9.0]), classes=ClassScores(["bike", "cart"], probs, np.array([0.3, 0.7]))
    )
    scores = [named, VideoScores("b", np.zeros(4))]
    frames = frames_table(scores, cal, "toy")
    assert frames.filter(pl.col("video") == "a")["class"].to_list() == ["bike"] * 3 + ["cart"] * 3
    assert frames.filter(pl.col("video") == "b")["class"].null_count() == 4  # names no class
    videos = videos_table(scores, frames).sort("video")
    assert videos["is_anomaly"].to_list() == [True, False] and videos["class"].to_list() == ["cart", None]
    assert videos["class_probs"].struct.field("cart").to_list()[0] == pytest.approx(0.7)
    events = events_table(scores, frames)
    assert events.select("start_frame", "stop_frame").rows() == [(1, 3), (4, 6)]
    assert events["class"].to_list() == ["bike", "cart"]
    named.video_score = -1.5  # the model's own video-level decision wins over flagged frames
    frames = frames_table(scores, cal, "toy")
    videos = videos_table(scores, frames).sort("video")
    assert videos["is_anomaly"].to_list() == [False, False] and videos["video_score"].to_list()[0] == -1.5
