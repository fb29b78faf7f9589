"""`extract --force` redoes the entries of this run's features and parameters, and only those: a
video's entries made with other parameters (velocity `n_bins=8`, flow `preset=fast`) stay as they
are, untouched and readable, whether the video is extracted whole or in segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from videos import Square, make_video

from vadctl import api
from vadctl.cli import app
from vadctl.store import FeatureStore

pytestmark = pytest.mark.usefixtures("chunk_sized_shards")  # 64-frame segments (see conftest)
FEATURES = ["flow", "regions", "velocity"]
runner = CliRunner()


def read_all(store: Path, video: str, key: str) -> dict[str, np.ndarray]:
    fs = FeatureStore(store, read_only=True)
    record = fs.video("train", video)
    name, _, digest = key.partition("@")
    entry = fs.entry(record, fs.resolve(f"{name}@{digest}", "train"))
    data = {n: entry[n] for n in entry.array_names}
    return data | ({"offsets": entry.offsets} if entry.offsets is not None else {})


def groups(store: Path, video: str) -> dict[str, str]:
    record = FeatureStore(store, read_only=True).video("train", video)
    return {key: record.group_of(key) for key in record.features}


@pytest.mark.parametrize("segments", [None, 64], ids=["whole", "segments"])
def test_force_redoes_only_this_runs_entries_and_keeps_those_of_other_parameters(
    video_dir: Path, store_path: Path, segments
):
    videos = ["a", "b", "cam/c"]
    if segments:  # a long video, extracted in 64-frame segments (flow's chunk rows at this size)
        squares = [Square(2, 30, 2.5, 0.3, size=18), Square(150, 90, -1.0, -0.2, size=16)]
        make_video(video_dir / "long.avi", 136, seed=4, height=120, width=160, squares=squares)
        videos.append("long")
    assert not api.extract([video_dir], store_path, "train", FEATURES).failed
    api.extract([video_dir], store_path, "train", ["velocity"], ["velocity.n_bins=8"])
    api.extract([video_dir], store_path, "train", ["flow"], ["flow.preset=fast"])
    before = groups(store_path, "a")
    assert len(before) == 5  # flow, regions, velocity with the defaults; velocity n_bins=8; flow fast
    plan = api.plan_extract([video_dir], store_path, "train", FEATURES, force=True)
    assert {p.action for p in plan} == {"redo"} and len(plan[0].pending) == 3
    redone = set(plan[0].pending)
    others = sorted(set(before) - redone)
    kept = {(v, k): read_all(store_path, v, k) for v in videos for k in others}

    report = api.extract([video_dir], store_path, "train", FEATURES, force=True, segment_frames=segments)
    assert report.count("extracted") == len(videos) and not report.failed
    assert any(r.segments > 1 for r in report.results) == bool(segments)
    after = groups(store_path, "a")
    assert set(after) == set(before)  # every entry is still there
    assert all(after[k] == before[k] for k in others)  # other parameters: untouched, same data folder
    assert all(after[k] != before[k] for k in redone)  # this run's: written anew
    for (video, key), data in kept.items():
        for name, values in read_all(store_path, video, key).items():
            np.testing.assert_array_equal(values, data[name], err_msg=f"{video} {key} {name}")
    checked, problems = FeatureStore(store_path, read_only=True).verify(deep=True)
    assert problems == [] and checked == 5 * len(videos)
    assert not [r for r in api.gc(store_path).removals if r.what.startswith("orphan")]  # the old data went


def test_force_on_the_command_line_keeps_other_entries(video_dir: Path, store_path: Path):
    assert not api.extract([video_dir], store_path, "train", ["velocity"]).failed
    api.extract([video_dir], store_path, "train", ["velocity"], ["velocity.n_bins=8"])
    forced = runner.invoke(
        app, ["extract", str(video_dir), "--store", str(store_path), "--features", "velocity", "--force", "-q"]
    )
    assert forced.exit_code == 0, forced.output
    record = FeatureStore(store_path, read_only=True).video("train", "a")
    assert sorted(s["params"].get("n_bins", 16) for s in record.features.values() if s["name"] == "velocity") == [8, 16]
