"""The built-in demo end to end (short videos), as a user runs it."""

import json

import polars as pl
from typer.testing import CliRunner

from vadctl.cli import app
from vadctl.store import FeatureStore


def test_demo_runs_end_to_end_and_reruns_without_extracting(tmp_path):
    folder, store = tmp_path / "demo", tmp_path / "default.zarr"
    args = ["demo", "--folder", str(folder), "--store", str(store), "--frames", "60", "-q"]
    first = CliRunner().invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "extract train: 8 extracted" in first.output and "02 fast" in first.output
    kinds = json.loads((folder / "kinds.json").read_text())
    assert sorted(kinds.values()) == ["against", "fast", "loiter", "normal"]
    labels = pl.read_csv(folder / "labels.csv", schema_overrides={"video": pl.String})
    assert labels.filter(pl.col("video") == "01")["label"].sum() == 0  # the normal test video
    for model in ("aivad", "fuvas", "plovad"):
        scores = pl.read_parquet(folder / "scores" / f"{model}.parquet")
        assert len(scores) == 4 * 60
        assert (folder / "plots" / model / "roc.png").exists()
    weak = pl.read_csv(folder / "video_labels.csv", schema_overrides={"video": pl.String})
    assert sorted(weak.filter(pl.col("label") == 1)["class"].unique()) == ["against", "fast", "loiter"]
    assert (folder / "plots" / "plovad" / "confusion_classes.png").exists()
    assert len(FeatureStore(store).videos("test")) == 4
    rows = [line.split("│") for line in first.output.splitlines() if line.startswith("│ ")]
    micro = [float(cells[2]) for cells in rows[:3]]  # the AUROC table; the whole-video table follows
    assert len(rows) == 6 and min(micro) > 0.6, first.output  # better than chance even on short videos
    assert "whole test videos" in first.output
    again = CliRunner().invoke(app, args, catch_exceptions=False)
    assert "extract train: 0 extracted, 8 up to date" in again.output
