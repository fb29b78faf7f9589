"""Calibration, thresholds and atomic outputs."""

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vadctl.errors import UsageError
from vadctl.models.calibration import Calibration, parse_rule
from vadctl.models.scores import VideoScores, temporal_smooth
from vadctl.scoring.tables import frames_table, write_parquet_atomic


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
    from vadctl.models.scores import ClassScores
    from vadctl.scoring.events import find_events
    from vadctl.scoring.tables import videos_table

    cal = calibration(np.array([0.0, 1.0, 2.0, 1.0]))
    probs = np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]] * 3)
    named = VideoScores(
        "a", np.array([0, 9, 9, 0, 9, 9.0]), classes=ClassScores(["bike", "cart"], probs, np.array([0.3, 0.7]))
    )
    scores = [named, VideoScores("b", np.zeros(4))]
    frames = frames_table(scores, cal, "toy")
    assert frames.filter(pl.col("video") == "a")["class"].to_list() == ["bike"] * 3 + ["cart"] * 3
    assert frames.filter(pl.col("video") == "b")["class"].null_count() == 4  # names no class
    assert frames.filter(pl.col("video") == "a")["video_class"].unique().to_list() == ["cart"]  # 0.7 > 0.3
    videos = videos_table(scores, frames).sort("video")
    assert videos["is_anomaly"].to_list() == [True, False] and videos["class"].to_list() == ["cart", None]
    assert videos["class_probs"].struct.field("cart").to_list()[0] == pytest.approx(0.7)
    classes = {s.video_id: s.classes for s in scores}
    events = find_events(frames, min_len=1, min_gap=1, classes=classes)
    assert events.select("start_frame", "end_frame").rows() == [(1, 2), (4, 5)]  # inclusive ends
    assert events["class"].to_list() == ["bike", "cart"]
    assert events["class_probs"].struct.field("cart").to_list() == pytest.approx([0.1, 0.8])
    merged = find_events(frames, min_len=1, min_gap=2, classes=classes)  # a 1-frame gap < 2: one event
    assert merged.select("start_frame", "end_frame").rows() == [(1, 5)]
    assert merged["class"].to_list() == ["cart"]  # frames 1–5: mean of (0.1, 0.1, 0.8, 0.8, 0.8)
    assert merged["class_prob"].to_list() == pytest.approx([0.52])
    named.video_score = -1.5  # the model's own video-level decision wins over flagged frames
    frames = frames_table(scores, cal, "toy")
    videos = videos_table(scores, frames).sort("video")
    assert videos["is_anomaly"].to_list() == [False, False] and videos["video_score"].to_list()[0] == -1.5


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
    # score_norm is in the calibration's own rule (robust:3): median and σ̂ = q84.13 − median of 0..100
    values = np.arange(101, dtype=float)
    median, sigma = np.median(values), np.percentile(values, 84.13) - np.median(values)
    np.testing.assert_allclose(table["score_norm"].to_numpy(), (table["score"].to_numpy() - median) / sigma, rtol=1e-3)
    default = frames_table(items, cal, "toy")
    assert default["threshold"][0] == pytest.approx(median + 3 * sigma, rel=1e-3)
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
    from vadctl.models.scores import RegionScores
    from vadctl.scoring.tables import regions_table

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
    from vadctl.models.scores import RegionScores
    from vadctl.scoring.tables import regions_table

    cal = calibration(np.arange(101, dtype=float))
    table = frames_table([VideoScores("a", np.array([50.0, 50.5]))], cal, "toy", rule="percentile:50")
    assert table["is_anomaly"].to_list() == [False, True]  # anomalous means above the threshold
    regions = RegionScores(np.array([0]), np.array([[1.5, 2, 3, 4]], np.float64), np.array([1], np.int64))
    boxes = regions_table([VideoScores("a", np.zeros(1), regions)])
    assert boxes.schema == {"video": pl.String, "frame": pl.Int64, "x1": pl.Float32, "y1": pl.Float32,
                            "x2": pl.Float32, "y2": pl.Float32, "score": pl.Float64}  # fmt: skip


def test_score_files_and_the_results_dataset_publish_one_events_table():
    """`vadctl score` and `vadctl run` write through `publish`: the same frames, regions and events
    columns, the dataset's without `model` (its partition), every provenance column on each."""
    from vadctl.common.specs import Fingerprint
    from vadctl.scoring.events import SCHEMA
    from vadctl.scoring.provenance import PROVENANCE_SCHEMA, Provenance
    from vadctl.scoring.tables import publish
    from vadctl.store import VideoRecord

    cal = calibration(np.array([0.0, 1.0, 2.0, 1.0]))
    scores = [VideoScores("a", np.array([0, 9, 9, 9, 9, 0.0])), VideoScores("b", np.zeros(5))]
    fingerprint = Fingerprint(1, 1, "x")
    records = {
        v: VideoRecord("test", v, f"/{v}.avi", fingerprint, n_frames=n, fps=10.0) for v, n in (("a", 6), ("b", 5))
    }
    scored_at = datetime(2026, 1, 1, tzinfo=UTC)
    prov = Provenance("r1", scored_at, "toy", "toy", "0" * 64, "/m", "/s", "test", {}, "robust:3", cal.threshold())
    files = publish(scores, cal, "toy", prov, records)
    dataset = publish(scores, cal, "toy", prov, records, model_column=False)
    for kind in ("frames", "regions", "events"):
        assert set(getattr(files, kind).columns) - set(getattr(dataset, kind).columns) == {"model"}, kind
        assert set(PROVENANCE_SCHEMA) <= set(getattr(dataset, kind).columns), kind
    assert list(dataset.events.columns[: len(SCHEMA)]) == list(SCHEMA)
    assert dataset.events.select("video", "start_frame", "end_frame", "start_s").rows() == [("a", 1, 4, 0.1)]


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_scores_are_an_error_naming_the_model_file_never_rows(bad):
    from vadctl.errors import ModelFileError

    cal = calibration(np.array([0.0, 1.0, 2.0, 1.0]))
    scores = [VideoScores("a", np.array([0.0, 1.0, bad, 2.0]))]
    with pytest.raises(
        ModelFileError, match=r"m\.safetensors: 1 of 4 frame scores of video a are not finite \(score\)"
    ):
        frames_table(scores, cal, "toy", model_file="m.safetensors")
    tiny = dataclasses.replace(cal, std=1e-320, rule="sigma:3")
    with pytest.raises(ModelFileError, match="score_norm"):  # finite scores, a σ that overflows them
        frames_table([VideoScores("a", np.array([0.0, 1.0, 3.0]))], tiny, "toy", model_file="m.safetensors")
