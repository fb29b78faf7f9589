"""Damaged data is detected, never read as data: missing or altered chunks, corrupt metadata.
`vadctl store verify` finds it, fit and score refuse it with one line, the next extract redoes it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from snapshots import assert_same, snapshot
from typer.testing import CliRunner
from videos import Square, make_video

from vadctl import api
from vadctl.cli import app
from vadctl.common.specs import FeatureSpec
from vadctl.errors import StoreError
from vadctl.store import FeatureStore

FEATURES = ("flow", "regions", "velocity", "motion")


def vadctl(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("damage")
    videos = base / "videos"
    for i in range(3):
        make_video(videos / f"v{i}.avi", 40, seed=i, squares=[Square(4 + 5 * i, 20, 3.0, 0.0)])
    store = base / "clean.zarr"
    api.extract([videos], store, "train", FEATURES, clip_len=8, clip_stride=4)
    return {"videos": videos, "store": store, "data": snapshot(store)}


@pytest.fixture
def store(clean, tmp_path: Path) -> Path:
    copy = tmp_path / "store.zarr"
    shutil.copytree(clean["store"], copy)
    return copy


def entry_folder(store: Path, video: str, name: str) -> Path:
    record = FeatureStore(store, read_only=True).video("train", video)
    key = next(k for k in record.features if k.startswith(name + "@"))
    return store / "videos" / "train" / record.key / record.group_of(key)


def chunks(folder: Path, array: str) -> list[Path]:
    return sorted(p for p in (folder / array).iterdir() if p.name.startswith("c."))


def test_a_deleted_chunk_is_found_refused_and_redone(clean, store: Path, tmp_path: Path):
    flow = entry_folder(store, "v1", "flow")
    chunks(flow, "data")[0].unlink()
    verify = vadctl("store", "verify", store)
    assert verify.exit_code == 1 and "v1" in verify.output and "missing chunks" in verify.output
    fit = vadctl("fit", "-m", "fuvas", "-s", store, "-o", tmp_path / "m.safetensors", "-p", "feature=motion")
    assert fit.exit_code == 0  # fuvas reads motion only: the damage is elsewhere
    fs = FeatureStore(store, read_only=True)
    spec = FeatureSpec.from_dict(next(s for k, s in fs.video("train", "v1").features.items() if k.startswith("flow")))
    with pytest.raises(StoreError, match=r"flow@.* of video train/v1 is damaged"):
        fs.entry(fs.video("train", "v1"), spec)["data"]  # never zeros
    fit = vadctl("fit", "-m", "aivad", "-s", store, "-o", tmp_path / "a.safetensors")
    assert fit.exit_code == 0  # aivad reads regions and velocity, not flow
    redo = api.extract([clean["videos"]], store, "train", FEATURES, clip_len=8, clip_stride=4)
    assert redo.count("extracted") == 1 and [r.video_id for r in redo.results if r.written] == ["v1"]
    assert vadctl("store", "verify", store).exit_code == 0
    assert_same(snapshot(store), clean["data"])


def test_fit_and_score_refuse_a_damaged_entry_they_read(clean, store: Path, tmp_path: Path):
    model = tmp_path / "aivad.safetensors"
    assert vadctl("fit", "-m", "aivad", "-s", store, "-o", model).exit_code == 0
    velocity = entry_folder(store, "v2", "velocity")
    victim = chunks(velocity, "count")[0]
    victim.write_bytes(victim.read_bytes()[:-3])  # truncated
    fit = vadctl("fit", "-m", "aivad", "-s", store, "-o", tmp_path / "again.safetensors")
    assert fit.exit_code == 2 and "velocity@" in fit.output and "train/v2" in fit.output and "damaged" in fit.output
    assert len(fit.output.strip().splitlines()) == 1
    score = vadctl("score", "-m", model, "-s", store, "--split", "train", "-o", tmp_path / "s.parquet")
    assert score.exit_code == 2 and "damaged" in score.output and not (tmp_path / "s.parquet").exists()


def test_the_cheap_check_stats_the_recorded_files_and_older_records_are_still_checked(clean, store: Path):
    """Records keep each file's size (planning stats files, lists no folder); records written before
    that keep counts and bytes per array, and the listing check still finds the same damage."""
    fs = FeatureStore(store)
    record = fs.video("train", "v0")
    flow_key = next(k for k in record.features if k.startswith("flow@"))
    sizes = record.features[flow_key]["sizes"]
    folder = entry_folder(store, "v0", "flow")
    assert sizes == {f"{p.parent.name}/{p.name}": p.stat().st_size for p in folder.glob("*/*") if p.is_file()}
    assert record.clips_files and fs.clips_problem(record) is None
    victim = chunks(folder, "data")[0]
    kept = victim.read_bytes()
    victim.write_bytes(kept[:-5])
    assert "truncated or altered" in fs.entry_problem(fs.video("train", "v0"), flow_key)
    victim.unlink()
    assert "missing chunks" in fs.entry_problem(fs.video("train", "v0"), flow_key)
    victim.write_bytes(kept)
    assert fs.entry_problem(fs.video("train", "v0"), flow_key) is None
    for summary in record.features.values():  # as an older vadctl wrote it
        del summary["sizes"]
    fs.save_video(record)
    older = fs.video("train", "v0")
    assert "sizes" not in older.features[flow_key] and fs.entry_problem(older, flow_key) is None
    victim.unlink()
    assert "missing chunks" in fs.entry_problem(older, flow_key)
    clip_file = next(
        p for p in (store / "videos" / "train" / older.key / older.clips).iterdir() if p.name != "zarr.json"
    )
    clip_file.write_bytes(clip_file.read_bytes()[:-1])
    assert "truncated or altered" in fs.clips_problem(older)


def test_flipped_bytes_are_found_by_the_deep_check_and_never_decode(clean, store: Path):
    motion = entry_folder(store, "v0", "motion")
    victim = chunks(motion, "embedding")[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only a hash (or the chunk's checksum) can tell
    victim.write_bytes(bytes(data))
    assert vadctl("store", "verify", store).exit_code == 0  # the cheap check sees sizes only
    deep = vadctl("store", "verify", store, "--deep", "--json")
    assert deep.exit_code == 1
    problems = json.loads(deep.output)["problems"]
    assert [(p["video"], p["entry"].split("@")[0]) for p in problems] == [("v0", "motion")]
    fs = FeatureStore(store, read_only=True)
    record = fs.video("train", "v0")
    spec = FeatureSpec.from_dict(next(s for k, s in record.features.items() if k.startswith("motion")))
    with pytest.raises(StoreError, match="damaged"):
        fs.entry(record, spec)["embedding"]  # crc32c: corrupt bytes raise, never decode to garbage
    forget = vadctl("store", "verify", store, "--deep", "--forget-damaged")
    assert forget.exit_code == 1 and "quarantined" in forget.output
    redo = api.extract([clean["videos"]], store, "train", FEATURES, clip_len=8, clip_stride=4)
    assert [r.video_id for r in redo.results if r.written] == ["v0"]
    assert vadctl("store", "verify", store, "--deep").exit_code == 0
    assert_same(snapshot(store), clean["data"])


def test_corrupt_metadata_gives_one_line_errors_and_extract_recovers(clean, store: Path, tmp_path: Path):
    record_file = store / "videos" / "train" / "v1" / "zarr.json"
    record_file.write_text(record_file.read_text()[:40])
    for args in (("fit", "-m", "aivad", "-s", store, "-o", tmp_path / "m.safetensors"), ("store", "verify", store)):
        result = vadctl(*args)
        assert result.exit_code in (1, 2) and "zarr.json" in result.output and "Traceback" not in result.output
    redo = api.extract([clean["videos"]], store, "train", FEATURES, clip_len=8, clip_stride=4)
    assert [r.video_id for r in redo.results if r.written] == ["v1"]  # the unreadable folder was quarantined
    assert list((store.parent / "store.zarr.vadctl" / "quarantine").iterdir())
    assert_same(snapshot(store), clean["data"])
    (store / "zarr.json").write_text("{not json")
    broken = vadctl("store", "info", store)
    assert broken.exit_code == 2 and "corrupt" in broken.output and len(broken.output.strip().splitlines()) == 1


def test_a_root_that_is_a_frame_folder_gets_its_own_name_and_force_touches_only_it(tmp_path: Path, monkeypatch):
    from videos import render, write_frame_folder

    frames = write_frame_folder(tmp_path / "cam7", render(12, seed=3))
    make_video(tmp_path / "other" / "keep.avi", 12, seed=4)
    store = tmp_path / "s.zarr"
    assert vadctl("extract", tmp_path / "other", "-s", store, "--split", "test").exit_code == 0
    monkeypatch.chdir(frames)
    first = vadctl("extract", ".", "-s", store, "--split", "test")
    assert first.exit_code == 0, first.output
    ids = [r.video_id for r in FeatureStore(store).videos("test")]
    assert ids == ["cam7", "keep"]
    forced = vadctl("extract", ".", "-s", store, "--split", "test", "--force")
    assert forced.exit_code == 0
    assert [r.video_id for r in FeatureStore(store).videos("test")] == ["cam7", "keep"]
    assert FeatureStore(store).video("test", "keep").features  # the other video is untouched


def test_long_and_unicode_ids_get_bounded_collision_free_names(tmp_path: Path):
    deep = "ünïcødé-カメラ-" * 12
    folder = tmp_path / "videos" / deep[:120] / deep[:100]
    for suffix in ("a", "b"):  # same long prefix, different ids
        make_video(folder / f"{deep[:60]}{suffix}.avi", 10, seed=len(suffix))
    store = tmp_path / "s.zarr"
    result = vadctl("extract", tmp_path / "videos", "-s", store, "--features", "flow")
    assert result.exit_code == 0, result.output
    records = FeatureStore(store).videos("train")
    assert len(records) == 2 and all(len(r.video_id.encode()) > 300 for r in records)
    names = [p.name for p in (store / "videos" / "train").iterdir() if p.is_dir()]
    assert len(set(names)) == 2 and all(len(n.encode()) <= 160 for n in names)
    again = vadctl("extract", tmp_path / "videos", "-s", store, "--features", "flow")
    assert "nothing new" in again.output


def test_bad_ids_are_refused_before_anything_is_written(tmp_path: Path):
    from vadctl.errors import UsageError
    from vadctl.store import video_key

    for bad in ("", ".", "..", "a/../b", "./x", "a//b"):
        with pytest.raises(UsageError):
            video_key(bad)
