import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from videos import container_video, cut_in_half, make_video

from vadctl.cli import app
from vadctl.store import FeatureStore, VideoRecord

runner = CliRunner()


def vadctl(*args: str):
    return runner.invoke(app, [*map(str, args)], catch_exceptions=False)


def extract(root: Path, store: Path, *extra: str):
    return vadctl("extract", root, "--store", store, "-q", *extra)


def entry_data(store: Path, split: str, video: str, feature: str) -> dict[str, np.ndarray]:
    fs = FeatureStore(store, read_only=True)
    entry = fs.entry(fs.video(split, video), fs.resolve(feature, split))
    data = {name: entry[name] for name in entry.array_names}
    if entry.offsets is not None:
        data["offsets"] = entry.offsets
    return data


def test_extract_all_default_features_then_rerun_is_a_no_op(video_dir: Path, store_path: Path):
    first = extract(video_dir, store_path)
    assert first.exit_code == 0, first.output
    fs = FeatureStore(store_path, read_only=True)
    records = fs.videos("train")
    assert [r.video_id for r in records] == ["a", "b", "cam/c"]
    assert [r.n_frames for r in records] == [24, 20, 28]
    names = sorted({s["name"] for r in records for s in r.features.values()})
    assert names == ["flow", "frames", "hog_regions", "motion", "regions", "velocity"]  # what the default models read
    assert all(len(r.features) == 6 and r.status == "ok" for r in records)
    regions = entry_data(store_path, "train", "a", "regions")
    assert regions["offsets"][-1] == len(regions["boxes"]) > 0
    stamps = {p: p.stat().st_mtime_ns for p in store_path.rglob("zarr.json")}
    again = extract(video_dir, store_path)
    assert again.exit_code == 0
    assert "nothing new: all 3 videos up to date" in again.output
    assert {p: p.stat().st_mtime_ns for p in store_path.rglob("zarr.json")} == stamps  # nothing rewritten


def test_touched_file_is_not_reextracted_but_changed_file_is(video_dir: Path, store_path: Path):
    extract(video_dir, store_path)
    before = entry_data(store_path, "train", "b", "frames")["data"]
    target = video_dir / "a.avi"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    touched = extract(video_dir, store_path)
    assert "nothing new" in touched.output
    assert FeatureStore(store_path).video("train", "a").fingerprint.mtime_ns == target.stat().st_mtime_ns
    make_video(video_dir / "b.avi", 12, seed=42)  # new content and length
    changed = extract(video_dir, store_path)
    assert changed.exit_code == 0
    record = FeatureStore(store_path).video("train", "b")
    assert record.n_frames == 12
    after = entry_data(store_path, "train", "b", "frames")["data"]
    assert after.shape[0] == 12 and not np.array_equal(after[:12], before[:12])


def test_new_parameters_make_a_new_entry_beside_the_old(video_dir: Path, store_path: Path):
    extract(video_dir, store_path, "--features", "velocity")
    result = extract(video_dir, store_path, "--features", "velocity", "-p", "velocity.n_bins=4")
    assert result.exit_code == 0
    record = FeatureStore(store_path).video("train", "a")
    velocity = [s for s in record.features.values() if s["name"] == "velocity"]
    assert sorted(s["params"]["n_bins"] for s in velocity) == [4, 16]
    assert not any(s["name"] == "flow" for s in record.features.values())  # computed in memory only


def test_corrupt_and_empty_videos_fail_alone(video_dir: Path, store_path: Path):
    (video_dir / "corrupt.mp4").write_bytes(b"\x00\x00\x00 not really an mp4" * 50)
    (video_dir / "empty.mp4").write_bytes(b"")
    result = extract(video_dir, store_path)
    assert result.exit_code == 1
    assert "corrupt" in result.output and "empty file" in result.output
    fs = FeatureStore(store_path, read_only=True)
    status = {r.video_id: r.status for r in fs.videos("train")}
    assert status == {"a": "ok", "b": "ok", "cam/c": "ok", "corrupt": "failed", "empty": "failed"}
    assert str(video_dir / "corrupt.mp4") in fs.video("train", "corrupt").error
    rerun = extract(video_dir, store_path)
    assert rerun.exit_code == 1 and "failed earlier" in rerun.output and "--retry-failed" in rerun.output
    make_video(video_dir / "empty.mp4", 10)  # fixed: it is re-extracted without asking
    fixed = extract(video_dir, store_path)
    assert FeatureStore(store_path).video("train", "empty").status == "ok"
    assert fixed.exit_code == 1  # corrupt.mp4 is still broken


def test_truncated_video_keeps_no_partial_feature(tmp_path: Path, store_path: Path):
    path = make_video(tmp_path / "v" / "long.mp4", 80)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    result = extract(tmp_path / "v", store_path, "--window", "8")
    assert result.exit_code == 1
    record = FeatureStore(store_path).video("train", "long")
    assert record.status == "failed" and record.features == {}
    leftovers = [p.name for p in (store_path / "videos" / "train" / "long").iterdir() if "@" in p.name]
    assert leftovers == []


