"""FFP's motion loss (L_op) with a frozen RAFT flow network instead of FlowNet2-SD.

FFP compares the flow from the last real frame to the predicted frame with the flow from it to the
real next frame: L_op = mean |f(I_t, Î_t+1) − f(I_t, I_t+1)|. The published network, FlowNet2-SD,
has no maintained PyTorch definition; torchvision's RAFT is differentiable, and vadctl already loads
its weights from local files for `flow.method=raft`. Gradients flow through RAFT into the generator;
RAFT's own weights stay fixed. Frames are made RGB and, below RAFT's minimum of 128 pixels a side,
upsampled (bilinearly, so the loss stays differentiable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_SIDE = 128  # RAFT's correlation pyramid needs at least this many pixels a side


def raft_input(frames: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1], C = 1 or 3 → (B, 3, H', W') that RAFT takes (sides ≥ 128, multiples of 8)."""
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    height, width = frames.shape[-2:]
    scale = max(1.0, MIN_SIDE / min(height, width))
    size = (-(-round(height * scale) // 8) * 8, -(-round(width * scale) // 8) * 8)
    if size != (height, width):
        frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    return frames.contiguous()


class MotionLoss:
    """L_op of FFP with a frozen flow network called as `network(first, second, num_flow_updates=n)`."""

    def __init__(self, network: torch.nn.Module, iterations: int):
        self.network = network.eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.iterations = iterations

    def flow(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Flow between two RAFT-ready batches (see `raft_input`)."""
        return self.network(first, second, num_flow_updates=self.iterations)[-1]

    def __call__(self, previous: torch.Tensor, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        start = raft_input(previous)
        with torch.no_grad():
            real = self.flow(start, raft_input(target))
        return torch.mean((self.flow(start, raft_input(pred)) - real).abs())
