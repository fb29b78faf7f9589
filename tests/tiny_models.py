"""Small randomly initialised models saved as weight files, loaded by vadctl as real weights are.

A tiny open_clip architecture is registered under `TINY_CLIP` (open_clip's own model-config
mechanism); x3d_s and raft_small are the real architectures (a few MB), with random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

TINY_CLIP = "vadctl-tiny-test"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def register_tiny_clip(folder: Path) -> str:
    from vadctl.backbones.torch_compat import import_extra

    open_clip = import_extra("open_clip", "clip", "clip")
    if TINY_CLIP not in open_clip.list_models():
        config = folder / f"{TINY_CLIP}.json"
        config.write_text(json.dumps(TINY_CLIP_CONFIG))
        open_clip.add_model_config(config)
    return TINY_CLIP


def save(state: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path))
    return path


def tiny_clip_weights(folder: Path, seed: int = 0) -> Path:
    from vadctl.features.clip_model import _architecture

    register_tiny_clip(folder)
    torch.manual_seed(seed)
    model = _architecture("clip", TINY_CLIP, "custom", "cpu")
    return save(model.state_dict(), folder / f"clip-{TINY_CLIP}-custom-{seed}.safetensors")


def x3d_weights(folder: Path, seed: int = 0) -> Path:
    from vadctl.features.x3d import build_network

    torch.manual_seed(seed)
    net = build_network("x3d_s")
    with torch.no_grad():  # non-trivial batch-norm statistics, so loading them matters
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return save(net.state_dict(), folder / f"x3d-x3d_s-{seed}.safetensors")


def raft_small_weights(folder: Path, seed: int = 0) -> Path:
    from vadctl.backbones import raft

    torch.manual_seed(seed)
    return save(raft.build("raft_small").state_dict(), folder / f"raft_small-{seed}.safetensors")


# ----- ONNX detectors --------------------------------------------------------------------------------
def yolo_onnx(
    path: Path,
    layout: str,
    planted: list[tuple[float, float, float, float, int, float]],
    size: tuple[int, int] = (64, 64),
    n_classes: int = 3,
    dynamic_batch: bool = False,
) -> Path:
    """A tiny random detector exported as YOLOX's or YOLOv8's ONNX layout (see `vadctl.features.yolo`).

    A random convolution feeds every output at a low score (< 0.01), and each planted detection
    (cx, cy, w, h in input pixels, class, gain) is written raw as the real head would, with score =
    gain × the input's channel 0 at the box centre, on the model's own input scale: so the score
    tells whether frames reached the model in its channel order and value range.
    """
    from vadctl.features.yolo import STRIDES, n_anchors

    height, width = size
    anchors = n_anchors(height, width)
    columns = (5 if layout == "yolox" else 4) + n_classes
    base = torch.zeros(anchors, columns)
    hot = torch.zeros(anchors, columns)  # 1 where a planted score goes
    picks = []
    for index, (cx, cy, w, h, cls, gain) in enumerate(planted):
        stride = STRIDES[index % len(STRIDES)]  # spread planted boxes over the three heads
        gx, gy = int(cx // stride), int(cy // stride)
        offset = sum((height // s) * (width // s) for s in STRIDES[: STRIDES.index(stride)])
        anchor = offset + gy * (width // stride) + gx
        if layout == "yolox":  # grid-relative centre, log size, objectness × class probability
            base[anchor, :4] = torch.tensor(
                [cx / stride - gx, cy / stride - gy, np.log(w / stride), np.log(h / stride)]
            )
            base[anchor, 5 + cls] = 1.0
            hot[anchor, 4] = 1.0
        else:  # input-pixel centre and size, class scores
            base[anchor, :4] = torch.tensor([cx, cy, w, h])
            hot[anchor, 4 + cls] = 1.0
        picks.append((anchor, round(cy), round(cx), gain))
    scale = 1 / 255 if layout == "yolox" else 1.0

    class TinyYolo(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=8)
            self.head = torch.nn.Linear(4, anchors * columns)
            self.register_buffer("base", base)
            self.register_buffer("hot", hot)
            self.register_buffer("score_cols", (torch.arange(columns) >= 4).float())
            self.register_buffer("quiet", 1 - hot.amax(dim=1, keepdim=True))  # anchors without a planted box

        def forward(self, x):
            n = x.shape[0]
            noise = torch.sigmoid(self.head(self.conv(x).mean(dim=(2, 3)))).view(n, anchors, columns) * 0.01
            out = self.base + noise * self.score_cols * self.quiet
            planted_scores = torch.zeros(n, anchors, 1)
            for anchor, py, px, gain in picks:
                one = torch.zeros(1, anchors, 1)
                one[0, anchor, 0] = 1.0
                planted_scores = planted_scores + one * (x[:, 0, py, px] * scale * gain).view(n, 1, 1)
            out = out + self.hot * planted_scores
            return out if layout == "yolox" else out.transpose(1, 2)

    torch.manual_seed(0)
    model = TinyYolo().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {"images": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, height, width),),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=17,
        )
    return path


# ----- ImageNet backbones ----------------------------------------------------------------------------
def imagenet_weights(folder: Path, backbone: str = "mobilenet_v2", seed: int = 0, naming: str = "torchvision") -> Path:
    """Random weights of a torchvision backbone with non-trivial batch-norm statistics, as a file.

    naming: "torchvision" (the model's full state dict, classifier included, as torchvision ships it),
    "renamed" (the trunk's tensors in order under other names, as older exports of the same network,
    saved with torch.save like them).
    """
    from vadctl.backbones.torch_compat import import_torchvision

    torch.manual_seed(seed)
    net = getattr(import_torchvision().models, backbone)(weights=None)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = net.state_dict()
    if naming == "renamed":  # a torch checkpoint: only its order (unlike safetensors') is the model's
        trunk = [v for k, v in state.items() if not k.startswith(("classifier.", "fc."))]
        path = folder / f"{backbone}-{naming}-{seed}.pt"
        torch.save({f"block{i}.tensor": v.clone() for i, v in enumerate(trunk)}, path)
        return path
    return save(state, folder / f"{backbone}-{naming}-{seed}.safetensors")
