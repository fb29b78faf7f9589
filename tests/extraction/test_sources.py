"""`vadctl store verify --sources`: a same-size edit (200 KB zeroed in the middle, size and mtime
kept) reads as up to date by the sampled fingerprint; re-hashing the sources in full finds it,
marks the video, and the next extract redoes it with the new content."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from edits import ZEROED, raw_video, zero_frames_in_place
from typer.testing import CliRunner

from vadctl import api
from vadctl.cli import app
from vadctl.store import FeatureStore

runner = CliRunner()


def frames_of(store: Path, video: str) -> np.ndarray:
    fs = FeatureStore(store, read_only=True)
    return fs.entry(fs.video("test", video), fs.resolve("frames", "test"))["data"]


def test_same_size_edit_is_found_by_verify_sources_and_redone_by_the_next_extract(tmp_path: Path):
    root, store = tmp_path / "videos", tmp_path / "store.zarr"
    raw_video(root / "a.avi")
    raw_video(root / "b.avi", seed=2)
    assert not api.extract([root], store, "test", ["frames"]).failed
    record = FeatureStore(store, read_only=True).video("test", "a")
    assert record.source_sha256 and record.source_sha256_from == "extract"  # recorded at extraction
    before = frames_of(store, "a")
    zero_frames_in_place(root / "a.avi")
    assert api.extract([root], store, "test", ["frames"]).count("up to date") == 2  # the fast default misses it

    checked = runner.invoke(app, ["store", "verify", str(store), "--sources", "--json"])
    assert checked.exit_code == 1, checked.output
    sources = {c["video"]: c["status"] for c in json.loads(checked.output)["sources"]}
    assert sources == {"a": "changed", "b": "same"}
    assert "changed since extraction" in FeatureStore(store, read_only=True).video("test", "a").source_changed

    report = api.extract([root], store, "test", ["frames"])
    assert {r.video_id: r.status for r in report.results} == {"a": "extracted", "b": "up to date"}
    after = frames_of(store, "a")
    assert (after[ZEROED] == 0).all() and after[ZEROED].shape[0] == 8
    np.testing.assert_array_equal(np.delete(after, np.r_[ZEROED], 0), np.delete(before, np.r_[ZEROED], 0))
    fresh = FeatureStore(store, read_only=True).video("test", "a")
    assert fresh.source_changed is None and fresh.source_sha256 != record.source_sha256
    again = runner.invoke(app, ["store", "verify", str(store), "--sources"])
    assert again.exit_code == 0 and "2 same" in again.output, again.output


def test_a_record_without_a_full_hash_gets_one_on_first_verify_then_edits_are_found(tmp_path: Path):
    """Stores extracted before vadctl recorded the full hash: the first verify --sources takes it
    (it cannot vouch for what changed before), later ones compare with it."""
    root, store = tmp_path / "videos", tmp_path / "store.zarr"
    raw_video(root / "a.avi")
    api.extract([root], store, "test", ["frames"])
    fs = FeatureStore(store)
    record = fs.video("test", "a")
    record.source_sha256 = record.source_sha256_from = None  # as an older vadctl wrote it
    fs.save_video(record)
    first = api.verify_sources(store)
    assert [(c.video, c.status) for c in first] == [("a", "recorded")]
    assert FeatureStore(store, read_only=True).video("test", "a").source_sha256_from == "verify"
    zero_frames_in_place(root / "a.avi")
    assert [c.status for c in api.verify_sources(store)] == ["changed"]
    assert api.extract([root], store, "test", ["frames"]).count("extracted") == 1


def test_verify_sources_reports_missing_sources_and_marks_nothing(tmp_path: Path):
    root, store = tmp_path / "videos", tmp_path / "store.zarr"
    raw_video(root / "a.avi")
    api.extract([root], store, "test", ["frames"])
    (root / "a.avi").unlink()
    checks = api.verify_sources(store)
    assert [(c.video, c.status) for c in checks] == [("a", "missing")]
    assert FeatureStore(store, read_only=True).video("test", "a").source_changed is None
