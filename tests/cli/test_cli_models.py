"""fit → score → eval through the command line, and what consumers read back."""

import io
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from vadctl import defaults
from vadctl.cli import app

runner = CliRunner()


def vadctl(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def scored(model_store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("cli")
    store = model_store["store"]
    fit = vadctl("fit", "--model", "aivad", "--store", store, "--out", out / "m.safetensors", "-p", "n_folds=3")
    assert fit.exit_code == 0, fit.output
    score = vadctl(
        "score", "--model", out / "m.safetensors", "--store", store, "--split", "fast", "--out", out / "scores.parquet"
    )
    assert score.exit_code == 0, score.output
    return {"out": out, "fit": fit.output, "score": score.output, **model_store}


def test_fit_reports_features_threshold_and_file(scored):
    assert "velocity=velocity@" in scored["fit"] and "threshold robust:3" in scored["fit"]
    assert "crossfit on 6 video(s)" in scored["fit"]


def test_scores_read_back_in_polars_pandas_and_duckdb(scored):
    path = scored["out"] / "scores.parquet"
    frames = pl.read_parquet(path)
    assert frames.columns == [
        "video",
        "frame",
        "time_s",
        "score",
        "score_norm",
        "is_anomaly",
        "threshold",
        "model",
        "model_sha256",
        "video_fingerprint",
        "run_id",
        "scored_at",
        "split",
    ]
    assert len(frames) == 3 * 40 and frames["frame"].min() == 0
    assert frames.schema["scored_at"] == pl.Datetime("us", "UTC") and frames["run_id"].n_unique() == 1
    assert frames["video_fingerprint"].n_unique() == 3 and frames["split"].unique().to_list() == ["fast"]
    meta = pl.read_parquet_metadata(path)
    assert meta["vadctl.store"] == str(Path(scored["store"]).resolve()) and meta["vadctl.split"] == "fast"
    assert meta["vadctl.threshold_rule"] == defaults.THRESHOLD_RULE and "velocity" in json.loads(
        meta["vadctl.features"]
    )
    assert meta["vadctl.model_sha256"] == frames["model_sha256"][0] and meta["vadctl.version"]
    assert pd.read_parquet(path).shape == frames.shape
    con = duckdb.connect()
    per_video = con.execute(f"select video, count(*) from '{path}' group by video order by video").fetchall()
    assert per_video == [("f0", 40), ("f1", 40), ("f2", 40)]
    regions = pl.read_parquet(scored["out"] / "scores.regions.parquet")
    assert regions.columns[:8] == ["video", "frame", "x1", "y1", "x2", "y2", "score", "model"] and len(regions) > 0
    assert {"model_sha256", "video_fingerprint", "run_id", "scored_at"} <= set(regions.columns)


def test_reports_as_json_and_dash_as_stdout(scored):
    out, store = scored["out"], scored["store"]
    model = out / "m.safetensors"
    score = vadctl("score", "-m", model, "-s", store, "--split", "fast", "-o", out / "s2.parquet", "--json")
    assert score.exit_code == 0, score.output
    summary = json.loads(score.stdout)
    assert (summary["videos"], summary["frames"], summary["model_kind"]) == (3, 120, "aivad")
    piped = vadctl("score", "-m", model, "-s", store, "--split", "fast", "-o", "-", "-q")
    assert piped.exit_code == 0 and piped.stdout_bytes.startswith(b"PAR1")
    assert pl.read_parquet(io.BytesIO(piped.stdout_bytes)).height == 120 and "scored 3 video(s)" in piped.stderr
    metrics = vadctl(
        "eval", "--scores", out / "scores.parquet", "--labels", scored["labels"], "--partial", "--json", "-"
    )
    assert metrics.exit_code == 0 and json.loads(metrics.stdout)["frames"] == 120
    info = json.loads(vadctl("store", "info", store, "--json", "--videos").stdout)
    assert {s["split"] for s in info["splits"]} == {"train", "fast", "zone", "same"} and len(info["videos"]) == 15
    assert json.loads(vadctl("models", "--json").stdout)[0]["model"] == "aivad"
    assert "n_velocity_bins" in json.loads(vadctl("models", "aivad", "--json").stdout)["params"]
    described = json.loads(vadctl("models", "--file", model, "--json").stdout)
    assert described["model"] == "aivad" and described["sha256"] == summary["model_sha256"]
    assert json.loads(vadctl("weights", "--json", "--no-verify").stdout)["features"]


def test_events_of_a_scores_file_with_thumbnails(scored):
    out = scored["out"]
    listed = vadctl("events", out / "scores.parquet", "--json", "--min-len", "2", "--thumbs", out / "thumbs")
    assert listed.exit_code == 0, listed.output
    events = json.loads(listed.stdout)
    assert {e["video"] for e in events} == {"f0", "f1", "f2"}  # each holds a fast square
    assert all(Path(e["thumbnail"]).stat().st_size > 0 and e["split"] == "fast" for e in events)
    refused = vadctl("events", out, "--min-len", "2")  # a folder is a results dataset: its events are fixed
    assert refused.exit_code == 2 and "apply to a scores file" in refused.stderr


def test_eval_prints_metrics_and_writes_json_and_plots(scored):
    out = scored["out"]
    result = vadctl(
        "eval",
        "--scores",
        out / "scores.parquet",
        "--labels",
        scored["labels"],
        "--json",
        out / "metrics.json",
        "--plots",
        out / "plots",
        "--partial",
    )
    assert result.exit_code == 0, result.output
    assert "micro AUROC" in result.output and "per video" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["micro_auroc"] >= 0.9 and metrics["frames"] == 120
    assert (out / "plots" / "roc.png").stat().st_size > 1000
    assert sorted(p.name for p in (out / "plots").glob("timeline_*.png")) == [
        "timeline_f0.png",
        "timeline_f1.png",
        "timeline_f2.png",
    ]


def test_eval_refuses_misaligned_labels_without_partial(scored):
    result = vadctl("eval", "--scores", scored["out"] / "scores.parquet", "--labels", scored["labels"])
    assert result.exit_code == 2
    assert "labelled but not scored" in result.output and "--partial" in result.output


def test_models_lists_and_describes(scored):
    listing = vadctl("models")
    assert "aivad" in listing.output and "fuvas" in listing.output
    detail = vadctl("models", "aivad")
    assert "n_components_velocity" in detail.output and "n_neighbors_deep" in detail.output
    described = vadctl("models", "--file", scored["out"] / "m.safetensors")
    assert "velocity@" in described.output and "crossfit" in described.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--model", "nope"], "unknown model 'nope'"),
        (["fit", "--model", "aivad", "-p", "k"], "expected KEY=VALUE"),
        (["fit", "--model", "aivad", "-p", "bins=2"], "unknown parameter(s) bins"),
        (["fit", "--model", "aivad", "--threshold", "max"], "threshold 'max'"),
        (["score", "--model", "missing.safetensors"], "no such model file"),
        (["eval", "--scores", "missing.parquet", "--labels", "x.csv"], "no such scores file"),
    ],
)
def test_bad_input_gives_one_line_errors(scored, args, message):
    result = vadctl(*args, *(["--store", scored["store"]] if args[0] in ("fit", "score") else []))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_score_with_a_foreign_model_file(scored, tmp_path: Path):
    fake = tmp_path / "m.safetensors"
    fake.write_text("hello")
    result = vadctl("score", "--model", fake, "--store", scored["store"], "--split", "fast")
    assert result.exit_code == 2 and "not a vadctl model file" in result.output


