"""Deep featurizers with local weights: tiny random models saved to files, loaded as real weights are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from commands import extract_cmd
from tiny_models import TINY_CLIP, raft_small_weights, register_tiny_clip, tiny_clip_weights, x3d_weights
from typer.testing import CliRunner
from videos import Square, make_video, render

from vadctl import api
from vadctl.backbones.torch_compat import has_compiled_ops, import_extra, import_torchvision
from vadctl.backbones.weights import WeightFile, WeightResolver, load_tensors
from vadctl.cli import app
from vadctl.common.specs import ClipSpec, DecodeSpec
from vadctl.errors import FeatureError, UsageError, WeightsError
from vadctl.features import build
from vadctl.features.base import Output
from vadctl.features.clip import Clip, ClipRegions
from vadctl.features.clip_model import crop
from vadctl.features.deep import attach_weights
from vadctl.features.flow import Flow
from vadctl.features.pose import to_box, widened
from vadctl.features.regions import Regions, merge_detections
from vadctl.features.x3d import X3D
from vadctl.models.files import load_model
from vadctl.models.fit import fit_model
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore
from vadctl.video.reader import FrameWindow, VideoInfo

runner = CliRunner()
INFO = VideoInfo(n_frames=8, fps=10.0, height=64, width=96, source_height=64, source_width=96)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    return {
        "clip": tiny_clip_weights(folder),
        "clip_other": tiny_clip_weights(folder, seed=1),
        "x3d": x3d_weights(folder),
        "raft_small": raft_small_weights(folder),
        "folder": folder,
    }


@pytest.fixture(autouse=True)
def isolated_weight_locations(tmp_path: Path, monkeypatch):
    """No test sees the user's weights, config or caches."""
    monkeypatch.setenv("VADCTL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("VADCTL_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("VADCTL_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def resolver(**explicit: Path) -> WeightResolver:
    return WeightResolver(explicit=explicit)


def ready(featurizer, **explicit: Path):
    attach_weights([featurizer], resolver(**explicit))
    return featurizer


def tiny_clip(weights, cls=Clip, **params):
    return ready(cls(model=TINY_CLIP, pretrained="custom", **params), clip=weights["clip"])


def reference_clip(path: Path):
    """The tiny CLIP loaded directly with open_clip, to compare vadctl's output against."""
    open_clip = import_extra("open_clip", "clip", "clip")
    model = open_clip.create_model(TINY_CLIP, pretrained=None)
    open_clip.load_checkpoint(model, str(path), strict=True)
    return model.eval()


def reference_embeddings(
    path: Path, images: list[np.ndarray], resize_mode: str | None = None, pil: bool = True
) -> np.ndarray:
    """Embeddings computed without vadctl: images through open_clip's own evaluation transform, as PIL
    images or (`pil=False`, where PIL's resampling would differ from torch's) as float tensors in [0, 1]."""
    from PIL import Image

    open_clip = import_extra("open_clip", "clip", "clip")
    model = reference_clip(path)
    cfg = model.visual.preprocess_cfg
    transform = open_clip.image_transform(
        cfg["size"], is_train=False, mean=cfg["mean"], std=cfg["std"], resize_mode=resize_mode or cfg["resize_mode"]
    )

    def load(image: np.ndarray):
        if pil:
            return Image.fromarray(np.ascontiguousarray(image))
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255

    batch = torch.stack([transform(load(image)) for image in images])
    with torch.no_grad():
        return model.encode_image(batch, normalize=True).numpy()


# ----- the torchvision shim and offline set-up ---------------------------------------------------------
def test_torchvision_imports_without_pretending_compiled_ops_exist():
    tv = import_torchvision()
    assert tv.models.optical_flow.raft_small is not None  # pure-Python model definitions work
    if has_compiled_ops():
        pytest.skip("this torchvision has its compiled ops")
    with pytest.raises(RuntimeError, match="custom C\\+\\+ ops"):
        tv.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)


def test_importing_vadctl_imports_no_deep_learning_library():
    code = (
        "import sys, vadctl.cli, vadctl.features; "
        "print(sorted(m for m in ('torch', 'open_clip', 'pytorchvideo', 'mediapipe') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_deep_imports_are_offline_and_missing_extras_name_the_extra():
    import_extra("open_clip", "clip", "clip")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(UsageError, match=r"feature clip needs the 'clip' extra .*pip install 'vadctl\[clip\]'"):
        import_extra("vadctl_no_such_module", "clip", "clip")


# ----- weight resolution -------------------------------------------------------------------------------
WF = WeightFile("x3d", "x3d", "X3D x3d_s", ("x3d-x3d_s.safetensors", "X3D_S.pyth"), torch_hub=("X3D_S.pyth",))


def test_missing_weights_say_what_was_looked_for_where(tmp_path: Path):
    with pytest.raises(WeightsError) as caught:
        WeightResolver(folder=tmp_path / "w").resolve(WF)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("x3d: no weights for X3D x3d_s")
    assert "x3d-x3d_s.safetensors" in message and str(tmp_path / "w") in message
    assert "X3D_S.pyth in the torch hub cache" in message and "--weights x3d=PATH" in message


def test_resolution_order_explicit_config_folder_caches(tmp_path: Path, weights, monkeypatch):
    folder, hub = tmp_path / "w", tmp_path / "torch-home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(weights["x3d"], hub / "X3D_S.pyth")
    assert WeightResolver(folder=folder).resolve(WF).origin == "torch hub cache"
    folder.mkdir()
    shutil.copy(weights["x3d"], folder / "x3d-x3d_s.safetensors")
    assert WeightResolver(folder=folder).resolve(WF).origin == "weights dir"
    config = tmp_path / "vadctl.toml"
    config.write_text('[weights]\nx3d = "mine/x3d.safetensors"\n')
    (tmp_path / "mine").mkdir()
    shutil.copy(weights["x3d"], tmp_path / "mine" / "x3d.safetensors")
    monkeypatch.setenv("VADCTL_CONFIG", str(config))
    found = WeightResolver(folder=folder).resolve(WF)
    assert found.origin.startswith("config") and found.path == tmp_path / "mine" / "x3d.safetensors"
    explicit = WeightResolver(explicit={"x3d": weights["x3d"]}, folder=folder).resolve(WF)
    assert explicit.origin == "--weights" and explicit.path == weights["x3d"]
    with pytest.raises(WeightsError, match="does not exist"):
        WeightResolver(explicit={"x3d": tmp_path / "typo.safetensors"}, folder=folder).resolve(WF)


def test_hugging_face_cache_is_found_offline(tmp_path: Path, weights):
    from vadctl.features.clip_model import weight_file

    wf = weight_file("clip", "ViT-B-32", "openai")
    repo, filename = wf.hf[0]
    assert repo == "timm/vit_base_patch32_clip_224.openai" and filename == "open_clip_model.safetensors"
    snapshot = tmp_path / "hf-cache" / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    shutil.copy(weights["clip"], snapshot / filename)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    found = WeightResolver(folder=tmp_path / "w").resolve(wf)
    assert found.origin == "Hugging Face cache" and found.path == snapshot / filename


def test_unknown_weight_keys_and_bad_options_are_usage_errors(weights):
    with pytest.raises(UsageError, match="no feature of this run uses it"):
        attach_weights(build(["frames"]), WeightResolver(explicit={"clip": weights["clip"]}))
    result = runner.invoke(app, ["extract", ".", "--features", "frames", "--weights", "clip"])
    assert result.exit_code == 2 and "expected KEY=PATH" in result.output


def test_identity_is_the_weights_content_not_their_path(tmp_path: Path, weights):
    spec = tiny_clip(weights).spec(DecodeSpec(), {})
    assert spec.params["weights"].startswith("sha256:") and "device" not in spec.params
    moved = shutil.copy(weights["clip"], tmp_path / "elsewhere.safetensors")
    same = ready(Clip(model=TINY_CLIP, pretrained="custom", batch_size=3, device="cpu"), clip=Path(moved))
    assert same.spec(DecodeSpec(), {}).hash == spec.hash  # path, device and batch size are not identity
    other = ready(Clip(model=TINY_CLIP, pretrained="custom"), clip=weights["clip_other"])
    assert other.spec(DecodeSpec(), {}).hash != spec.hash


def test_corrupt_foreign_and_pickled_weight_files_fail_in_one_line(tmp_path: Path, weights):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 definitely not safetensors" * 10)
    truncated = tmp_path / "truncated.pt"
    torch.save(load_tensors(weights["x3d"], "x3d"), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "note": WeightFile("k", "f", "d", ("n",))}, pickled)
    cases = [
        (ready(X3D(), x3d=garbage), "not a readable safetensors file"),
        (ready(X3D(), x3d=truncated), "cannot load as a torch checkpoint"),
        (ready(X3D(), x3d=pickled), "refused without trusting the pickle"),
        (ready(X3D(), x3d=weights["clip"]), "does not hold X3D x3d_s weights"),
        (tiny_clip({"clip": weights["x3d"]}), f"does not hold CLIP {TINY_CLIP} weights"),
    ]
    for featurizer, message in cases:
        with pytest.raises(WeightsError, match=message) as caught:
            featurizer.spec(DecodeSpec(), {}, ClipSpec())
        assert "\n" not in str(caught.value)
        assert str(caught.value).startswith(f"{featurizer.name}: ")


def test_checkpoint_containers_load_like_pytorchvideo_files(tmp_path: Path, weights):
    """pytorchvideo's X3D_S.pyth wraps the state dict as {'model_state': ...}; torch.save'd, weights_only."""
    state = load_tensors(weights["x3d"], "x3d")
    pyth = tmp_path / "X3D_S.pyth"
    torch.save({"model_state": state, "epoch": 300}, pyth)
    a = ready(X3D(), x3d=pyth).spec(DecodeSpec(), {}, ClipSpec())
    b = ready(X3D(), x3d=weights["x3d"]).spec(DecodeSpec(), {}, ClipSpec())
    assert a.params["weights"] != b.params["weights"]  # different files, same tensors: identity is the file
    assert load_tensors(pyth, "x3d").keys() == state.keys()


# ----- clip and clip_regions ----------------------------------------------------------------------------
def test_clip_frame_embeddings_match_open_clip_on_the_loaded_weights(weights):
    frames = render(5)
    featurizer = tiny_clip(weights)
    featurizer.begin(INFO, ClipSpec())
    out = featurizer.process(FrameWindow(0, frames, None), {})
    embedding = out.dense["embedding"]
    assert embedding.shape == (5, 32) and embedding.dtype == np.float16
    assert np.allclose(np.linalg.norm(embedding.astype(np.float32), axis=1), 1, atol=2e-3)
    expected = reference_embeddings(weights["clip"], list(frames))  # open_clip's own PIL transform
    np.testing.assert_allclose(embedding.astype(np.float32), expected, atol=2e-3)
    other = ready(Clip(model=TINY_CLIP, pretrained="custom"), clip=weights["clip_other"])
    other.begin(INFO, ClipSpec())
    assert not np.allclose(other.process(FrameWindow(0, frames, None), {}).dense["embedding"], embedding, atol=0.05)


def test_clip_every_nth_frame_is_ragged_with_explicit_frames(weights):
    featurizer = tiny_clip(weights, every=3)
    featurizer.begin(INFO, ClipSpec())
    assert featurizer.arrays(INFO)["embedding"].ragged
    out = featurizer.process(FrameWindow(4, render(5), None), {})
    assert out.counts.tolist() == [0, 0, 1, 0, 0]  # frames 4..8: only frame 6 is a multiple of 3
    assert out.ragged["embedding"].shape == (1, 32)
    none = featurizer.process(FrameWindow(7, render(2), None), {})  # frames 7, 8: nothing sampled
    assert none.counts.tolist() == [0, 0] and none.ragged["embedding"].shape == (0, 32)


def test_region_crops_map_to_their_boxes(weights):
    frames = render(2, squares=[Square(10, 10, 0, 0, size=20, value=230), Square(60, 30, 0, 0, size=24, value=70)])
    boxes = [np.zeros((0, 4), np.float32), np.array([[60, 30, 84, 54], [10.4, 9.6, 29.5, 30.2]], np.float32)]
    featurizer = tiny_clip(weights, cls=ClipRegions)
    featurizer.begin(INFO, ClipSpec())
    out = featurizer.process(FrameWindow(0, frames, None), {"regions": Output(memory={"boxes": boxes})})
    assert out.counts.tolist() == [0, 2]
    embedding = out.ragged["embedding"]
    assert embedding.shape == (2, 32) and embedding.dtype == np.float16
    by_hand = [frames[1][30:54, 60:84], frames[1][9:31, 10:30]]  # boxes rounded outwards: x 10..30, y 9..31
    np.testing.assert_array_equal(crop(frames[1], boxes[1][1]), by_hand[1])
    expected = reference_embeddings(weights["clip"], by_hand, resize_mode="squash", pil=False)
    np.testing.assert_allclose(embedding.astype(np.float32), expected, atol=2e-3)
    assert not np.allclose(embedding[0], embedding[1], atol=0.05)
    shifted = reference_embeddings(weights["clip"], [frames[1][10:32, 10:30]], resize_mode="squash", pil=False)
    assert np.abs(shifted[0] - embedding[1]).max() > 0.01  # a crop one row off is told apart at this tolerance


@pytest.mark.parametrize(
    "box, rows, cols",
    [
        ([10.4, 9.6, 29.5, 30.2], (9, 31), (10, 30)),  # rounded outwards
        ([-5, -3, 20, 12], (0, 12), (0, 20)),  # clipped at the top-left
        ([90.5, 60.2, 120, 99], (60, 64), (90, 96)),  # clipped at the bottom-right
        ([40, 20, 40, 20], (20, 21), (40, 41)),  # empty box: one pixel
        ([200, 100, 210, 110], (63, 64), (95, 96)),  # wholly outside: the nearest corner pixel
    ],
)
def test_crop_is_the_box_sliced_by_hand(box, rows, cols):
    frame = np.arange(64 * 96 * 3, dtype=np.int64).reshape(64, 96, 3)
    np.testing.assert_array_equal(crop(frame, np.array(box, np.float32)), frame[rows[0] : rows[1], cols[0] : cols[1]])


def test_clip_regions_rows_align_with_regions(weights):
    frames = render(4, squares=[Square(10, 20, 3.0, 0.0), Square(70, 30, -3.0, 0.0)])
    featurizers = build(["clip_regions"], {"clip_regions": {"model": TINY_CLIP, "pretrained": "custom"}})
    attach_weights(featurizers, resolver(clip=weights["clip"]))
    outputs = {}
    for f in featurizers:
        f.begin(INFO, ClipSpec())
        outputs[f.name] = f.process(FrameWindow(0, frames, None), {d: outputs[d] for d in f.requires})
    assert outputs["clip_regions"].counts.tolist() == outputs["regions"].counts.tolist()
    assert len(outputs["clip_regions"].ragged["embedding"]) == outputs["regions"].counts.sum() > 0


def test_bad_clip_parameters_are_usage_errors(weights):
    with pytest.raises(UsageError, match=r"clip\.every"):
        Clip(every=0)
    with pytest.raises(UsageError, match="not an open_clip model"):
        ready(Clip(model="ViT-Nope"), clip=weights["clip"]).spec(DecodeSpec(), {})
    with pytest.raises(UsageError, match="not a known tag for ViT-B-32"):
        ready(Clip(model="ViT-B-32", pretrained="imaginary"), clip=weights["clip"]).spec(DecodeSpec(), {})


# ----- x3d ------------------------------------------------------------------------------------------------
def run_x3d(featurizer: X3D, frames: np.ndarray, clips: ClipSpec, window: int) -> np.ndarray:
    info = VideoInfo(len(frames), 10.0, *frames.shape[1:3], *frames.shape[1:3])
    featurizer.begin(info, clips)
    rows = [
        featurizer.process(FrameWindow(s, frames[s : s + window], None), {}).dense["embedding"]
        for s in range(0, len(frames), window)
    ]
    tail = featurizer.finish()
    return np.concatenate(rows + ([tail.dense["embedding"]] if tail else []))


def test_x3d_pooled_and_spatial_features_follow_the_clip_table(weights):
    frames = render(20)
    clips = ClipSpec(length=8, stride=4)
    pooled = run_x3d(ready(X3D(size=96), x3d=weights["x3d"]), frames, clips, window=6)
    assert pooled.shape == (4, 192) and pooled.dtype == np.float32  # table: [0,8) [4,12) [8,16) [12,20)
    spatial = X3D(spatial_pool=False, pooling_kernel_size=2, size=128)
    maps = run_x3d(ready(spatial, x3d=weights["x3d"]), frames, clips, 32)
    assert maps.shape == (4, 192, 8, 2, 3) and maps.dtype == np.float16  # 128x192 input → 4x6 → pooled by 2
    # the same clip computed directly: pytorchvideo's network on the loaded weights, layer blocks.4
    from vadctl.features.x3d import build_network

    net = build_network("x3d_s").eval()
    net.load_state_dict(load_tensors(weights["x3d"], "x3d"))
    x = torch.from_numpy(frames[4:12]).permute(3, 0, 1, 2).float().div(255)  # (3, T, H, W)
    x = torch.nn.functional.interpolate(x, size=(96, 144), mode="bilinear", antialias=True, align_corners=False)
    x = ((x - 0.45) / 0.225)[None]
    with torch.no_grad():
        for block in net.blocks[:5]:
            x = block(x)
    np.testing.assert_allclose(pooled[1], x.mean(dim=(2, 3, 4))[0].numpy(), rtol=1e-3, atol=1e-4)


def test_x3d_short_video_gives_one_padded_clip(weights):
    out = run_x3d(ready(X3D(size=64), x3d=weights["x3d"]), render(5), ClipSpec(length=8, stride=4), window=3)
    assert out.shape == (1, 192) and np.isfinite(out).all()


def test_x3d_parameters_are_checked():
    for params, message in [
        ({"layer": "blocks.5"}, "classification head"),
        ({"backbone": "x3d_xxl"}, "x3d.backbone"),
        ({"pooling_kernel_size": 0}, "pooling_kernel_size"),
    ]:
        with pytest.raises(UsageError, match=message):
            X3D(**params)


# ----- RAFT and detector backends ---------------------------------------------------------------------
def test_existing_flow_and_regions_identities_are_unchanged():
    """Entries extracted before the RAFT/detector backends existed must stay valid."""
    assert Flow().spec(DecodeSpec(), {}).hash == "54bf14ed5b74"
    assert Regions().spec(DecodeSpec(), {}).hash == "0d12a1bb8bc9"
    assert set(Regions().spec(DecodeSpec(), {}).params) == {
        "kernel_size",
        "binary_threshold",
        "min_bbox_area",
        "max_bbox_overlap",
        "dilation",
        "decode",
    }


def test_raft_flow_backend_from_local_weights(weights):
    flow = ready(Flow(method="raft_small"), raft_small=weights["raft_small"])
    spec = flow.spec(DecodeSpec(), {})
    assert spec.params["method"] == "raft_small" and spec.params["weights"].startswith("sha256:")
    flow.begin(INFO, ClipSpec())
    frames = render(3)
    out = flow.process(FrameWindow(0, frames, None), {})
    assert out.memory["flow"].shape == (3, 64, 96, 2) and out.memory["flow"].dtype == np.float32
    assert np.all(out.memory["flow"][0] == 0) and np.isfinite(out.memory["flow"]).all()
    assert out.dense["data"].shape == (3, 32, 48, 2)
    later = flow.process(FrameWindow(3, render(2), frames[-1]), {})
    assert not np.all(later.memory["flow"][0] == 0)  # the window's first pair uses the frame before it
    with pytest.raises(WeightsError, match="flow: no weights for torchvision raft_large"):
        ready(Flow(method="raft")).spec(DecodeSpec(), {})


def test_detector_needs_compiled_ops_and_says_so(tmp_path: Path):
    if has_compiled_ops():
        pytest.skip("this torchvision has its compiled ops: the detector runs (covered on GPU machines)")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "maskrcnn_resnet50_fpn_v2.safetensors").write_bytes(b"unused")
    regions = ready(Regions(detector="maskrcnn_v2"))
    regions.use_weights(WeightResolver(folder=tmp_path / "w"))
    with pytest.raises(UsageError, match="needs torchvision's compiled ops") as caught:
        regions.spec(DecodeSpec(), {})
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match=r"need regions\.detector"):
        Regions(persons_only=True)


