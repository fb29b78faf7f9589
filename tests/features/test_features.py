import numpy as np
import pytest
from videos import Square, background, render

from vadctl.cli.common import parse_feature_params
from vadctl.common.specs import ClipSpec, DecodeSpec
from vadctl.errors import UsageError
from vadctl.features import build
from vadctl.features.flow import Flow, to_pixels
from vadctl.features.frames import Frames
from vadctl.features.regions import Regions, drop_overlapping
from vadctl.features.registry import parse_names
from vadctl.features.velocity import Velocity, region_histogram
from vadctl.models.velocity_bins import merge_bins
from vadctl.video.reader import FrameWindow, VideoInfo

INFO = VideoInfo(n_frames=8, fps=10.0, height=64, width=96, source_height=64, source_width=96)


def window_of(frames: np.ndarray, start: int = 0, previous=None) -> FrameWindow:
    return FrameWindow(start, frames, previous)


def run(featurizer, frames, upstream=None):
    featurizer.begin(INFO, ClipSpec())
    return featurizer.process(window_of(frames), upstream or {})


def test_flow_recovers_a_known_translation():
    base = background(64, 96, seed=7)
    shifted = np.roll(base, 3, axis=1)  # the whole textured scene moves 3 px right
    frames = np.stack([np.repeat(f[..., None], 3, 2) for f in (base, shifted)])
    out = run(Flow(store_scale=1.0), frames)
    full = out.memory["flow"]
    assert full.shape == (2, 64, 96, 2)
    assert np.all(full[0] == 0)  # no frame before frame 0
    centre = full[1, 16:48, 24:72]
    assert abs(np.median(centre[..., 0]) - 3.0) < 0.3 and abs(np.median(centre[..., 1])) < 0.3
    stored = to_pixels(out.dense["data"], Flow(store_scale=1.0).get_params())
    assert out.dense["data"].dtype == np.int16
    assert np.abs(stored - full).max() <= 1 / 64 + 1e-6  # quantised to 1/32 px, rounding error ≤ half


def test_flow_stored_downscaled_in_stored_pixels():
    base = background(64, 96, seed=7)
    frames = np.stack([np.repeat(f[..., None], 3, 2) for f in (base, np.roll(base, 4, axis=1))])
    out = run(Flow(store_scale=0.5), frames)
    assert out.dense["data"].shape == (2, 32, 48, 2)
    stored = to_pixels(out.dense["data"], Flow().get_params())
    assert abs(np.median(stored[1, 8:24, 12:36, 0]) - 2.0) < 0.3  # 4 px at full size = 2 px at half


def test_regions_box_the_moving_square_only():
    frames = render(3, squares=[Square(20, 20, 4.0, 0.0, size=12)])
    out = run(Regions(), frames)
    assert out.counts.tolist()[0] == 0  # frame 0 has no previous frame
    boxes = out.memory["boxes"][1]
    assert len(boxes) >= 1
    x1, y1, x2, y2 = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
    assert 18 <= x1 <= 22 and 18 <= y1 <= 22 and 34 <= x2 <= 38 and 30 <= y2 <= 34
    static = run(Regions(), render(3, squares=[]))
    assert static.counts.sum() == 0


def test_dilation_and_threshold_decide_whether_a_fragmented_object_is_one_region():
    """A uniform body changes only at its edges: AI-VAD's rule (the default: threshold 18, no
    dilation) boxes the two changed edges 2 px apart as two regions, threshold 12 with 1 px of
    dilation as one; a change of 15 gray levels is motion only under the lower threshold."""
    before = np.full((64, 96), 100, np.uint8)
    current = before.copy()
    current[20:44, 30:40] = 160  # leading edge
    current[20:44, 42:52] = 160  # trailing edge, 2 px of unchanged body between them
    frames = np.stack([np.repeat(f[..., None], 3, 2) for f in (before, current)])
    assert len(run(Regions(), frames).memory["boxes"][1]) == 2
    assert len(run(Regions(binary_threshold=12, dilation=1), frames).memory["boxes"][1]) == 1
    faint = before.copy()
    faint[20:44, 30:52] = 115
    frames = np.stack([np.repeat(f[..., None], 3, 2) for f in (before, faint)])
    assert len(run(Regions(), frames).memory["boxes"][1]) == 0
    assert len(run(Regions(binary_threshold=12, dilation=1), frames).memory["boxes"][1]) == 1


