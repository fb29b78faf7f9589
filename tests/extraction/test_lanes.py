"""Featurizers in lanes (a thread each): the same store as one featurizer after the other, the first
error of any lane fails its video only, and segments start where every featurizer allows."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from scale_helpers import assert_identical
from videos import make_video

from vadctl import api
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.extraction.extractor import Extractor
from vadctl.extraction.segments import plan_segments
from vadctl.features import Featurizer, Output, build, register
from vadctl.video.reader import VideoInfo

FEATURES = ("frames", "flow", "regions", "velocity", "motion")


@register
class FailsLate(Featurizer):
    """Zeros per frame, until the window that starts at `at_frame`: then a featurizer bug."""

    name = "test_lanes_fails_late"
    requires = ("regions",)

    def __init__(self, at_frame: int = 32):
        self.at_frame = at_frame

    def arrays(self, info):
        return {"value": ArraySpec((1024,), "float32")}  # 4 KB rows: chunks of 512 frames

    def process(self, window, upstream):
        if window.start >= self.at_frame:
            raise RuntimeError(f"boom at frame {window.start}")
        return Output(dense={"value": np.zeros((len(window), 1024), np.float32)})


@register
class EveryFortyEight(FailsLate):
    name = "test_lanes_aligned"

    @property
    def alignment(self) -> int:
        return 48


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lanes")
    make_video(root / "long.avi", 70, seed=1, height=64, width=96)
    make_video(root / "short.avi", 24, seed=2, height=64, width=96)
    return root


def test_lanes_write_the_store_one_featurizer_after_the_other_writes(videos: Path, tmp_path: Path, monkeypatch):
    in_lanes = api.extract([videos], tmp_path / "lanes.zarr", "train", FEATURES, window=16)
    monkeypatch.setattr(Extractor, "lanes", False)
    in_turn = api.extract([videos], tmp_path / "in_turn.zarr", "train", FEATURES, window=16)
    assert not in_lanes.failed and not in_turn.failed
    assert_identical(tmp_path / "lanes.zarr", tmp_path / "in_turn.zarr")


def test_an_error_in_one_lane_fails_its_video_only_and_stops_every_lane(videos: Path, tmp_path: Path):
    before = {t.ident for t in threading.enumerate()}
    report = api.extract([videos], tmp_path / "s.zarr", "train", ("flow", "velocity", FailsLate.name), window=16)
    by_video = {r.video_id: r for r in report.results}
    assert by_video["short"].status == "extracted"  # 24 frames: never reaches frame 32
    assert by_video["long"].status == "failed" and "boom at frame 32" in by_video["long"].error
    store = api.open_store(tmp_path / "s.zarr")
    assert store.video("train", "long").status == "failed" and not store.video("train", "long").features
    lanes = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("vadctl-lane")]
    assert lanes == []


def test_segments_start_on_every_featurizers_alignment():
    featurizers = build(["flow", EveryFortyEight.name], {})
    info = VideoInfo(n_frames=100_000, fps=25.0, height=64, width=96, source_height=64, source_width=96)
    pending = {f.name for f in featurizers}
    segments = plan_segments(info, featurizers, pending, ClipSpec(), window=16, segment_frames=20_000)
    starts = [s.frames[0] for s in segments]
    assert starts[0] == 0 and len(starts) > 2
    assert all(start % 48 == 0 for start in starts)  # lcm(window 16, alignment 48, chunks of 256 and 512)