def test_detections_merge_with_foreground_as_ai_vad_does():
    mask = np.zeros((60, 80), np.uint8)
    mask[10:30, 10:30] = 1  # inside the detected person: not a second region
    mask[40:55, 50:70] = 1  # moving, undetected: a foreground region
    detected = (np.array([[8, 8, 32, 32], [0, 0, 5, 5]], np.float32), np.array([0.9, 0.95], np.float32))
    labels = np.array([1, 3], np.int16)
    boxes, scores, labs, fill = merge_detections(*detected, labels, mask, False, 100, 0.65)
    assert boxes.tolist() == [[8, 8, 32, 32], [50, 40, 70, 55]]  # the 5x5 car is under min area
    assert scores.tolist() == pytest.approx([0.9, 0.5]) and labs.tolist() == [1, 0]
    assert fill[0] == pytest.approx(400 / 576) and fill[1] == 1
    persons, *_ = merge_detections(*detected, labels, mask, True, 0, 0.65)
    assert persons.tolist() == [[8, 8, 32, 32]]  # persons only drops foreground boxes too, as AI-VAD


def test_pose_geometry_maps_crop_keypoints_to_the_box():
    box = np.array([20, 10, 40, 50], np.float32)
    crop_box = widened(box, 0.25, 240, 360)
    assert crop_box == (15, 0, 45, 60)  # clipped at the top edge
    corners = np.array([[5 / 30, 10 / 60], [25 / 30, 50 / 60]], np.float32)  # box corners in crop units
    np.testing.assert_allclose(to_box(corners, crop_box, box), [[0, 0], [1, 1]], atol=1e-6)


