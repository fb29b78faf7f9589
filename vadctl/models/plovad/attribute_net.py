"""The attribute head: detection from the one-class attribute scores alone, a few parameters.

    cells (B, T, C, R, W)   the first A channels: normalised attribute maps (PCA error, velocity GMM)
      heat (B, T, R, W)     = bias + Σₐ softplus(wₐ) · attributeₐ      (non-negative weights)
      detection (B, T)      = the snippet's hottest cell
      classes (B, T, K)     from the cells pooled by the heat, *detached*: the class head reads
                            everything (grid included) but can never move detection

Why: with video-level labels on small data (a few dozen videos), a network that sees the grid or a
whole snippet learns which recording a video came from (on Ped2's weak split the anomalous videos
are busier) and its seeds disagree by 0.15 AUROC. Here the labels can only re-weight evidence that
was learnt on normal videos, and a more unusual cell can never score lower: top-k multiple-instance
learning then chooses how much each attribute counts, which is what a few labels can settle.
Exports to ONNX as the network does (same inputs and outputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AttributeNet(nn.Module):
    """See module docstring. `attributes`: how many leading input channels are attribute maps."""

    def __init__(
        self, in_channels: int, attributes: int, appearance_dim: int, class_dim: int, clip_classes: bool = False
    ):
        super().__init__()
        if not 1 <= attributes <= in_channels:
            raise ValueError(f"attributes={attributes} must be in [1, {in_channels}]")
        self.in_channels = in_channels
        self.attributes = attributes
        self.appearance_dim = appearance_dim
        self.clip_classes = clip_classes
        self.raw_weight = nn.Parameter(torch.zeros(attributes))  # softplus(0) ≈ 0.69: every attribute counts
        self.bias = nn.Parameter(torch.zeros(()))
        self.classify = nn.Linear(in_channels, class_dim)
        self.appearance = nn.Linear(appearance_dim, class_dim) if appearance_dim and not clip_classes else None
        if clip_classes:  # start at CLIP's own embedding: zero-shot meaning kept for unseen classes
            nn.init.zeros_(self.classify.weight)
            nn.init.zeros_(self.classify.bias)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def attribute_weights(self) -> torch.Tensor:
        return F.softplus(self.raw_weight)

    def forward(
        self,
        cells: torch.Tensor,
        prototypes: torch.Tensor,
        appearance: torch.Tensor | None = None,
        pad: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(detection logits (B, T), class logits (B, T, K), heatmap logits (B, T, R, W)); `pad` is
        accepted for the network's signature (nothing here mixes snippets)."""
        batch, length, channels, rows, cols = cells.shape
        weights = self.attribute_weights()[None, None, :, None, None]
        heat = (cells[:, :, : self.attributes] * weights).sum(dim=2) + self.bias
        flat = heat.reshape(batch, length, rows * cols)
        detection = flat.max(dim=-1).values
        share = flat.detach().softmax(dim=-1)
        pooled = (cells.reshape(batch, length, channels, rows * cols) * share[:, :, None, :]).sum(dim=-1)
        embedding = self.classify(pooled)
        if appearance is not None and self.appearance_dim:
            embedding = embedding + (appearance if self.clip_classes else self.appearance(appearance))
        embedding = F.normalize(embedding, dim=-1)
        class_logits = self.logit_scale.exp() * embedding @ F.normalize(prototypes, dim=-1).transpose(0, 1)
        return detection, class_logits, heat
