"""The CLIP image encoder behind `clip` and `clip_regions`: open_clip, local weights, one copy per run.

The model is an open_clip built-in architecture (`ViT-L-14` default) created without weights and
filled from a local checkpoint with open_clip's own `load_checkpoint` (strict; safetensors or
`torch.load(weights_only=True)`). The pretrained tag (`openai` default) does not download
anything: it tells which training recipe the file comes from, so the activation (QuickGELU for
OpenAI's weights) and preprocessing match it, and which Hugging Face cache entry may hold the file;
`custom` stands for weights of no known recipe (fine-tuned ones): the architecture's own settings.

Images are preprocessed by open_clip's own transform for the model and tag, applied to float
tensors (a batch at a time for frames, per crop for regions) on the inference device.
Only the image tower is kept in memory. Embeddings are L2-normalised, then stored as float16.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from vadctl.backbones.batching import Pipeline, chunks
from vadctl.backbones.torch_compat import device as pick_device
from vadctl.backbones.torch_compat import extra_installed, host_threads, import_extra, inference_dtype
from vadctl.backbones.weights import ResolvedWeights, WeightFile, check_fits, tensor_shapes
from vadctl.errors import UsageError, WeightsError

RESIZE_MODES = (None, "shortest", "longest", "squash")
CUSTOM = "custom"  # weights of no known recipe: the architecture's own activation and preprocessing
_ENCODERS: dict[tuple, ClipEncoder] = {}
_LOCK = threading.Lock()


def open_clip_module(feature: str):
    return import_extra("open_clip", feature, "clip")


def check_names(feature: str, model: str, pretrained: str, resize_mode: str | None) -> None:
    """Model, tag and resize mode known to open_clip (needs the extra)."""
    open_clip = open_clip_module(feature)
    if model not in open_clip.list_models():
        raise UsageError(f"{feature}.model={model!r}: not an open_clip model (e.g. ViT-L-14, ViT-B-32, ViT-B-16)")
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained != CUSTOM and pretrained not in tags:
        known = ", ".join([*tags, CUSTOM])
        raise UsageError(f"{feature}.pretrained={pretrained!r}: not a known tag for {model} (known: {known})")
    if resize_mode not in RESIZE_MODES:
        raise UsageError(f"{feature}.resize_mode={resize_mode!r}: use shortest, longest or squash")


def weight_file(feature: str, model: str, pretrained: str) -> WeightFile:
    """The file that holds `model` trained as `pretrained`, and where open_clip's own cache would keep it."""
    hf: list[tuple[str, str]] = []
    repo = ""
    try:
        if extra_installed("open_clip"):
            open_clip = open_clip_module(feature)
            hub = open_clip.get_pretrained_cfg(model, pretrained).get("hf_hub", "")
            repo, filename = os.path.split(hub)  # open_clip's convention: 'org/repo/' or 'org/repo/file'
            if repo:
                names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
                hf = [(repo, name) for name in names]
    except UsageError:
        pass
    source = f"the open_clip_model.safetensors of {repo} on Hugging Face" if repo else ""
    return WeightFile(
        key="clip",
        feature=feature,
        describes=f"CLIP {model} ({pretrained})",
        names=WeightFile.stem_names(f"clip-{model}-{pretrained}"),
        hf=tuple(hf),
        source=source,
    )


def embed_dim(feature: str, model: str) -> int:
    config = open_clip_module(feature).get_model_config(model)
    return int(config["embed_dim"])


def _architecture(feature: str, model: str, pretrained: str, device: str) -> Any:
    """The model without weights (open_clip's 'initialized randomly' warning is expected here: the
    weights are loaded next, from the local file)."""
    open_clip = open_clip_module(feature)
    quick_gelu = bool(open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False))
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        return open_clip.create_model(model, pretrained=None, force_quick_gelu=quick_gelu, device=device)
    finally:
        logging.disable(previous)


def check_weights(feature: str, model: str, pretrained: str, weights: ResolvedWeights) -> None:
    """The file holds this model's image tower, tensor for tensor (a shapes-only check, no model built)."""
    import torch

    with torch.device("meta"):
        skeleton = _architecture(feature, model, pretrained, "meta")
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items() if k.startswith("visual.")}
    found = {k: v for k, v in tensor_shapes(weights.path, feature).items() if k.startswith("visual.")}
    check_fits(feature, weights.path, f"CLIP {model}", expected, found)