def test_files_cut_in_half_fail_or_are_kept_as_truncated_never_as_whole(tmp_path: Path, store_path: Path):
    """A Matroska file cut to half its bytes extracted with exit 0, status ok and half its frames.
    Now a file holding fewer frames than its container declares fails (permanently: a rerun does
    not retry it), or with --keep-truncated keeps its frames under status 'truncated'."""
    root = tmp_path / "v"
    for suffix in ("mp4", "mkv", "avi", "webm"):
        cut_in_half(container_video(root / f"{suffix}.{suffix}", 60))
    make_video(root / "whole.mkv", 30)
    first = vadctl("extract", root, "--store", store_path, "--features", "frames", "--json")
    assert first.exit_code == 1
    report = {v["video"]: v for v in json.loads(first.stdout)["videos"]}
    assert report["whole"]["status"] == "extracted" and report["whole"]["truncated"] is None
    fs = FeatureStore(store_path, read_only=True)
    for video in ("mkv", "avi", "webm"):
        record = fs.video("train", video)
        assert report[video]["status"] == "failed" and record.status == "failed" and record.features == {}
        assert record.error.startswith(str(root / f"{video}.{video}") + ": truncated: ")
        assert "of the 60 frames the container declares" in record.error and record.failure_kind == "permanent"
    assert "cannot open video" in fs.video("train", "mp4").error  # its index was at its end
    again = vadctl("extract", root, "--store", store_path, "--features", "frames", "--keep-truncated", "--json")
    assert {v["video"]: v["status"] for v in json.loads(again.stdout)["videos"]} == {
        "avi": "failed earlier", "mkv": "failed earlier", "mp4": "failed earlier", "webm": "failed earlier",
        "whole": "up to date",
    }  # fmt: skip
    kept = extract(root, store_path, "--features", "frames", "--keep-truncated", "--retry-failed")
    assert kept.exit_code == 1  # the MP4 cannot be read at all
    assert "truncated mkv: truncated: the file holds" in kept.output and "(its frames kept)" in kept.output
    fs = FeatureStore(store_path, read_only=True)
    for video in ("mkv", "avi", "webm"):
        record = fs.video("train", video)
        assert record.status == "truncated" and record.usable and record.error.startswith("truncated: "), record.error
        assert 0 < record.n_frames < 58
        assert len(entry_data(store_path, "train", video, "frames")["data"]) == record.n_frames
    assert "decoded" in fs.video("train", "avi").error  # its last frame is cut: kept up to the one before
    assert fs.video("train", "mp4").status == "failed"
    info = vadctl("store", "info", store_path, "--videos", "--json")
    statuses = {v["video"]: v["status"] for v in json.loads(info.stdout)["videos"]}
    assert statuses == {"avi": "truncated", "mkv": "truncated", "mp4": "failed", "webm": "truncated", "whole": "ok"}
    rerun = extract(root, store_path, "--features", "frames,flow")  # a kept video gains features as it was kept
    fs = FeatureStore(store_path, read_only=True)
    assert fs.video("train", "mkv").status == "truncated" and len(fs.video("train", "mkv").features) == 2
    assert rerun.exit_code == 1 and "failed earlier mp4" in rerun.output


def test_scene_and_splits_are_recorded(video_dir: Path, store_path: Path):
    extract(video_dir / "a.avi", store_path, "--split", "test", "--scene", "plaza", "--features", "frames")
    record = FeatureStore(store_path).video("test", "a")
    assert record.scene == "plaza" and record.clip_spec == {"length": 16, "stride": 8, "step": 1}
    info = vadctl("store", "info", store_path, "--videos")
    assert info.exit_code == 0 and "plaza" in info.output and "frames@" in info.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--features", "nope"], "unknown feature 'nope'"),
        (["--param", "flow.preset=warp"], "flow.preset='warp'"),
        (["--split", "a/b"], "split 'a/b'"),
        (["--resize", "huge"], "--resize 'huge'"),
    ],
)
def test_bad_arguments_give_one_line_errors(video_dir: Path, store_path: Path, args, message):
    result = vadctl("extract", video_dir, "--store", store_path, "-q", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_root_and_foreign_store(video_dir: Path, tmp_path: Path, store_path: Path):
    missing = vadctl("extract", tmp_path / "nowhere", "--store", store_path)
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = vadctl("extract", empty, "--store", store_path)
    assert none.exit_code == 2 and "no videos found" in none.output
    extract(video_dir / "a.avi", store_path, "--features", "frames")
    meta = store_path / "zarr.json"
    data = json.loads(meta.read_text())
    data["attributes"]["vadctl_store"]["schema"] = 0
    meta.write_text(json.dumps(data))
    old = vadctl("extract", video_dir, "--store", store_path)
    assert old.exit_code == 2 and "schema 0" in old.output
    info = vadctl("store", "info", tmp_path / "nothing.zarr")
    assert info.exit_code == 2 and "no feature store" in info.output


def test_cli_starts_without_the_heavy_libraries():
    import subprocess
    import sys

    heavy = "('sklearn', 'scipy', 'torch', 'polars', 'faiss', 'zarr', 'cv2')"
    code = f"import sys, vadctl.cli; print(','.join(m for m in {heavy} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"importing the CLI loaded {loaded}"


def test_cached_upstream_is_read_not_recomputed(video_dir: Path, tmp_path: Path):
    from vadctl import api

    staged = tmp_path / "staged.zarr"
    api.extract([video_dir], staged, "train", ["flow"])
    report = api.extract([video_dir], staged, "train", ["motion"])
    for result in report.results:  # motion needs flow only in its stored form: no second flow pass
        assert result.computed == ["motion"] and [key.split("@")[0] for key in result.read] == ["flow"]
    report = api.extract([video_dir], staged, "train", ["motion", "velocity"])
    for result in report.results:  # velocity needs full-resolution flow in memory: flow runs again
        assert set(result.computed) == {"flow", "regions", "velocity"} and result.read == []
    api.extract([video_dir], tmp_path / "together.zarr", "train", ["motion"])
    for video in ("a", "b", "cam/c"):
        a = entry_data(tmp_path / "staged.zarr", "train", video, "motion")
        b = entry_data(tmp_path / "together.zarr", "train", video, "motion")
        np.testing.assert_array_equal(a["embedding"], b["embedding"])
        assert a["embedding"].shape[0] == len(a["clips"]) > 0


def no_space_on(monkeypatch, times: int | None) -> list[int]:
    """The store's writes of feature rows fail with ENOSPC (`times` times, None: always); the
    number of writes tried is counted in the returned list."""
    from vadctl.store.writer import EntryWriter

    tried = [0]
    write = EntryWriter.write

    def full_disk(self, *args, **kwargs):
        tried[0] += 1
        if times is None or tried[0] <= times:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, *args, **kwargs)

    monkeypatch.setattr(EntryWriter, "write", full_disk)
    return tried


