"""The built-in demo end to end, as a user runs it: it must flag its anomalies at each model's threshold."""

import json

import polars as pl
import pytest

from vadctl.store import FeatureStore


@pytest.mark.timeout(900)  # waits for the demo's two runs (tests/demo_run.py): minutes on a loaded machine
def test_demo_runs_end_to_end_and_reruns_without_extracting(demo):
    folder, store = demo.folder, demo.store  # the default 120-frame videos, `vadctl demo` as a process
    output = demo.output
    assert "extract train: 8 extracted" in output and "fast" in output
    # the weak split's normal videos are train/'s: copied from split train, not extracted again
    assert "extract weak: 6 extracted, 8 up to date" in output
    assert "8 copied from split train" in " ".join(output.split())  # however rich wraps it
    kinds = json.loads((folder / "kinds.json").read_text())
    assert sorted(kinds.values()) == ["against", "fast", "loiter", "normal"]
    labels = pl.read_csv(folder / "labels.csv", schema_overrides={"video": pl.String})
    assert labels.filter(pl.col("video") == "01")["label"].sum() == 0  # the normal test video
    for model in ("aivad", "fuvas", "plovad"):
        scores = pl.read_parquet(folder / "scores" / f"{model}.parquet")
        assert len(scores) == 4 * 120
        assert (folder / "plots" / model / "roc.png").exists()
        if model == "plovad":
            continue  # judged per video (its MIL head), below
        joined = scores.join(labels, on=["video", "frame"])
        flagged = joined.group_by("label").agg(pl.col("is_anomaly").mean()).sort("label")["is_anomaly"].to_list()
        false_positive_rate, recall = flagged
        assert recall >= 0.5 and false_positive_rate <= 0.05, (model, recall, false_positive_rate)
    weak = pl.read_csv(folder / "video_labels.csv", schema_overrides={"video": pl.String})
    assert sorted(weak.filter(pl.col("label") == 1)["class"].unique()) == ["against", "fast", "loiter"]
    assert (folder / "plots" / "plovad" / "confusion_classes.png").exists()
    assert len(FeatureStore(store).videos("test")) == 4
    rows = [line.split("│") for line in output.splitlines() if line.startswith("│ ")]
    micro = {cells[1].strip(): float(cells[2]) for cells in rows[:3]}  # the AUROC table; the threshold table follows
    assert len(rows) == 6 and sorted(micro) == ["aivad", "fuvas", "plovad"], output
    assert micro["aivad"] > 0.9 and micro["fuvas"] > 0.9, output
    assert micro["plovad"] > 0.6, output  # better than chance even on short videos
    assert "at each model's threshold" in output
    events = sum(len(pl.read_parquet(p)) for p in (folder / "scores").glob("*.events.parquet"))
    page = folder / "review" / "index.html"
    assert events > 0 and page.is_file()
    assert f"reviewpage:{page}({events}event(s)" in "".join(output.split())  # however rich wraps it
    again = demo.rerun_output  # the same command again, on the same folder and store
    assert "extract train: 0 extracted, 8 up to date" in again
    assert "extract weak: 0 extracted, 14 up to date" in again and "copied" not in again