def encoder(feature: str, model: str, pretrained: str, weights: ResolvedWeights, device: str) -> ClipEncoder:
    """The encoder for these settings; `clip` and `clip_regions` of one run share one copy."""
    dev = pick_device(device)
    key = (model, pretrained, weights.sha256, str(dev))
    with _LOCK:
        if key not in _ENCODERS:
            _ENCODERS.clear()  # one model in memory at a time
            _ENCODERS[key] = ClipEncoder(feature, model, pretrained, weights, dev)
        return _ENCODERS[key]


class ClipEncoder:
    """An open_clip image tower on a device, with its preprocessing."""

    def __init__(self, feature: str, model: str, pretrained: str, weights: ResolvedWeights, dev):
        import torch

        open_clip = open_clip_module(feature)
        full = _architecture(feature, model, pretrained, "cpu")
        try:
            open_clip.load_checkpoint(full, str(weights.path), strict=True, weights_only=True)
        except Exception as error:  # open_clip/torch raise RuntimeError, KeyError, ... for a bad file
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise WeightsError(f"{feature}: {weights.path}: cannot load into CLIP {model}: {first}") from None
        self.device = dev
        self.dim = embed_dim(feature, model)
        self.dtype = inference_dtype(dev)
        self.visual = full.visual.to(dev, self.dtype).eval()
        tag_cfg = open_clip.get_pretrained_cfg(model, pretrained)
        self._preprocess = {
            **self.visual.preprocess_cfg,
            **{k: v for k, v in tag_cfg.items() if k in self.visual.preprocess_cfg},
        }
        self._transforms: dict[str | None, Any] = {}
        self.pipeline = Pipeline(overlap=dev.type == "cuda")
        self._torch = torch
        del full

    def transform(self, resize_mode: str | None):
        """open_clip's evaluation transform for this model, optionally with another resize mode."""
        if resize_mode not in self._transforms:
            from open_clip.transform import PreprocessCfg, image_transform_v2

            cfg = dict(self._preprocess)
            if resize_mode is not None:
                cfg["resize_mode"] = resize_mode
            self._transforms[resize_mode] = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        return self._transforms[resize_mode]

    def preprocess_cfg(self) -> dict:
        return dict(self._preprocess)

    def _to_float(self, image: np.ndarray):
        """(…, H, W, 3) uint8 → (…, 3, H, W) float in [0, 1] on the device."""
        tensor = self._torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True)
        return tensor.movedim(-1, -3).float().div_(255)

    def prepare_frames(self, frames: np.ndarray, resize_mode: str | None = None):
        """A batch of same-size frames, preprocessed in one go."""
        with host_threads(self.device):
            return self.transform(resize_mode)(self._to_float(frames)).to(self.dtype)

    def prepare_crops(self, crops: list[np.ndarray], resize_mode: str | None = "squash"):
        transform = self.transform(resize_mode)
        with host_threads(self.device):
            return self._torch.stack([transform(self._to_float(crop)) for crop in crops]).to(self.dtype)

    def forward(self, batch) -> np.ndarray:
        """L2-normalised embeddings, float16, of a preprocessed batch."""
        with self._torch.inference_mode():
            features = self.visual(batch).float()
            features = self._torch.nn.functional.normalize(features, dim=-1)
        return features.to(self._torch.float16).cpu().numpy()

    def embed_frames(self, frames: np.ndarray, batch_size: int, resize_mode: str | None = None) -> np.ndarray:
        batches = chunks(frames, batch_size)
        out = self.pipeline.map(batches, lambda b: self.prepare_frames(b, resize_mode), self.forward)
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float16)

    def embed_crops(self, crops: list[np.ndarray], batch_size: int, resize_mode: str | None = "squash") -> np.ndarray:
        batches = chunks(crops, batch_size)
        out = self.pipeline.map(batches, lambda b: self.prepare_crops(b, resize_mode), self.forward)
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float16)


def crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pixels of a box [x1, y1, x2, y2) (rounded outwards, clipped to the frame, at least 1×1)."""
    h, w = frame.shape[:2]
    x1 = min(max(int(np.floor(box[0])), 0), w - 1)
    y1 = min(max(int(np.floor(box[1])), 0), h - 1)
    x2 = max(min(int(np.ceil(box[2])), w), x1 + 1)
    y2 = max(min(int(np.ceil(box[3])), h), y1 + 1)
    return frame[y1:y2, x1:x2]