def test_a_full_disk_is_a_transient_failure_that_the_next_run_retries(tmp_path: Path, store_path: Path, monkeypatch):
    """A video failed by ENOSPC was recorded failed like a broken file and never tried again
    without --retry-failed: one full disk skipped it forever."""
    make_video(tmp_path / "v" / "a.avi", 12)
    make_video(tmp_path / "v" / "b.avi", 12, seed=1)
    no_space_on(monkeypatch, times=1)
    first = vadctl("extract", tmp_path / "v", "--store", store_path, "--features", "frames", "--json")
    assert first.exit_code == 1
    report = {v["video"]: v for v in json.loads(first.stdout)["videos"]}
    assert report["a"]["status"] == "failed" and "No space left on device" in report["a"]["error"]
    assert (report["a"]["failure"], report["a"]["attempts"]) == ("transient", 1)
    assert report["b"]["status"] == "extracted"
    record = FeatureStore(store_path, read_only=True).video("train", "a")
    assert (record.status, record.failure_kind, record.attempts) == ("failed", "transient", 1)
    info = json.loads(vadctl("store", "info", store_path, "--videos", "--json").stdout)
    shown = {v["video"]: (v["status"], v["failure"], v["attempts"]) for v in info["videos"]}
    assert shown == {"a": ("failed", "transient", 1), "b": ("ok", None, 0)}
    table = vadctl("store", "info", store_path, "--videos")
    assert "transient" in table.output  # in the status column (wrapped to the terminal's width)
    again = extract(tmp_path / "v", store_path, "--features", "frames")  # no --retry-failed
    assert again.exit_code == 0, again.output
    record = FeatureStore(store_path, read_only=True).video("train", "a")
    assert record.status == "ok" and record.failure_kind is None and len(record.features) == 1


def test_transient_failures_are_retried_a_bounded_number_of_times(tmp_path: Path, store_path: Path, monkeypatch):
    make_video(tmp_path / "v" / "a.avi", 12)
    tried = no_space_on(monkeypatch, times=None)
    for attempt in (1, 2, 3):
        result = extract(tmp_path / "v", store_path, "--features", "frames")
        assert result.exit_code == 1 and tried[0] == attempt  # each run tries it again, once
        record = FeatureStore(store_path, read_only=True).video("train", "a")
        assert (record.failure_kind, record.attempts) == ("transient", attempt)
    assert "(transient, 3 attempts: not retried again without --retry-failed)" in " ".join(result.output.split())
    fourth = extract(tmp_path / "v", store_path, "--features", "frames")
    assert fourth.exit_code == 1 and tried[0] == 3  # not tried: as a permanent failure would be
    assert "failed earlier a:" in fourth.output and "--retry-failed" in fourth.output
    retried = extract(tmp_path / "v", store_path, "--features", "frames", "--retry-failed")
    assert retried.exit_code == 1 and tried[0] == 4  # asked for: tried, and counted afresh
    fs = FeatureStore(store_path)
    assert fs.video("train", "a").attempts == 1
    old = fs.video("train", "a").to_attrs()  # a record from before failures had a kind: permanent
    del old["failure"], old["attempts"]
    fs.save_video(VideoRecord.from_attrs(old))
    assert FeatureStore(store_path).video("train", "a").failure_kind == "permanent"
    extract(tmp_path / "v", store_path, "--features", "frames")
    assert tried[0] == 4
