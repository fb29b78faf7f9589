"""`vadctl run` on a real archive: incremental scoring exactly once, killed runs, concurrent runs,
the results dataset as DuckDB, polars and pyarrow read it, the log, failures and dry runs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest
from edits import raw_video, zero_frames_in_place
from nightly import camera_video, copy_archive, frame_counts, vadctl_run
from typer.testing import CliRunner
from videos import Square

from vadctl import api, defaults
from vadctl.cli import app
from vadctl.common import faults
from vadctl.nightly.results import ResultsDataset

FAULT_POINTS = [
    "run.extracted",
    "score.staged",
    "score.prepared",
    "score.regions_published",
    "score.events_published",
    "score.frames_published",
    "score.ledger_appended",
    "score.frames_published@2",  # the second unit, after the first one is committed
]
VOLATILE = ["run_id", "scored_at", "date"]
runner = CliRunner()


@pytest.fixture
def job(nightly_archive: Path, tmp_path: Path) -> Path:
    return copy_archive(nightly_archive, tmp_path / "site")


def dataset_tables(results: Path) -> dict[str, pl.DataFrame]:
    """Every kind of the results dataset without run ids and times, sorted: for comparing runs."""
    tables = {}
    for kind, key in (("frames", ["video", "frame"]), ("regions", ["video", "frame", "x1", "y1"])):
        table = pl.read_parquet(str(results / kind / "**" / "*.parquet"), hive_partitioning=True)
        tables[kind] = table.drop(VOLATILE).sort(key)
    events = pl.read_parquet(str(results / "events" / "**" / "*.parquet"), hive_partitioning=True)
    tables["events"] = events.drop(VOLATILE).sort("video", "start_frame")
    return tables


@pytest.fixture(scope="module")
def reference(nightly_archive: Path, tmp_path_factory) -> dict[str, pl.DataFrame]:
    """The dataset an uninterrupted run writes."""
    job = copy_archive(nightly_archive, tmp_path_factory.mktemp("reference") / "site")
    assert api.run(job).exit_code == 0
    return dataset_tables(job.parent / "results")


def test_first_run_scores_videos_extracted_before_it_then_only_new_ones(job: Path):
    (job.parent / "cam2").mkdir()  # a camera with no videos yet is no error
    job.write_text(job.read_text() + '[[sources]]\nroot = "cam2"\n')
    first = api.run(job)
    assert first.notes == [f"sources[2] {job.parent / 'cam2'}: no videos yet"]
    assert first.exit_code == 0 and first.sources[0].extracted == 0  # the archive was extracted before
    assert sorted(first.models[0].scored) == ["test/c0", "test/c1", "test/c2", "test/c3"]
    assert len(first.models[0].units) == 2  # part_videos = 2
    camera_video(job.parent / "cam1" / "c9.avi", seed=99)
    second = api.run(job)
    assert second.sources[0].extracted == 1
    assert second.models[0].scored == ["test/c9"] and second.models[0].up_to_date == 4
    third = runner.invoke(app, ["run", str(job)])  # as a person reads it
    assert third.exit_code == 0, third.output
    assert "already scored" in third.stdout and "│ aivad │      0 │              5 │" in third.stdout
    assert frame_counts(job.parent / "results") == (5 * 40, 5 * 40)


def test_a_new_model_file_and_a_changed_video_are_scored_again_into_new_rows(job: Path):
    results = job.parent / "results"
    api.run(job)
    before = pl.read_parquet(str(results / "frames" / "**" / "*.parquet"), hive_partitioning=True)
    api.fit("aivad", job.parent / "archive.zarr", job.parent / "models" / "aivad.safetensors", {"n_velocity_bins": 8})
    refit = api.run(job)
    assert len(refit.models[0].scored) == 4 and refit.models[0].up_to_date == 0
    assert frame_counts(results) == (8 * 40, 8 * 40)
    camera_video(job.parent / "cam1" / "c1.avi", seed=77)  # new content under the same name
    changed = api.run(job)
    assert changed.sources[0].extracted == 1 and changed.models[0].scored == ["test/c1"]
    frames = pl.read_parquet(str(results / "frames" / "**" / "*.parquet"), hive_partitioning=True)
    assert frame_counts(results) == (9 * 40, 9 * 40)
    c1 = frames.filter(pl.col("video") == "c1")
    assert c1["video_fingerprint"].n_unique() == 2 and c1["model_sha256"].n_unique() == 2
    kept = frames.join(before, on=["video", "frame", "model_sha256", "video_fingerprint", "run_id"], how="semi")
    assert len(kept) == len(before)  # older rows stay as they were


def test_verify_sources_in_the_job_finds_a_same_size_edit_then_extracts_and_scores_it_again(job: Path):
    """200 KB zeroed in the middle of a video, size and mtime kept: the sampled fingerprint reads it
    as unchanged; `verify_sources = true` re-hashes every source, and the run redoes and rescores it."""
    results = job.parent / "results"
    raw_video(job.parent / "cam1" / "c9.avi", seed=5, squares=[Square(-40.0, 30.0, 9.0, 0.0)])
    assert api.run(job).models[0].scored == ["test/c0", "test/c1", "test/c2", "test/c3", "test/c9"]
    zero_frames_in_place(job.parent / "cam1" / "c9.avi", seed=5, squares=[Square(-40.0, 30.0, 9.0, 0.0)])
    missed = api.run(job)
    assert missed.sources[0].extracted == 0 and missed.models[0].scored == []  # the fast default
    job.write_text("verify_sources = true\n" + job.read_text())
    found = api.run(job)
    assert found.sources[0].extracted == 1 and found.models[0].scored == ["test/c9"]
    assert any("c9" in note and "changed since extraction" in note for note in found.notes), found.notes
    frames = pl.read_parquet(str(results / "frames" / "**" / "*.parquet"), hive_partitioning=True)
    assert frames.filter(pl.col("video") == "c9")["video_fingerprint"].n_unique() == 2
    assert api.run(job).models[0].scored == []  # verified again: nothing changed since


def test_results_read_with_polars_duckdb_and_pyarrow(job: Path):
    api.run(job)
    results = job.parent / "results"
    frames = pl.scan_parquet(results / "frames", hive_partitioning=True).collect()
    assert frames.columns[:12] == [
        "video",
        "frame",
        "time_s",
        "score",
        "score_norm",
        "is_anomaly",
        "threshold",
        "model_sha256",
        "video_fingerprint",
        "run_id",
        "scored_at",
        "split",
    ]
    assert {"model", "date"} <= set(frames.columns) and frames["model"].unique().to_list() == ["aivad"]
    assert frames.schema["scored_at"] == pl.Datetime("us", "UTC") and frames.schema["date"] == pl.Date
    assert frames.filter(pl.col("frame") == 10)["time_s"].to_list() == [1.0] * 4  # 10 fps
    glob = str(results / "frames" / "**" / "*.parquet")
    by_duckdb = duckdb.sql(
        f"select model, count(*) as n, max(scored_at) as at from read_parquet('{glob}', hive_partitioning=true) "
        "group by model"
    ).fetchall()
    assert by_duckdb[0][:2] == ("aivad", 160) and by_duckdb[0][2].tzinfo is not None
    table = ds.dataset(results / "regions", format="parquet", partitioning="hive").to_table().to_pandas()
    assert {"video", "frame", "x1", "y1", "x2", "y2", "score", "model_sha256", "run_id", "model", "date"} <= set(
        table.columns
    )
    events = ds.dataset(results / "events", format="parquet", partitioning="hive").to_table().to_pandas()
    assert set(events["video"]) == {"c1", "c2", "c3"}  # the three videos with a fast square
    assert {"start_frame", "end_frame", "start_s", "end_s", "peak_score", "peak_frame", "x1", "y2"} <= set(
        events.columns
    )
    part = next((results / "frames").rglob("*.parquet"))
    meta = pl.read_parquet_metadata(part)
    assert meta["vadctl.split"] == "test" and meta["vadctl.threshold_rule"] == defaults.THRESHOLD_RULE
    assert json.loads(meta["vadctl.features"])["velocity"].startswith("velocity@")
    assert meta["vadctl.store"] == str(job.parent / "archive.zarr") and "vadctl.version" in meta


@pytest.fixture(scope="module")
def killed_runs(nightly_archive: Path, tmp_path_factory) -> dict[str, tuple[Path, subprocess.Popen]]:
    """A `vadctl run` process per fault point, each on its own copy of the archive, all started at
    once (they are independent; the tests below wait for each in turn)."""
    runs = {}
    for i, point in enumerate(FAULT_POINTS):
        job = copy_archive(nightly_archive, tmp_path_factory.mktemp(f"killed{i}") / "site")
        command = [sys.executable, "-m", "vadctl", "run", str(job), "--json"]
        env = {**os.environ, faults.ENV: point, "OMP_NUM_THREADS": "1"}
        runs[point] = job, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    yield runs
    for _, proc in runs.values():
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_killed_at_every_commit_point_then_rerun_scores_everything_exactly_once(killed_runs, reference, point: str):
    job, proc = killed_runs[point]
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == faults.EXIT_CODE, stderr
    assert f"injected fault at {point.split('@')[0]}" in stderr
    rerun = api.run(job)
    assert rerun.exit_code == 0
    results = job.parent / "results"
    rows, distinct = frame_counts(results)
    assert rows == distinct == 4 * 40  # no duplicates, no gaps
    got = dataset_tables(results)
    for kind, expected in reference.items():
        assert got[kind].equals(expected), kind
    assert not any(ResultsDataset(results).staging.iterdir())
    assert api.run(job).models[0].scored == []


def test_a_second_run_exits_at_once_and_concurrent_waiting_runs_score_each_video_once(job: Path):
    camera_video(job.parent / "cam1" / "n0.avi", seed=50)
    results = ResultsDataset(job.parent / "results")
    command = [sys.executable, "-m", "vadctl", "run", str(job), "--json"]
    with results.writer(who={"job": "the test"}):  # a run in progress
        busy = vadctl_run(job)
        assert busy.returncode == 2 and "another `vadctl run` is writing these results" in busy.stderr
        assert "the test" in busy.stderr and busy.stderr.count("\n") == 1
        waiting = [
            subprocess.Popen([*command, "--wait", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in "ab"
        ]
        time.sleep(1.0)
        assert [p.poll() for p in waiting] == [None, None]  # both wait for the lock
    outputs = [p.communicate(timeout=300) for p in waiting]
    assert [p.returncode for p in waiting] == [0, 0], [e for _, e in outputs]
    reports = [json.loads(o) for o, _ in outputs]
    assert sorted(r["sources"][0]["extracted"] for r in reports) == [0, 1]
    assert sorted(r["models"][0]["scored"] for r in reports) == [0, 5]  # one did the work, the other found none
    assert frame_counts(job.parent / "results") == (5 * 40, 5 * 40)


def test_failed_videos_are_listed_with_exit_code_1_and_the_rest_is_scored(job: Path):
    (job.parent / "cam1" / "broken.avi").write_bytes(b"RIFF not a video at all" * 50)
    run = vadctl_run(job)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert [(f["stage"], f["video"]) for f in report["failed"]] == [("extract", "broken")]
    assert report["models"][0]["scored"] == 4
    lines = [json.loads(line) for line in (job.parent / "vadctl.log").read_text().splitlines()]
    assert all({"ts", "level", "event", "run_id", "job"} <= set(line) for line in lines)
    assert [line["event"] for line in lines if line["event"].startswith("run_")] == ["run_started", "run_finished"]
    assert any(
        line["event"] == "video_failed" and line["video"] == "broken" and line["level"] == "error" for line in lines
    )
    scored = [line for line in lines if line["event"] == "video_scored"]
    assert len(scored) == 4 and all(line["seconds"] >= 0 for line in scored)
    assert api.run(job).exit_code == 1  # still failing, still listed; nothing scored twice
    assert frame_counts(job.parent / "results") == (160, 160)


def test_dry_run_says_what_would_happen_and_changes_nothing(job: Path):
    camera_video(job.parent / "cam1" / "new.avi", seed=60)
    store_before = sorted(p.name for p in (job.parent / "archive.zarr" / "videos" / "test").iterdir())
    plan = api.run(job, dry_run=True)
    assert plan.dry_run and plan.sources[0].to_extract == ["new"]
    assert sorted(plan.models[0].planned) == ["test/c0", "test/c1", "test/c2", "test/c3", "test/new"]
    assert not (job.parent / "results").exists() and not (job.parent / "vadctl.log").exists()
    assert sorted(p.name for p in (job.parent / "archive.zarr" / "videos" / "test").iterdir()) == store_before
    api.run(job)
    again = runner.invoke(app, ["run", str(job), "--dry-run"])
    assert again.exit_code == 0, again.output
    assert "0 of 5 video(s) to extract" in again.stdout and "0 video(s) to score, 5 already scored" in again.stdout


def test_events_as_table_json_and_thumbnails(job: Path, tmp_path: Path):
    import cv2

    api.run(job)
    results = job.parent / "results"
    listed = subprocess.run(
        [sys.executable, "-m", "vadctl", "events", str(results), "--json", "--since", "1d", "--thumbs", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    events = json.loads(listed.stdout)
    assert {e["video"] for e in events} == {"c1", "c2", "c3"}
    for event in events:
        assert event["model"] == "aivad" and event["start_frame"] <= event["peak_frame"] <= event["end_frame"]
        image = cv2.imread(event["thumbnail"])
        assert image.shape == (64, 96, 3)  # the source video's size: boxes are in its pixels
    table = runner.invoke(app, ["events", str(results)])
    assert table.exit_code == 0 and "c2" in table.stdout and "aivad" in table.stdout
    future = runner.invoke(app, ["events", str(results), "--since", "2999-01-01"])
    assert future.exit_code == 0 and "no events" in future.stdout
    bad = runner.invoke(app, ["events", str(results), "--since", "last tuesday"])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "--since 'last tuesday'" in bad.stderr