def test_min_area_and_overlap_filters():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 6, 6], [20, 20, 30, 30], [25, 25, 40, 40]], np.float32)
    keep = drop_overlapping(boxes, 0.65)
    assert keep.tolist() == [0, 2, 3]  # the small box inside the first goes; partial overlap stays
    tiny = run(Regions(min_bbox_area=10_000), render(3, squares=[Square(20, 20, 4.0, 0.0)]))
    assert tiny.counts.sum() == 0


def test_velocity_puts_rightward_motion_in_the_right_bin():
    flow = np.zeros((20, 20, 2), np.float32)
    flow[..., 0] = 2.0  # 2 px to the right everywhere
    sums, counts = region_histogram(flow, np.array([5, 5, 15, 15]), 8)
    assert counts.sum() == 100 and sums.sum() == pytest.approx(200)
    assert np.argmax(counts) == 0  # angle 0 opens bin 0
    assert merge_bins(sums[None], counts[None], 1)[0, 0] == pytest.approx(2.0)
    with pytest.raises(UsageError, match="must divide"):
        merge_bins(sums[None], counts[None], 3)


@pytest.mark.parametrize("n_bins", [2, 4, 8])
def test_coarse_velocity_bins_are_centred_on_the_axes(n_bins: int):
    cases = [(0.0, 0), (-0.1, 0), (0.1, 0), (np.pi, n_bins // 2)]
    if n_bins >= 4:
        cases.append((np.pi / 2, n_bins // 4))  # down in image coordinates
    for angle, expected in cases:
        flow = np.zeros((10, 10, 2), np.float32)
        flow[..., 0], flow[..., 1] = np.cos(angle), np.sin(angle)
        sums, counts = region_histogram(flow, np.array([0, 0, 10, 10]), 16)
        mean = merge_bins(sums[None], counts[None], n_bins)[0]
        assert np.argmax(mean) == expected, (angle, n_bins, mean)
        assert mean.max() == pytest.approx(1.0)


def test_velocity_rows_align_with_regions():
    frames = render(4, squares=[Square(10, 20, 3.0, 0.0), Square(70, 30, -3.0, 0.0)])
    featurizers = build(["velocity"])
    assert [f.name for f in featurizers] == ["flow", "regions", "velocity"]
    outputs = {}
    for f in featurizers:
        f.begin(INFO, ClipSpec())
        outputs[f.name] = f.process(window_of(frames), {d: outputs[d] for d in f.requires})
    assert outputs["velocity"].counts.tolist() == outputs["regions"].counts.tolist()
    assert len(outputs["velocity"].ragged["count"]) == outputs["regions"].counts.sum()


def test_frames_shape_and_color():
    frames = render(2)
    assert run(Frames(height=32, width=40), frames).dense["data"].shape == (2, 32, 40)
    assert run(Frames(height=32, width=40, color="rgb"), frames).dense["data"].shape == (2, 32, 40, 3)
    with pytest.raises(UsageError):
        Frames(color="hsv")


def test_spec_identity_depends_on_params_decode_and_upstream():
    flow, regions, velocity = build(["velocity"])
    specs = {"flow": flow.spec(DecodeSpec(), {}), "regions": regions.spec(DecodeSpec(), {})}
    base = velocity.spec(DecodeSpec(), specs)
    assert base.params["upstream"]["flow"] == specs["flow"].hash
    assert Velocity(n_bins=4).spec(DecodeSpec(), specs).hash != base.hash
    assert velocity.spec(DecodeSpec(48, 32), specs).hash != base.hash
    specs["flow"] = Flow(preset="fast").spec(DecodeSpec(), {})
    assert velocity.spec(DecodeSpec(), specs).hash != base.hash


def test_registry_parsing_errors():
    assert parse_names("flow, velocity") == ["flow", "velocity"]
    with pytest.raises(UsageError, match="unknown feature 'flwo'"):
        parse_names("flwo")
    assert parse_feature_params(["velocity.n_bins=4", "flow.preset=fast"]) == {
        "velocity": {"n_bins": 4},
        "flow": {"preset": "fast"},
    }
    with pytest.raises(UsageError, match=r"FEATURE\.PARAM=VALUE"):
        parse_feature_params(["n_bins=4"])
    with pytest.raises(UsageError, match="not in this run"):
        build(["frames"], {"flow": {"preset": "fast"}})
    with pytest.raises(UsageError, match="flow"):
        build(["flow"], {"flow": {"nonsense": 1}})
