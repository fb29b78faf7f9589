"""The pose featurizer with mediapipe's bundled model (its own environment: `nox -s tests_pose`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="pose needs the 'pose' extra (mediapipe 0.10.21, numpy<2): nox -s tests_pose")

from typer.testing import CliRunner
from videos import write_video

from vadctl.cli import app
from vadctl.common.specs import ClipSpec, DecodeSpec
from vadctl.features import build
from vadctl.features.base import Output
from vadctl.features.pose import N_KEYPOINTS, Pose
from vadctl.store import FeatureStore
from vadctl.video.reader import FrameWindow, VideoInfo

INFO = VideoInfo(n_frames=2, fps=10.0, height=240, width=360, source_height=240, source_width=360)
PERSON_BOX = np.array([100, 50, 228, 200], np.float32)


def person() -> np.ndarray:
    """A real photograph of a person (Grace Hopper, shipped with matplotlib), 128×150 RGB."""
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.resize(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), (128, 150), interpolation=cv2.INTER_AREA)


def scene() -> np.ndarray:
    frame = np.full((240, 360, 3), 60, np.uint8)
    frame[50:200, 100:228] = person()
    return frame


def test_keypoints_of_a_person_are_normalised_to_the_box():
    featurizer = Pose()
    featurizer.begin(INFO, ClipSpec())
    boxes = [np.stack([PERSON_BOX, np.array([300, 180, 340, 230], np.float32)])]  # the person, then an empty wall
    out = featurizer.process(FrameWindow(0, scene()[None], None), {"regions": Output(memory={"boxes": boxes})})
    assert out.counts.tolist() == [2]
    keypoints, visibility, found = out.ragged["keypoints"], out.ragged["visibility"], out.ragged["found"]
    assert keypoints.shape == (2, N_KEYPOINTS, 2) and keypoints.dtype == np.float32
    assert visibility.shape == (2, N_KEYPOINTS) and found.dtype == np.uint8
    assert found.tolist() == [1, 0]
    nose, left_shoulder, right_shoulder = keypoints[0, 0], keypoints[0, 11], keypoints[0, 12]
    assert 0.4 < nose[0] < 0.65 and 0.25 < nose[1] < 0.5  # the face is in the upper middle of the photo
    assert right_shoulder[0] < nose[0] < left_shoulder[0]  # the person faces the camera
    assert visibility[0, 0] > 0.5
    assert not keypoints[1].any() and not visibility[1].any()


def test_pose_rows_align_with_regions_and_identity_holds_the_bundled_model():
    featurizers = build(["pose"])
    assert [f.name for f in featurizers] == ["regions", "pose"]
    spec = featurizers[1].spec(DecodeSpec(), {"regions": featurizers[0].spec(DecodeSpec(), {})})
    assert spec.params["weights"].startswith("mediapipe-bundled:sha256:")
    frames = np.stack([np.full((240, 360, 3), 60, np.uint8), scene()])  # the person appears: a foreground region
    outputs = {}
    for f in featurizers:
        f.begin(INFO, ClipSpec())
        outputs[f.name] = f.process(FrameWindow(0, frames, None), {d: outputs[d] for d in f.requires})
    assert outputs["pose"].counts.tolist() == outputs["regions"].counts.tolist()
    assert outputs["regions"].counts.sum() >= 1
    assert outputs["pose"].ragged["found"].max() == 1


def test_extract_pose_through_the_command_line(tmp_path: Path):
    frames = np.stack([np.full((240, 360, 3), 60, np.uint8)] * 2 + [scene()] * 2)
    write_video(tmp_path / "videos" / "walker.avi", frames)
    store = tmp_path / "store.zarr"
    result = CliRunner().invoke(
        app, ["extract", str(tmp_path / "videos"), "--store", str(store), "-q", "--features", "regions,pose"]
    )
    assert result.exit_code == 0, result.output
    fs = FeatureStore(store, read_only=True)
    record = fs.video("train", "walker")
    pose = fs.entry(record, fs.resolve("pose", "train"))
    regions = fs.entry(record, fs.resolve("regions", "train"))
    np.testing.assert_array_equal(pose.offsets, regions.offsets)
    assert pose["keypoints"].shape == (regions.offsets[-1], N_KEYPOINTS, 2)
    assert pose["found"].max() == 1
