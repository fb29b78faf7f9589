"""ImageNet appearance features: random torchvision backbones saved to files, loaded as real weights are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import imagenet_weights, yolo_onnx
from typer.testing import CliRunner
from videos import render

from vadctl.backbones.weights import WeightResolver
from vadctl.cli import app
from vadctl.common.specs import ClipSpec, DecodeSpec
from vadctl.errors import UsageError, WeightsError
from vadctl.features import appearance_model, build
from vadctl.features.appearance import Appearance, AppearanceRegions
from vadctl.features.base import Output
from vadctl.features.deep import attach_weights
from vadctl.models.fit import fit_model
from vadctl.store import FeatureStore
from vadctl.video.reader import FrameWindow, VideoInfo

INFO = VideoInfo(n_frames=6, fps=10.0, height=64, width=96, source_height=64, source_width=96)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("imagenet")
    return {
        "mobilenet_v2": imagenet_weights(folder),
        "renamed": imagenet_weights(folder, naming="renamed"),
        "other": imagenet_weights(folder, seed=1),
        "resnet18": imagenet_weights(folder, "resnet18"),
    }


@pytest.fixture(autouse=True)
def no_user_weights(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VADCTL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("VADCTL_CONFIG", raising=False)


def ready(featurizer, **explicit: Path):
    attach_weights([featurizer], WeightResolver(explicit=explicit))
    return featurizer


def imagenet(image: np.ndarray) -> np.ndarray:
    """ImageNet's normalisation written out here (the encoder does it inside, on uint8 images)."""
    assert image.dtype == np.uint8
    return (image.astype(np.float32) / 255 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array(
        [0.229, 0.224, 0.225], np.float32
    )


def reference(backbone: str, path: Path, images: np.ndarray) -> np.ndarray:
    """torchvision's model with the file's tensors loaded by name, pooled and L2-normalised."""
    from safetensors.torch import load_file

    from vadctl.backbones.torch_compat import import_torchvision

    net = getattr(import_torchvision().models, backbone)(weights=None).eval()
    net.load_state_dict(load_file(str(path)))
    trunk = net.features if backbone == "mobilenet_v2" else torch.nn.Sequential(*list(net.children())[:-1])
    with torch.inference_mode():
        pooled = trunk(torch.from_numpy(images)).mean(dim=(2, 3))
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_frame_embeddings_match_torchvision_on_the_loaded_weights(weights, runtime: str):
    frames = render(3, squares=None, seed=4)
    featurizer = ready(Appearance(runtime=runtime, size=64, device="cpu"), mobilenet_v2=weights["mobilenet_v2"])
    featurizer.begin(INFO, ClipSpec())
    got = featurizer.process(FrameWindow(0, frames, None), {}).dense["embedding"]
    assert got.shape == (3, 1280) and got.dtype == np.float16
    images = np.stack([imagenet(appearance_model.frame_input(f, 64)) for f in frames]).transpose(0, 3, 1, 2)
    assert images.shape[2:] == (64, 96)  # short side to `size`, aspect kept
    np.testing.assert_allclose(
        got.astype(np.float32), reference("mobilenet_v2", weights["mobilenet_v2"], images), atol=2e-3
    )
    np.testing.assert_allclose(np.linalg.norm(got.astype(np.float32), axis=1), 1, atol=2e-3)


def test_tensors_under_other_names_map_in_order_and_resnet_drops_its_classifier(weights):
    frames = render(2, seed=5)
    outputs = {}
    for name in ("mobilenet_v2", "renamed"):
        featurizer = ready(Appearance(size=48, runtime="torch"), mobilenet_v2=weights[name])
        featurizer.begin(INFO, ClipSpec())
        outputs[name] = featurizer.process(FrameWindow(0, frames, None), {}).dense["embedding"]
    np.testing.assert_array_equal(outputs["renamed"], outputs["mobilenet_v2"])
    resnet = ready(Appearance(backbone="resnet18", size=48, runtime="torch"), resnet18=weights["resnet18"])
    resnet.begin(INFO, ClipSpec())
    got = resnet.process(FrameWindow(0, frames, None), {}).dense["embedding"]
    images = np.stack([imagenet(appearance_model.frame_input(f, 48)) for f in frames]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got.astype(np.float32), reference("resnet18", weights["resnet18"], images), atol=2e-3)


def test_identity_holds_the_weights_not_runtime_device_or_batch(weights):
    spec = ready(Appearance(), mobilenet_v2=weights["mobilenet_v2"]).spec(DecodeSpec(), {})
    same = ready(Appearance(runtime="torch", batch_size=3, device="cpu"), mobilenet_v2=weights["mobilenet_v2"])
    other = ready(Appearance(), mobilenet_v2=weights["other"])
    assert same.spec(DecodeSpec(), {}).hash == spec.hash != other.spec(DecodeSpec(), {}).hash
    assert spec.params["weights"].startswith("sha256:")


def test_wrong_files_and_parameters_fail_in_one_line(weights, tmp_path: Path):
    with pytest.raises(WeightsError, match="does not hold torchvision mobilenet_v2 weights") as caught:
        ready(Appearance(), mobilenet_v2=weights["resnet18"]).spec(DecodeSpec(), {})
    assert "\n" not in str(caught.value)
    with pytest.raises(WeightsError, match="appearance: no weights for torchvision resnet50") as caught:
        ready(Appearance(backbone="resnet50")).spec(DecodeSpec(), {})
    assert "resnet50-11ad3fa6.pth" in str(caught.value) and "--weights resnet50=PATH" in str(caught.value)
    with pytest.raises(UsageError, match="use one of mobilenet_v2, resnet18, resnet50"):
        Appearance(backbone="vgg16")
    with pytest.raises(UsageError, match="runtime='tpu'"):
        AppearanceRegions(runtime="tpu")


def test_region_rows_align_with_regions_and_crops_are_their_boxes(weights):
    frames = render(6, squares=None, seed=2)
    featurizers = build(["appearance_regions"], {"appearance_regions": {"size": 32, "runtime": "torch"}})
    attach_weights(featurizers, WeightResolver(explicit={"mobilenet_v2": weights["mobilenet_v2"]}))
    outputs: dict[str, Output] = {}
    for featurizer in featurizers:
        featurizer.begin(INFO, ClipSpec())
        outputs[featurizer.name] = featurizer.process(
            FrameWindow(0, frames, None), {d: outputs[d] for d in featurizer.requires}
        )
    regions, crops = outputs["regions"], outputs["appearance_regions"]
    assert crops.counts.tolist() == regions.counts.tolist() and regions.counts.sum() > 0
    boxes = regions.ragged["boxes"]
    assert crops.ragged["embedding"].shape == (len(boxes), 1280)
    frame_of_row = np.repeat(np.arange(len(frames)), regions.counts)
    encoder = featurizers[-1].encoder
    alone = encoder.embed([appearance_model.crop_input(frames[frame_of_row[0]], boxes[0], 32)], 1)
    np.testing.assert_allclose(alone[0].astype(np.float32), crops.ragged["embedding"][0].astype(np.float32), atol=1e-3)


def test_detector_regions_with_appearance_feed_ai_vad_deep_attribute(
    tmp_path: Path, video_dir: Path, weights, monkeypatch
):
    """The weighted recipe end to end on tiny models: YOLOX regions + velocity + appearance_regions
    extracted beside the default foreground features; AI-VAD picks the regions that carry the most
    attributes and the ImageNet crops as its deep attribute."""
    detector = yolo_onnx(tmp_path / "yolox.onnx", "yolox", [(20, 12, 16, 8, 0, 4.0)])  # fires on any texture
    store = tmp_path / "s.zarr"
    runner = CliRunner()
    base = ["extract", str(video_dir), "--store", str(store), "-q"]
    assert runner.invoke(app, [*base, "--features", "regions,velocity"]).exit_code == 0
    weighted = [
        *("--features", "regions,velocity,appearance_regions,appearance", "-p", "regions.detector=yolox"),
        *("-p", "regions.foreground=true"),  # AI-VAD's merge, as for Mask R-CNN
        *("-p", "appearance_regions.size=32", "-p", "appearance.size=32", "--clip-len", "8"),
        *("-w", f"yolox={detector}", "-w", f"mobilenet_v2={weights['other']}"),
    ]
    result = runner.invoke(app, [*base, *weighted])
    assert result.exit_code == 0, result.output
    fitted = fit_model(FeatureStore(store, read_only=True), "aivad", {}, "train")
    features = fitted.model.features_
    assert features["deep"].name == "appearance_regions"
    assert features["regions"].params["detector"] == "yolox"
    assert features["velocity"].params["upstream"]["regions"] == features["regions"].hash
    # FUVAS and the scene-aware model take the per-frame embeddings (FUVAS averages them per clip)
    store_ = FeatureStore(store, read_only=True)
    fuvas = fit_model(store_, "fuvas", {"feature": "appearance"}, "train")
    assert fuvas.model.shape_ == (1280,) and fuvas.calibration.n_frames == 24 + 20 + 28
    quick = {"feature": "appearance", "d_model": 16, "latent_dim": 4, "heads": 2, "layers": 1, "steps": 2}
    scene = fit_model(store_, "sceneaware", {**quick, "mode": "reconstruction", "device": "cpu"}, "train")
    assert scene.model.features_["frames"].name == "appearance"


class TaggingEncoder:
    """Stands in for the network where the test must see which crop a row came from: each crop's
    embedding is its pixel sum (crops of random frames all differ); counts the crops embedded."""

    def __init__(self):
        self.embedded = 0

    def embed(self, images, batch_size):
        self.embedded += len(images)
        return np.array([[float(image.sum())] for image in images], np.float64).reshape(-1, 1)


def regions_output(boxes_per_frame) -> Output:
    boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes_per_frame]
    return Output(counts=np.array([len(b) for b in boxes]), memory={"boxes": boxes})