# ----- through the command line --------------------------------------------------------------------------
def vadctl(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def read(store: Path, video: str, feature: str) -> dict[str, np.ndarray]:
    fs = FeatureStore(store, read_only=True)
    entry = fs.entry(fs.video("train", video), fs.resolve(feature, "train"))
    data = {name: entry[name] for name in entry.array_names}
    if entry.offsets is not None:
        data["offsets"] = entry.offsets
    return data


def test_extract_deep_features_then_rerun_is_a_no_op(video_dir: Path, store_path: Path, weights, tmp_path: Path):
    register_tiny_clip(weights["folder"])
    args = [
        "extract",
        video_dir,
        "--store",
        store_path,
        "-q",
        "--features",
        "regions,clip,clip_regions,x3d",
        "-p",
        f"clip.model={TINY_CLIP}",
        "-p",
        "clip.pretrained=custom",
        "-p",
        f"clip_regions.model={TINY_CLIP}",
        "-p",
        "clip_regions.pretrained=custom",
        "--weights",
        f"clip={weights['clip']}",
        "--weights",
        f"x3d={weights['x3d']}",
        "--clip-len",
        "8",
        "-p",
        "x3d.size=64",  # a tenth of x3d_s's work at 160 px, run twice (--force); the default size: below
    ]
    first = vadctl(*args)
    assert first.exit_code == 0, first.output
    clip = read(store_path, "a", "clip")["embedding"]
    assert clip.shape == (24, 32) and clip.dtype == np.float16
    regions, crops = read(store_path, "a", "regions"), read(store_path, "a", "clip_regions")
    np.testing.assert_array_equal(crops["offsets"], regions["offsets"])
    x3d = read(store_path, "cam/c", "x3d")
    assert x3d["embedding"].shape == (len(x3d["clips"]), 192) and x3d["clips"].tolist()[0] == [0, 8]
    stamps = {p: p.stat().st_mtime_ns for p in store_path.rglob("zarr.json")}
    again = vadctl(*args)
    assert "nothing new: all 3 videos up to date" in again.output
    assert {p: p.stat().st_mtime_ns for p in store_path.rglob("zarr.json")} == stamps
    forced = vadctl(*args, "--force")
    assert forced.exit_code == 0
    np.testing.assert_array_equal(read(store_path, "a", "clip")["embedding"], clip)  # deterministic
    other = vadctl(*[a if a != f"clip={weights['clip']}" else f"clip={weights['clip_other']}" for a in args])
    assert other.exit_code == 0
    record = FeatureStore(store_path).video("train", "a")
    assert sorted(s["name"] for s in record.features.values()).count("clip") == 2  # new weights, new entry


def test_models_use_the_extracted_deep_features(video_dir: Path, store_path: Path, weights, tmp_path: Path):
    """AI-VAD picks up clip_regions as its deep attribute and FUVAS picks x3d over motion, straight from
    what `vadctl extract` cached with local weights."""
    register_tiny_clip(weights["folder"])
    common = ["--store", store_path, "-q", "--clip-len", "8", "--weights", f"clip={weights['clip']}"]
    deep = [
        "--features",
        "regions,velocity,motion,clip_regions,x3d",
        "-p",
        f"clip_regions.model={TINY_CLIP}",
        "-p",
        "clip_regions.pretrained=custom",
        "--weights",
        f"x3d={weights['x3d']}",
    ]
    assert vadctl("extract", video_dir, *common, *deep).exit_code == 0
    store = FeatureStore(store_path, read_only=True)
    aivad = fit_model(store, "aivad", {"smoothing_sigma": 0.0}, "train")
    assert set(aivad.model.features_) - {"motion"} == {"velocity", "regions", "deep"}  # motion: when extracted
    assert aivad.model.features_["deep"].name == "clip_regions"
    fuvas = fit_model(store, "fuvas", {}, "train", out=tmp_path / "fuvas.safetensors")
    assert fuvas.model.features_["clips"].name == "x3d"
    frames, _ = score_model(load_model(tmp_path / "fuvas.safetensors"), store, "train")
    assert frames.height == 24 + 20 + 28 and frames["score"].is_finite().all()


def test_sceneaware_reads_subsampled_clip_embeddings(video_dir: Path, store_path: Path, weights, tmp_path: Path):
    """CLIP every 2nd frame is ragged; the sequence model holds each embedding over the next frame."""
    register_tiny_clip(weights["folder"])
    params = ["-p", f"clip.model={TINY_CLIP}", "-p", "clip.pretrained=custom", "-p", "clip.every=2"]
    args = ["extract", video_dir, "--store", store_path, "-q", "--features", "clip", *params]
    assert vadctl(*args, "--weights", f"clip={weights['clip']}").exit_code == 0
    store = FeatureStore(store_path, read_only=True)
    quick = {"mode": "reconstruction", "d_model": 16, "latent_dim": 4, "heads": 2, "layers": 1, "steps": 2}
    fitted = fit_model(store, "sceneaware", {**quick, "device": "cpu"}, "train", out=tmp_path / "s.safetensors")
    assert fitted.model.features_["frames"].name == "clip"
    frames, _ = score_model(load_model(tmp_path / "s.safetensors"), store, "train")
    assert frames.height == 24 + 20 + 28 and frames["score"].is_finite().all()


def test_held_rows_fill_frames_between_samples():
    from vadctl.models.frame_embeddings import held_rows

    values = np.arange(3, dtype=np.float32)[:, None]
    offsets = np.array([0, 0, 1, 1, 2, 2, 3])  # frames 1, 3 and 5 sampled
    assert held_rows(values, offsets, "clip").ravel().tolist() == [0, 0, 0, 1, 1, 2]
    with pytest.raises(FeatureError, match="several rows per frame"):
        held_rows(values, np.array([0, 2, 3]), "clip_regions")


def test_extract_with_missing_weights_fails_before_any_video(video_dir: Path, store_path: Path):
    result = vadctl("extract", video_dir, "--store", store_path, "--features", "x3d")
    assert result.exit_code == 2
    assert "x3d: no weights for X3D x3d_s" in result.output and "--weights x3d=PATH" in result.output
    assert not store_path.exists() or not FeatureStore(store_path).videos("train")


def test_weights_command_lists_every_featurizer(tmp_path: Path, weights):
    folder = tmp_path / "no-weights"
    folder.mkdir()
    shutil.copy(weights["x3d"], folder / "x3d-x3d_s.safetensors")
    result = vadctl("weights", "--json")
    assert result.exit_code == 0, result.output
    rows = {(r["feature"], json.dumps(r["params"])): r for r in json.loads(result.output)["features"]}
    x3d = rows[("x3d", "{}")]
    assert x3d["status"] == "found" and x3d["origin"] == "weights dir" and len(x3d["sha256"]) == 16
    assert rows[("clip", "{}")]["status"] == "missing"
    assert rows[("clip", "{}")]["expected"] == "clip-ViT-L-14-openai.safetensors"
    assert rows[("flow", '{"method": "raft"}')]["expected"] == "raft_large.safetensors"
    assert rows[("frames", "{}")]["status"] == "no weights"
    assert {"velocity", "regions", "pose", "clip_regions"} <= {feature for feature, _ in rows}
    shutil.copy(weights["clip"], folder / "x3d-x3d_s.safetensors")
    wrong = json.loads(vadctl("weights", "--features", "x3d", "--json").output)["features"][0]
    assert wrong["status"] == "unusable" and "does not hold X3D" in wrong["problem"]
    table = vadctl("weights", "--features", "x3d")
    assert table.exit_code == 0 and "unusable" in table.output


def test_killed_x3d_extraction_resumes_to_the_same_result(tmp_path: Path, weights):
    """A deep entry is committed whole or not at all, like the others: kill mid-run, rerun, compare."""
    import signal
    import time

    root = tmp_path / "videos"
    for i in range(4):
        make_video(root / f"v{i}.avi", 32, seed=i, squares=[Square(5 + 9 * i, 20, 2.0, 0.5)])
    env = {**os.environ, "VADCTL_WEIGHTS_DIR": str(tmp_path / "w")}
    (tmp_path / "w").mkdir()
    shutil.copy(weights["x3d"], tmp_path / "w" / "x3d-x3d_s.safetensors")
    # frames at 64 px, not x3d_s's 160: a sixth of the work per clip (what is committed, and when,
    # does not depend on the size), and still about 0.75 s a video for the kill to land between commits
    size, given = {"x3d": {"size": 64}}, {"x3d": weights["x3d"]}
    # the clean run and the rerun in this process (torch is loaded here already), the killed run a
    # process of its own, finding its weights in the weights folder: same weights, same entries
    reference = api.extract([root], tmp_path / "ref.zarr", "train", ["x3d"], size, given, window=8)
    assert not reference.failed
    store = tmp_path / "killed.zarr"
    command = extract_cmd(root, store, "--features", "x3d", "-p", "x3d.size=64")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if (store / "zarr.json").exists() and sum(len(r.features) for r in FeatureStore(store).videos("train")):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = {r.video_id for r in FeatureStore(store).videos("train") if r.features}
    assert 0 < len(committed) < 4, "the kill landed before or after the work"
    rerun = api.extract([root], store, "train", ["x3d"], size, given, window=8)
    assert not rerun.failed and rerun.count("extracted") == 4 - len(committed)
    for i in range(4):
        got = read(store, f"v{i}", "x3d")
        want = read(tmp_path / "ref.zarr", f"v{i}", "x3d")
        assert got.keys() == want.keys()
        for name in got:
            np.testing.assert_array_equal(got[name], want[name])


def test_pose_without_its_extra_is_a_one_line_error(video_dir: Path, store_path: Path):
    from vadctl.backbones.torch_compat import extra_installed

    if extra_installed("mediapipe"):
        pytest.skip("mediapipe is installed here")
    result = vadctl("extract", video_dir, "--store", store_path, "--features", "pose")
    assert result.exit_code == 2
    assert "feature pose needs the 'pose' extra" in result.output and "Traceback" not in result.output
