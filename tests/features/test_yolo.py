"""ONNX detectors in `regions`: tiny random YOLOX/YOLOv8 exports with planted boxes, loaded from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import yolo_onnx
from typer.testing import CliRunner

from vadctl.backbones.weights import WeightResolver
from vadctl.cli import app
from vadctl.common.specs import ClipSpec, DecodeSpec
from vadctl.errors import UsageError, WeightsError
from vadctl.features.deep import attach_weights
from vadctl.features.regions import Regions
from vadctl.features.yolo import OnnxDetector
from vadctl.video.reader import FrameWindow, VideoInfo

FRAME_H, FRAME_W = 48, 96  # letterboxed into 64×64: scale 2/3, image 64×32
RATIO = 2 / 3
TOP = {"yolox": 0, "yolov8": 16}  # YOLOX pads right/bottom, YOLOv8 centres the image
# channel 0 of each family's input: YOLOX reads BGR (blue first), YOLOv8 RGB (red first)
BRIGHT_FIRST_CHANNEL = {"yolox": (10, 20, 230), "yolov8": (230, 20, 10)}


@pytest.fixture(autouse=True)
def no_user_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VADCTL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("VADCTL_CONFIG", raising=False)


def planted(layout: str) -> list[tuple]:
    """(cx, cy, w, h, class, gain) in input pixels: a box, a weaker copy of it, the same box as
    another class, and a faint box elsewhere."""
    top = TOP[layout]
    return [
        (20, top + 12, 16, 8, 2, 1.0),  # scored 230/255 = 0.90
        (22, top + 12, 16, 8, 2, 0.8),  # same class, IoU 0.78 with the first: suppressed
        (21, top + 12, 16, 8, 1, 0.95),  # another class: suppressed by YOLOX's class-agnostic NMS only
        (44, top + 20, 12, 12, 0, 0.2),  # 0.18: below either family's default threshold
    ]


def frames(layout: str, colour=None, n: int = 2) -> np.ndarray:
    return np.full((n, FRAME_H, FRAME_W, 3), colour or BRIGHT_FIRST_CHANNEL[layout], np.uint8)


def in_frame(cx, cy, w, h, layout: str) -> list[float]:
    cy -= TOP[layout]
    return [(cx - w / 2) / RATIO, (cy - h / 2) / RATIO, (cx + w / 2) / RATIO, (cy + h / 2) / RATIO]


def regions_with(layout: str, path: Path, **params) -> Regions:
    regions = Regions(detector=layout, **params)
    attach_weights([regions], WeightResolver(explicit={layout: path}))
    return regions


@pytest.mark.parametrize("layout", ["yolox", "yolov8"])
def test_planted_boxes_come_back_in_frame_pixels_after_letterbox_decoding_and_nms(tmp_path: Path, layout: str):
    path = yolo_onnx(tmp_path / f"{layout}.onnx", layout, planted(layout))
    regions = regions_with(layout, path)
    spec = regions.spec(DecodeSpec(), {})
    assert spec.params["box_score_thresh"] == {"yolox": 0.3, "yolov8": 0.25}[layout]  # the family's default
    info = VideoInfo(2, 10.0, FRAME_H, FRAME_W, FRAME_H, FRAME_W)
    regions.begin(info, ClipSpec())
    boxes, scores, labels = regions._detector.detect(frames(layout))[0]
    # NMS: YOLOX's is class-agnostic, YOLOv8's per class; labels are class index + 1 (0 = foreground)
    assert labels.tolist() == ([3] if layout == "yolox" else [3, 2]) and labels.dtype == np.int16
    np.testing.assert_allclose(boxes[0], in_frame(*planted(layout)[0][:4], layout), atol=1e-3)
    assert scores[0] == pytest.approx(230 / 255, abs=1e-4)
    out = regions.process(FrameWindow(0, frames(layout), None), {})
    assert out.counts.tolist() == [1, 1]  # AI-VAD's overlap filter keeps one of two coinciding boxes
    kept = int(np.flatnonzero((boxes == out.ragged["boxes"][0]).all(axis=1))[0])  # stored as detected
    assert out.ragged["labels"][0] == labels[kept] and out.ragged["scores"][0] == scores[kept]


@pytest.mark.parametrize("layout", ["yolox", "yolov8"])
def test_frames_reach_the_model_in_its_channel_order_and_scale(tmp_path: Path, layout: str):
    path = yolo_onnx(tmp_path / f"{layout}.onnx", layout, planted(layout))
    detector = OnnxDetector(layout, path, score_thresh=0.3)
    swapped = BRIGHT_FIRST_CHANNEL[layout][::-1]  # the bright colour in the other channel: score 10/255
    assert [len(b) for b, _, _ in detector.detect(frames(layout, swapped))] == [0, 0]
    assert [len(b) for b, _, _ in detector.detect(frames(layout))] == ([1, 1] if layout == "yolox" else [2, 2])


def test_dynamic_batch_runs_batched_and_agrees_with_frame_by_frame(tmp_path: Path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, FRAME_H, FRAME_W, 3), dtype=np.uint8)
    images[:, 10:20, 25:35, 0] = 240  # the planted box's score pixel, bright in some frames only
    images[::2, 10:20, 25:35, 0] = 60
    one = OnnxDetector("yolov8", yolo_onnx(tmp_path / "one.onnx", "yolov8", planted("yolov8")), 0.3)
    many = OnnxDetector(
        "yolov8", yolo_onnx(tmp_path / "many.onnx", "yolov8", planted("yolov8"), dynamic_batch=True), 0.3, 4
    )
    assert (one.batch_size, many.batch_size) == (1, 4)
    a, b = one.detect(images), many.detect(images)
    assert [len(x[0]) for x in a] == [len(x[0]) for x in b] == [0, 2, 0, 2, 0]
    for (boxes_a, scores_a, classes_a), (boxes_b, scores_b, classes_b) in zip(a, b, strict=True):
        np.testing.assert_allclose(boxes_a, boxes_b, atol=1e-4)
        np.testing.assert_allclose(scores_a, scores_b, atol=1e-5)
        assert classes_a.tolist() == classes_b.tolist()


def test_a_file_of_the_other_layout_or_no_onnx_at_all_is_a_one_line_error(tmp_path: Path):
    v8 = yolo_onnx(tmp_path / "v8.onnx", "yolov8", planted("yolov8"))
    with pytest.raises(WeightsError, match=r"not YOLOX's layout .* use -p regions\.detector=yolov8") as caught:
        regions_with("yolox", v8).spec(DecodeSpec(), {})
    assert "\n" not in str(caught.value) and str(v8) in str(caught.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model" * 50)
    with pytest.raises(WeightsError, match="not a readable ONNX model") as caught:
        regions_with("yolox", garbage).spec(DecodeSpec(), {})
    assert "\n" not in str(caught.value)


def test_extract_with_a_wrong_layout_file_exits_2_with_one_line(tmp_path: Path, video_dir: Path):
    v8 = yolo_onnx(tmp_path / "v8.onnx", "yolov8", planted("yolov8"))
    store = tmp_path / "s.zarr"
    args = ["extract", str(video_dir), "--store", str(store), "--features", "regions", "-p", "regions.detector=yolox"]
    result = CliRunner().invoke(app, [*args, "--weights", f"yolox={v8}"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "regions: " in lines[0] and "v8.onnx" in lines[0]
    assert not store.exists() or not list(store.rglob("regions*"))


def test_detector_defaults_and_parameter_checks():
    maskrcnn, yolox = Regions(detector="maskrcnn_v2").get_params(), Regions(detector="yolox").get_params()
    assert (maskrcnn["box_score_thresh"], maskrcnn["foreground"]) == (0.8, True)  # AI-VAD's
    assert (yolox["box_score_thresh"], yolox["foreground"]) == (0.3, False)  # YOLOX's operating point
    assert Regions(detector="yolov8", foreground=True).get_params()["foreground"] is True
    assert Regions(detector="yolox", box_score_thresh=0.5).get_params()["box_score_thresh"] == 0.5
    assert "box_score_thresh" not in Regions().get_params()  # foreground-only identity unchanged
    for alone in ({"box_score_thresh": 0.5}, {"foreground": True}, {"persons_only": True}):
        with pytest.raises(UsageError, match=r"need regions\.detector"):
            Regions(**alone)
    with pytest.raises(UsageError, match="use one of maskrcnn_v2, maskrcnn, yolox, yolov8"):
        Regions(detector="yolo")
