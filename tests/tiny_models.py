"""Small randomly initialised models saved as weight files, loaded by vadctl as real weights are.

A tiny open_clip architecture is registered under `TINY_CLIP` (open_clip's own model-config
mechanism); x3d_s and raft_small are the real architectures (a few MB), with random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

TINY_CLIP = "vadctl-tiny-test"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def register_tiny_clip(folder: Path) -> str:
    from vadctl.torch_compat import import_extra

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
    from vadctl import raft

    torch.manual_seed(seed)
    return save(raft.build("raft_small").state_dict(), folder / f"raft_small-{seed}.safetensors")
