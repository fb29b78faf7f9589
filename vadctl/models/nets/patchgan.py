"""FFP's discriminator: a PatchGAN that rates overlapping patches (70×70 receptive field) as real.

Filters (128, 256, 512, 512) as published, scaled by `base`; no normalization; sigmoid output
trained with least-squares GAN losses, as in the reference implementation.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """(N, C, H, W) → (N, 1, h, w) patch probabilities; needs H, W ≥ 32."""

    def __init__(self, in_channels: int, base: int = 128):
        super().__init__()
        widths = (base, base * 2, base * 4, base * 4)
        layers: list[nn.Module] = []
        previous = in_channels
        for index, width in enumerate(widths):
            stride = 2 if index < 3 else 1
            layers += [nn.Conv2d(previous, width, 4, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            previous = width
        layers.append(nn.Conv2d(previous, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))