def test_refresh_reuses_a_tracks_embedding_until_a_refresh_frame(weights):
    """Box A walks 1 px per frame (IoU 0.9 with the frame before: it continues), box B appears on
    frame 1. With refresh 2 the crops embedded are frame 0: A; frame 1: B (A keeps frame 0's
    embedding); frame 2: A and B (a refresh frame); frame 3: none: 4 crops instead of 7."""
    frames = np.random.default_rng(3).integers(0, 256, (4, 64, 96, 3), dtype=np.uint8)  # every crop differs
    a = [[10 + t, 10, 30 + t, 40] for t in range(4)]
    b = [40, 20, 70, 50]
    boxes = [[a[0]], [a[1], b], [a[2], b], [a[3], b]]
    tracked = ready(AppearanceRegions(size=32, runtime="torch", refresh=2), mobilenet_v2=weights["mobilenet_v2"])
    tracked.begin(INFO, ClipSpec())
    real = tracked.encoder
    tracked.encoder = TaggingEncoder()
    got = tracked.process(FrameWindow(0, frames, None), {"regions": regions_output(boxes)}).ragged["embedding"]
    assert tracked.encoder.embedded == 4

    def tag(t, box):
        return float(appearance_model.crop_input(frames[t], np.array(box, np.float32), 32).sum())

    # rows: f0 A | f1 A, B | f2 A, B | f3 A, B
    expected = [tag(0, a[0]), tag(0, a[0]), tag(1, b), tag(2, a[2]), tag(2, b), tag(2, a[2]), tag(2, b)]
    assert got[:, 0].tolist() == expected
    assert tag(1, a[1]) != tag(0, a[0])  # the reuse is visible: the crops differ

    tracked.encoder = real  # and with the network: the rows computed where due are the every-frame ones
    tracked.begin(INFO, ClipSpec())
    every = ready(AppearanceRegions(size=32, runtime="torch", refresh=1), mobilenet_v2=weights["mobilenet_v2"])
    every.begin(INFO, ClipSpec())
    full = every.process(FrameWindow(0, frames, None), {"regions": regions_output(boxes)}).ragged["embedding"]
    got = tracked.process(FrameWindow(0, frames, None), {"regions": regions_output(boxes)}).ragged["embedding"]
    np.testing.assert_array_equal(got[[0, 2, 3, 4]], full[[0, 2, 3, 4]])
    np.testing.assert_array_equal(got[[1, 5, 6]], full[[0, 3, 4]])


