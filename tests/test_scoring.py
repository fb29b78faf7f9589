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


def test_frames_table_applies_the_rule_it_is_given_and_joins_videos_with_different_extras():
    cal = calibration(np.arange(101, dtype=float))  # percentile P of 0..100 is P
    items = [
        VideoScores("a", np.array([10.0, 60.0, 90.0]), extra={"score_minmax": np.array([0.0, 0.5, 1.0])}),
        VideoScores("b", np.array([70.0])),
    ]
    table = frames_table(items, cal, "toy", rule="percentile:50")
    assert table["threshold"].to_list() == [pytest.approx(50.0)] * 4
    assert table["is_anomaly"].to_list() == [False, True, True, True]
    assert table["video"].to_list() == ["a", "a", "a", "b"] and table["frame"].to_list() == [0, 1, 2, 0]
    assert table["score_minmax"].to_list() == [0.0, 0.5, 1.0, None]  # missing extras are nulls, not errors
    assert table["model"].unique().to_list() == ["toy"]
    np.testing.assert_allclose(table["score_norm"].to_numpy(), (table["score"].to_numpy() - cal.mean) / cal.std)
    default = frames_table(items, cal, "toy")
    assert default["threshold"][0] == pytest.approx(cal.mean + 3 * cal.std)
    with pytest.raises(UsageError, match="nothing to score"):
        frames_table([], cal, "toy")


def test_calibration_statistics_are_those_of_the_finite_held_out_scores():
    values = [np.array([1.0, 2.0, np.nan]), np.array([3.0, np.inf, 6.0])]
    cal = Calibration.from_scores([VideoScores("x", values[0]), VideoScores("y", values[1])], "crossfit", "sigma:2")
    finite = np.array([1.0, 2.0, 3.0, 6.0])
    assert (cal.mean, cal.std, cal.n_frames) == (pytest.approx(3.0), pytest.approx(finite.std()), 4)
    assert cal.videos == ["x", "y"] and cal.method == "crossfit" and cal.rule == "sigma:2"
    assert cal.threshold() == pytest.approx(3.0 + 2 * finite.std())
    np.testing.assert_allclose(cal.quantiles[[0, 500, 1000]], [1.0, 2.5, 6.0])
    flat = Calibration.from_scores([VideoScores("x", np.ones(5))], "holdout")
    assert 0 < flat.std <= 1e-12  # a constant calibration set still gives a usable scale
    with pytest.raises(UsageError, match="held-out normal frames"):
        Calibration.from_scores([VideoScores("x", np.array([1.0, np.nan]))], "holdout")
    with pytest.raises(UsageError, match="threshold"):
        Calibration.from_scores([VideoScores("x", finite)], "holdout", "mad:3")
    again = Calibration.from_meta(cal.to_meta(), cal.quantiles)
    assert again.to_meta() == cal.to_meta() and again.threshold("percentile:50") == cal.threshold("percentile:50")
    assert cal.to_meta()["threshold"] == pytest.approx(cal.threshold())


def test_regions_table_rows_are_the_boxes_given():
    from vadctl.results import RegionScores
    from vadctl.scoring import regions_table

    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], np.float32)
    items = [
        VideoScores("a", np.zeros(3), RegionScores(np.array([0, 2, 2]), boxes, np.array([0.1, 0.2, 0.3]))),
        VideoScores("b", np.zeros(2)),  # no regions
        VideoScores("c", np.zeros(2), RegionScores(np.array([1]), boxes[:1] + 100, np.array([0.9]))),
    ]
    table = regions_table(items)
    assert table.columns == ["video", "frame", "x1", "y1", "x2", "y2", "score"]
    assert table["video"].to_list() == ["a", "a", "a", "c"] and table["frame"].to_list() == [0, 2, 2, 1]
    np.testing.assert_array_equal(table.select("x1", "y1", "x2", "y2").to_numpy(), np.vstack([boxes, boxes[:1] + 100]))
    assert table["score"].to_list() == [0.1, 0.2, 0.3, 0.9]
    empty = regions_table([VideoScores("b", np.zeros(2))])
    assert empty.is_empty() and empty.columns == table.columns and empty.schema == table.schema


def test_a_score_at_the_threshold_is_not_flagged_and_columns_keep_their_types():
    from vadctl.results import RegionScores
    from vadctl.scoring import regions_table

    cal = calibration(np.arange(101, dtype=float))
    table = frames_table([VideoScores("a", np.array([50.0, 50.5]))], cal, "toy", rule="percentile:50")
    assert table["is_anomaly"].to_list() == [False, True]  # anomalous means above the threshold
    regions = RegionScores(np.array([0]), np.array([[1.5, 2, 3, 4]], np.float64), np.array([1], np.int64))
    boxes = regions_table([VideoScores("a", np.zeros(1), regions)])
    assert boxes.schema == {"video": pl.String, "frame": pl.Int64, "x1": pl.Float32, "y1": pl.Float32,
                            "x2": pl.Float32, "y2": pl.Float32, "score": pl.Float64}  # fmt: skip
