"""`x3d`: clip embeddings from a layer of an X3D video network (FUVAS's features).

The network is pytorchvideo's X3D definition (`x3d_s` default) filled from a local checkpoint
(pytorchvideo's `X3D_S.pyth` as torch hub saves it, or a safetensors file). Clips come from the
run's clip table: `length` frames every `step`, a clip every `stride` frames; frames are resized so
their short side is `size` (the backbone's training crop, 160 for x3d_s), keeping the whole frame so
spatial maps cover it, and normalised with Kinetics statistics. Features are taken after the
block named by `layer` (`blocks.4`, the last stage before the classification head); later blocks
are not run.

`spatial_pool=True` stores the average over time and space, a (C,) float32 vector (192 for
x3d_s). `spatial_pool=False` keeps the map, (C, T', H', W') float16, average-pooled over space by
`pooling_kernel_size` as FUVAS does. Each frame is preprocessed once and shared by the clips that
overlap it; memory holds at most one clip span of frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vadctl.backbones.batching import Pipeline, chunks
from vadctl.backbones.torch_compat import device as pick_device
from vadctl.backbones.torch_compat import host_threads, import_extra, inference_dtype
from vadctl.backbones.weights import ResolvedWeights, WeightFile, check_fits, load_tensors, tensor_shapes
from vadctl.common.specs import ArraySpec, ClipSpec
from vadctl.errors import UsageError, WeightsError
from vadctl.features.base import Output
from vadctl.features.deep import WeightedFeaturizer
from vadctl.features.loaded import shared
from vadctl.features.registry import register
from vadctl.video.reader import FrameWindow, VideoInfo

# pytorchvideo hub builder → (training crop size, file name of its published checkpoint)
BACKBONES = {
    "x3d_xs": (160, "X3D_XS.pyth"),
    "x3d_s": (160, "X3D_S.pyth"),
    "x3d_m": (224, "X3D_M.pyth"),
    "x3d_l": (312, "X3D_L.pyth"),
}
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


def _hub():
    import_extra("pytorchvideo", "x3d", "x3d")
    from pytorchvideo.models.hub import x3d as hub  # the model definitions only (its transforms are not imported)

    return hub


def build_network(backbone: str, device: str = "cpu") -> Any:
    import torch

    with torch.device(device):
        return getattr(_hub(), backbone)(pretrained=False)


@register
class X3D(WeightedFeaturizer):
    """X3D features of every clip of the clip table (see module doc)."""

    name = "x3d"
    axis = "clip"
    segmentable = False  # clips are batched as windows complete them: a segment edge would batch them otherwise
    extra = "x3d"
    extra_modules = ("pytorchvideo",)
    summary = "X3D clip embeddings (pytorchvideo; x3d_s, layer blocks.4), pooled or spatial maps"

    def __init__(
        self,
        backbone: str = "x3d_s",
        layer: str = "blocks.4",
        spatial_pool: bool = True,
        pooling_kernel_size: int = 1,
        size: int | None = None,
        batch_size: int = 4,
        device: str = "auto",
    ):
        self.backbone = backbone
        self.layer = layer
        self.spatial_pool = spatial_pool
        self.pooling_kernel_size = pooling_kernel_size
        self.size = size
        self.batch_size = batch_size
        self.device = device
        if backbone not in BACKBONES:
            raise UsageError(f"x3d.backbone={backbone!r}: use one of {', '.join(BACKBONES)}")
        prefix, _, number = layer.partition(".")
        if prefix != "blocks" or not number.isdigit() or not 0 <= int(number) <= 4:
            raise UsageError(f"x3d.layer={layer!r}: use blocks.0 … blocks.4 (blocks.5 is the classification head)")
        if not isinstance(pooling_kernel_size, int) or pooling_kernel_size < 1:
            raise UsageError(f"x3d.pooling_kernel_size={pooling_kernel_size!r}: must be a positive integer")
        if size is not None and (not isinstance(size, int) or size < 32):
            raise UsageError(f"x3d.size={size!r}: short side in pixels, at least 32")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UsageError(f"x3d.batch_size={batch_size!r}: must be a positive integer")
        self._net = None
        self._shapes: dict[tuple, tuple[int, ...]] = {}

    # ----- weights ---------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return int(self.layer.split(".")[1]) + 1

    @property
    def short_side(self) -> int:
        return self.size or BACKBONES[self.backbone][0]

    def weight_file(self) -> WeightFile:
        official = BACKBONES[self.backbone][1]
        return WeightFile(
            key="x3d",
            feature=self.name,
            describes=f"X3D {self.backbone}",
            names=(*WeightFile.stem_names(f"x3d-{self.backbone}", (".safetensors", ".pt", ".pth")), official),
            torch_hub=(official,),
            source=f"pytorchvideo's Kinetics model zoo ({official})",
        )

    def import_extra(self) -> None:
        _hub()

    def check_weights(self, weights: ResolvedWeights) -> None:
        expected = {k: tuple(v.shape) for k, v in build_network(self.backbone, "meta").state_dict().items()}
        check_fits(self.name, weights.path, f"X3D {self.backbone}", expected, tensor_shapes(weights.path, self.name))

    def _load(self):
        import torch

        weights = self.resolved_weights()
        key = (self.backbone, self.depth, weights.sha256, self.device)
        self._net, self._dev, self._dtype = shared("x3d", key, lambda: self._load_trunk(weights))
        self._mean = torch.tensor(KINETICS_MEAN, device=self._dev).view(1, 3, 1, 1)
        self._std = torch.tensor(KINETICS_STD, device=self._dev).view(1, 3, 1, 1)
        self._pipeline = Pipeline(overlap=self._dev.type == "cuda")

    def _load_trunk(self, weights):
        """(the first `depth` blocks with the file's weights, device, dtype): loaded once per process."""
        import torch

        net = build_network(self.backbone, "cpu")
        state = load_tensors(weights.path, self.name)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise WeightsError(f"{self.name}: {weights.path}: cannot load into {self.backbone}: {first}") from None
        dev = pick_device(self.device)
        dtype = inference_dtype(dev)
        trunk = torch.nn.Sequential(*list(net.blocks)[: self.depth])
        return trunk.to(dev, dtype).eval(), dev, dtype

    # ----- shapes ----------------------------------------------------------------------------------
    def _resized(self, height: int, width: int) -> tuple[int, int]:
        scale = self.short_side / min(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    def _feature_shape(self, info: VideoInfo, clips: ClipSpec) -> tuple[int, ...]:
        """(C,) or (C, T', H', W') for clips of this video, from a forward pass on the meta device."""
        import torch

        key = (info.height, info.width, clips.length)
        if key not in self._shapes:
            trunk = torch.nn.Sequential(*list(build_network(self.backbone, "meta").blocks)[: self.depth])
            h, w = self._resized(info.height, info.width)
            out = self._pool(trunk(torch.empty(1, 3, clips.length, h, w, device="meta")))
            self._shapes[key] = tuple(out.shape[1:])
        return self._shapes[key]

    def arrays(self, info: VideoInfo) -> dict[str, ArraySpec]:
        shape = self._feature_shape(info, getattr(self, "_clips", ClipSpec()))
        dims = ("channel",) if self.spatial_pool else ("channel", "t", "y", "x")
        return {"embedding": ArraySpec(shape, "float32" if self.spatial_pool else "float16", dims=dims[: len(shape)])}

    def _pool(self, features):
        import torch.nn.functional as F

        if self.spatial_pool:
            return features.float().mean(dim=(2, 3, 4))
        k = self.pooling_kernel_size
        return F.avg_pool3d(features, (1, k, k)) if k > 1 else features

    # ----- per video -------------------------------------------------------------------------------
    def begin(self, info: VideoInfo, clips: ClipSpec) -> None:
        self.check()
        if self._net is None:
            self._load()
        self._clips = clips
        self._n_frames = info.n_frames
        self._table = clips.table(info.n_frames)
        self._shape = self._feature_shape(info, clips)
        self._next = 0  # first clip not yet emitted
        self._frames: dict[int, Any] = {}  # frame index → preprocessed (3, H', W') tensor

    def _preprocess(self, frames: np.ndarray):
        import torch
        import torch.nn.functional as F

        with host_threads(self._dev):
            tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(self._dev, non_blocking=True)
            tensor = tensor.permute(0, 3, 1, 2).float().div_(255)
            size = self._resized(*frames.shape[1:3])
            if size != tuple(frames.shape[1:3]):
                tensor = F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)
            return ((tensor - self._mean) / self._std).to(self._dtype)

    def _ready(self, upto: int) -> list[int]:
        """Clips not yet emitted whose frames are all below `upto`."""
        ready = []
        for index in range(self._next, len(self._table)):
            if self._clips.frame_indices(int(self._table[index, 0]), self._n_frames).max() >= upto:
                break
            ready.append(index)
        return ready

    def _clip_tensor(self, index: int):
        import torch

        frames = self._clips.frame_indices(int(self._table[index, 0]), self._n_frames)
        return torch.stack([self._frames[int(i)] for i in frames], dim=1)  # (3, T, H, W)

    def _batch(self, ids: list[int]):
        import torch

        with host_threads(self._dev):
            return torch.stack([self._clip_tensor(i) for i in ids])

    def _forward(self, batch):
        import torch

        with torch.inference_mode():
            return self._pool(self._net(batch)).float().cpu().numpy()

    def _emit(self, ready: list[int]) -> np.ndarray:

        dtype = np.float32 if self.spatial_pool else np.float16
        if not ready:
            return np.zeros((0, *self._shape), dtype)
        batches = chunks(ready, self.batch_size)
        out = self._pipeline.map(batches, self._batch, self._forward)
        self._next = ready[-1] + 1
        if self._next < len(self._table):  # frames before the next clip are no longer needed
            first = int(self._table[self._next, 0])
            self._frames = {i: f for i, f in self._frames.items() if i >= first}
        return np.concatenate(out).astype(dtype)

    def process(self, window: FrameWindow, upstream: Mapping[str, Output]) -> Output:
        first_needed = int(self._table[self._next, 0]) if self._next < len(self._table) else window.stop
        keep = np.arange(window.start, window.stop) >= first_needed
        if keep.any():
            prepared = self._preprocess(window.frames[keep])
            for offset, tensor in zip(np.flatnonzero(keep), prepared, strict=True):
                self._frames[window.start + int(offset)] = tensor
        return Output(dense={"embedding": self._emit(self._ready(window.stop))})

    def finish(self) -> Output | None:
        rest = list(range(self._next, len(self._table)))  # none when every frame was seen
        if not rest:
            return None
        return Output(dense={"embedding": self._emit(rest)})