def test_refresh_across_windows_and_segments_equals_one_pass(weights):
    frames = np.random.default_rng(6).integers(0, 256, (8, 64, 96, 3), dtype=np.uint8)
    boxes = [[[5 + t, 8, 25 + t, 40], [50, 10, 80, 30]] for t in range(8)]
    featurizer = ready(AppearanceRegions(size=32, runtime="torch", refresh=4), mobilenet_v2=weights["mobilenet_v2"])
    assert featurizer.alignment == 4
    featurizer.begin(INFO, ClipSpec())
    featurizer.encoder = TaggingEncoder()  # rows tell which crop they came from
    whole = featurizer.process(FrameWindow(0, frames, None), {"regions": regions_output(boxes)}).ragged["embedding"]
    featurizer._last = None  # begin() would load the network again
    windows = [
        featurizer.process(FrameWindow(s, frames[s : s + 3], None), {"regions": regions_output(boxes[s : s + 3])})
        for s in (0, 3, 6)
    ]
    np.testing.assert_array_equal(np.concatenate([w.ragged["embedding"] for w in windows]), whole)
    featurizer.start_at(4, 0)  # a segment from frame 4, a multiple of refresh
    segment = featurizer.process(FrameWindow(4, frames[4:], frames[3]), {"regions": regions_output(boxes[4:])})
    np.testing.assert_array_equal(segment.ragged["embedding"], whole[8:])


def test_refresh_one_keeps_the_identity_and_the_defaults_are_the_ped1_choice(weights):
    regions = ready(build(["regions"], {})[0]).spec(DecodeSpec(), {})
    every = AppearanceRegions(size=224, refresh=1)  # the defaults before the option: entries keep their key
    before = ready(every, mobilenet_v2=weights["mobilenet_v2"]).spec(DecodeSpec(), {"regions": regions})
    assert "refresh" not in before.params and before.params["size"] == 224
    tracked = ready(AppearanceRegions(), mobilenet_v2=weights["mobilenet_v2"])
    params = tracked.spec(DecodeSpec(), {"regions": regions}).params
    assert (params["size"], params["refresh"]) == (112, 4)
    with pytest.raises(UsageError, match="refresh=3"):
        AppearanceRegions(refresh=3)
