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
    # robust:3 reads μ and σ from the median and the 84.13th percentile: on Gaussian scores it is μ + 3σ
    assert cal.threshold("robust:3") == pytest.approx(cal.threshold("sigma:3"), rel=0.01)
    assert cal.rule == "robust:3" and cal.warnings() == []
    for bad in ("sigma", "sigma:x", "percentile:101", "mad:3"):
        with pytest.raises(UsageError):
            parse_rule(bad)


def test_a_heavy_tail_does_not_lift_the_robust_threshold_and_fit_warns_about_bad_ones():
    """The demo's case: a few held-out videos with extreme scores (a density model's degenerate
    directions) made μ + 3σ = 2,061 against a bulk below 2, so nothing was ever flagged."""
    rng = np.random.default_rng(1)
    bulk = [VideoScores(f"{i}", np.abs(rng.normal(0.4, 0.3, 120))) for i in range(6)]
    wild = [VideoScores("w", np.concatenate([np.abs(rng.normal(0.4, 0.3, 110)), rng.uniform(100, 8000, 10)]))]
    cal = Calibration.from_scores(bulk + wild, "crossfit")
    assert cal.std > 500 and cal.threshold("sigma:3") > 1000
    assert 1.0 < cal.threshold() < 2.0  # the bulk's upper edge: still reachable
    assert 0 < cal.flagged_share() < 0.10 and cal.warnings() == []
    (tail,) = cal.warnings("sigma:3")
    assert "σ̂ above the median" in tail and "\n" not in tail
    (many,) = cal.warnings("percentile:80")
    assert "flags 20% of the" in many
    (none,) = calibration(rng.normal(0, 1, 500)).warnings("sigma:40")
    assert "far above every held-out normal score" in none


def test_model_files_written_before_robust_rules_keep_their_rule():
    cal = Calibration.from_meta(
        {"mean": 1.0, "std": 0.5, "n_frames": 2, "videos": ["a"], "method": "x"}, np.zeros(1001)
    )
    assert cal.rule == "sigma:3" and cal.threshold() == pytest.approx(2.5)


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