def test_cli_scores_are_the_library_scores_and_flags_follow_the_stored_threshold(scored):
    """What `vadctl score` wrote equals `score_model` on the same file and store, and every flag is
    score > μ + 3σ of the calibration the model file holds (read here, not recomputed by vadctl)."""
    from vadctl.models.files import load_model, read_header
    from vadctl.scoring.score import score_model
    from vadctl.store import FeatureStore

    written = pl.read_parquet(scored["out"] / "scores.parquet").sort("video", "frame")
    loaded = load_model(scored["out"] / "m.safetensors")
    direct, _ = score_model(loaded, FeatureStore(scored["store"], read_only=True), "fast")
    direct = direct.sort("video", "frame")
    assert written.select("video", "frame").equals(direct.select("video", "frame"))
    np.testing.assert_allclose(written["score"].to_numpy(), direct["score"].to_numpy(), rtol=1e-12)
    calibration = read_header(scored["out"] / "m.safetensors")["calibration"]
    assert calibration["rule"] == "robust:3"  # median + 3·σ̂, both stored in the file
    threshold = calibration["median"] + 3 * calibration["robust_std"]
    assert written["threshold"].unique().to_list() == [pytest.approx(threshold)]
    np.testing.assert_array_equal(written["is_anomaly"].to_numpy(), written["score"].to_numpy() > threshold)
    np.testing.assert_allclose(
        written["score_norm"].to_numpy(),
        (written["score"].to_numpy() - calibration["median"]) / calibration["robust_std"],
    )
    assert 0 < written["is_anomaly"].sum() < len(written)  # the flags are not all one way


def test_eval_json_equals_sklearn_on_the_written_files(scored, tmp_path: Path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    result = vadctl(
        "eval", "--scores", scored["out"] / "scores.parquet", "--labels", scored["labels"], "--json",
        tmp_path / "m.json", "--partial",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    joined = pl.read_parquet(scored["out"] / "scores.parquet").join(
        pl.read_csv(scored["labels"], schema_overrides={"video": pl.String}), on=["video", "frame"]
    )
    y, s = joined["label"].to_numpy(), joined["score"].to_numpy()
    assert metrics["frames"] == len(joined)
    assert metrics["micro_auroc"] == pytest.approx(roc_auc_score(y, s))
    assert metrics["ap"] == pytest.approx(average_precision_score(y, s))
    flagged = joined["is_anomaly"].to_numpy()
    assert metrics["confusion"]["tp"] == int((flagged & (y == 1)).sum())
    assert metrics["confusion"]["fp"] == int((flagged & (y == 0)).sum())
    assert f"{metrics['micro_auroc']:.4f}" in result.output  # the printed figure is the computed one
