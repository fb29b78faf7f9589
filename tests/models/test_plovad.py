"""plovad: weak supervision from video labels, classes, heatmap boxes, resume, ONNX, open vocabulary."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner
from weak_stores import CLIP_TEST_VIDEOS, PLOVAD_PARAMS, fitted_plovad, with_clip

from vadctl import api
from vadctl.cli import app
from vadctl.errors import UsageError
from vadctl.models.files import load_model
from vadctl.scoring.onnx import export_onnx
from vadctl.scoring.score import score_tables
from vadctl.store import FeatureStore
from vadctl.video.labels import read_video_labels

runner = CliRunner()


@pytest.fixture(scope="module")
def plovad(tmp_path_factory):
    return fitted_plovad(tmp_path_factory)


@pytest.fixture(scope="module")
def scored(plovad):
    out = plovad["root"] / "scores" / "plovad.parquet"
    api.score(plovad["path"], plovad["store"], "test", out)
    return out


def test_video_labels_are_validated_with_one_line_errors(tmp_path):
    cases = {
        "video,label\na,0\nb,2\n": "line 3: label of video b must be 0 or 1",
        "video,label\na,0\nb,0\n": "every video is labelled normal (0)",
        "video,label,class\na,0,\nb,1,bike\nc,1,\n": "line 4: anomalous video c has no class",
        "video,label,class\na,0,bike\nb,1,bike\n": "video a is labelled normal (0) but has class 'bike'",
        "video,label\na,0\na,1\n": "video a is labelled twice",
        "name,label\na,0\n": "expected video,label or video,label,class",
        "": "empty",
    }
    for text, message in cases.items():
        path = tmp_path / "labels.csv"
        path.write_text(text)
        with pytest.raises(UsageError, match=re.escape(message)) as caught:
            read_video_labels(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    path.write_text("video,label,class\na,0,\nb,1,bike\nc,1,cart\n")
    labels = read_video_labels(path)
    assert labels.class_names == ["bike", "cart"] and labels.normal() == ["a"]
    with pytest.raises(UsageError, match="unknown video id"):
        labels.check_videos(["a", "b"], "split 'weak'")


def test_fit_cli_refuses_bad_labels_and_missing_labels(plovad, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("video,label\nn0,0\nghost,1\n")
    common = ["fit", "-m", "plovad", "--store", str(plovad["store"]), "--split", "weak", "-o", str(tmp_path / "m")]
    result = runner.invoke(app, [*common, "--video-labels", str(bad), "-p", "steps=1"])
    assert result.exit_code == 2 and "unknown video id(s) ghost" in result.output and str(bad) in result.output
    missing = runner.invoke(app, [*common, "-p", "steps=1"])
    assert missing.exit_code == 2 and "pass --video-labels FILE" in missing.output
    other = runner.invoke(
        app,
        [
            "fit",
            "-m",
            "fuvas",
            "--store",
            str(plovad["store"]),
            "--split",
            "weak",
            "-o",
            str(tmp_path / "f"),
            "--video-labels",
            str(plovad["video_labels"]),
        ],
    )
    assert other.exit_code == 2 and "does not learn from video-level labels" in other.output
    assert not (tmp_path / "m").exists()


def test_detects_names_and_localizes_held_out_anomalies(plovad, scored):
    header = load_model(plovad["path"]).header
    calibration = header["calibration"]
    assert calibration["method"] == "holdout" and all(v.startswith("n") for v in calibration["videos"])
    assert not set(calibration["videos"]) & set(header["provenance"]["fit_videos"])  # never trained on
    metrics = api.evaluate(scored, plovad["labels"], plots=plovad["root"] / "plots")
    assert metrics["micro_auroc"] > 0.85, metrics["micro_auroc"]
    assert metrics["video_accuracy"] >= 5 / 6, metrics["video_confusion"]
    assert metrics["class_confusion"]["labels"] == ["normal", "fast", "zone"]
    assert metrics["class_accuracy_anomalous"] == 1.0, metrics["class_confusion"]
    names = {p.rsplit("/", 1)[-1] for p in metrics["plots"]}
    assert {"confusion_videos.png", "confusion_classes.png", "heatmap_histogram.png", "heatmap_violin.png"} <= names
    saved = json.loads((plovad["root"] / "plots" / "confusion.json").read_text())
    assert saved["classes"]["matrix"] == metrics["class_confusion"]["matrix"]
    frames = pl.read_parquet(scored)
    assert {"anomaly_prob", "heatmap_peak", "class", "video_class", "video_class_prob"} <= set(frames.columns)
    videos = pl.read_parquet(api.beside(scored, "videos"))
    probs = videos["class_probs"].struct.unnest()
    np.testing.assert_allclose(probs.sum_horizontal().to_numpy(), 1.0, atol=1e-6)
    events = pl.read_parquet(api.beside(scored, "events"))
    assert {"start_frame", "end_frame", "peak_frame", "class", "class_prob", "class_probs"} <= set(events.columns)
    assert set(events["video"]) <= set(videos.filter(pl.col("flagged_frames") > 0)["video"])
    # heatmap boxes of the top-band anomaly sit in the top band nobody walks in
    regions = pl.read_parquet(api.regions_path(scored))
    zone = regions.filter(pl.col("video").str.starts_with("tz"))
    assert len(zone) and (zone["y1"] < 24).mean() > 0.5, zone


def test_resumed_training_equals_an_uninterrupted_run(plovad, tmp_path):
    store = plovad["store"]
    params = {**PLOVAD_PARAMS, "steps": 12}
    whole = api.fit(
        "plovad", store, tmp_path / "whole.safetensors", params, split="weak", video_labels=plovad["video_labels"]
    )
    part = tmp_path / "part.safetensors"
    with pytest.raises(KeyboardInterrupt):
        api.fit(
            "plovad",
            store,
            part,
            params,
            split="weak",
            video_labels=plovad["video_labels"],
            checkpoint_every=5,
            progress=_interrupt_at(6),
        )
    resumed = api.fit("plovad", store, part, params, split="weak", video_labels=plovad["video_labels"], resume=True)
    a, b = load_model(whole).model, load_model(resumed).model
    for (name, x), (_, y) in zip(a.net_.state_dict().items(), b.net_.state_dict().items(), strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6, err_msg=name)


def _interrupt_at(step: int):
    def progress(event, **fields):
        if event == "train_step" and fields["step"] == step:
            raise KeyboardInterrupt

    return progress


def test_onnx_export_parity_dynamic_snippets_and_scores(plovad, tmp_path):
    loaded = load_model(plovad["path"])
    report = export_onnx(loaded.model, tmp_path / "plovad.onnx")
    assert report.max_abs_diff <= 1e-4 * max(1.0, report.output_scale)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["detection", "class_logits", "heatmap"]
    store = FeatureStore(plovad["store"], read_only=True)
    torch_tables = score_tables(load_model(plovad["path"]), store, "test")
    onnx_tables = score_tables(load_model(plovad["path"]), store, "test", backend="onnx", onnx_path=report.path)
    np.testing.assert_allclose(onnx_tables.frames["score"], torch_tables.frames["score"], atol=1e-4)
    assert onnx_tables.videos["class"].to_list() == torch_tables.videos["class"].to_list()


def test_open_vocabulary_with_a_tiny_clip_through_the_real_loader(tmp_path_factory, tmp_path):
    from tiny_models import tiny_clip_weights

    weights = tiny_clip_weights(tmp_path_factory.mktemp("clipw"))
    info = with_clip(tmp_path_factory, weights)
    path = tmp_path / "clip.safetensors"
    params = {**PLOVAD_PARAMS, "steps": 30, "appearance_feature": "clip", "clip_weights": str(weights)}
    api.fit("plovad", info["store"], path, params, split="weak", video_labels=info["video_labels"])
    model = load_model(path).model
    assert model.open_vocabulary_ and model.features_["appearance"].name == "clip"
    out = tmp_path / "s.parquet"
    classes = "juggling, parade,queue"
    api.score(path, info["store"], "test", out, videos=CLIP_TEST_VIDEOS, classes=classes, weights={"clip": weights})
    videos = pl.read_parquet(api.beside(out, "videos"))
    assert set(videos["class"]) <= {"juggling", "parade", "queue"}
    assert videos["class_probs"].struct.fields == ["juggling", "parade", "queue"]
    result = runner.invoke(
        app,
        [
            "score",
            "-m",
            str(path),
            "--store",
            str(info["store"]),
            "-o",
            str(out),
            "--videos",
            ",".join(CLIP_TEST_VIDEOS),
            "--classes",
            "juggling",
            "--weights",
            f"clip={tmp_path / 'none.safetensors'}",
        ],
    )
    assert result.exit_code == 2 and "none.safetensors" in result.output


def test_classes_refused_without_open_vocabulary(plovad, tmp_path):
    result = runner.invoke(
        app,
        [
            "score",
            "-m",
            str(plovad["path"]),
            "--store",
            str(plovad["store"]),
            "-o",
            str(tmp_path / "s.parquet"),
            "--classes",
            "juggling",
        ],
    )
    assert result.exit_code == 2 and "names its training classes only (fast, zone)" in result.output
