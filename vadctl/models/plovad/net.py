"""The PLOVAD-based network: cells → heatmap, snippets → temporal module → detection and classes.

    cells (B, T, C, R, W)      per-cell inputs of each snippet (normality attributes [+ the grid])
      cell encoder (1×1 convs)  → (B·T, d, R, W)
      localization head (1×1)   → heatmap logits (B, T, R, W): the spatial map reduced to 1 channel
      heatmap-weighted pooling  → snippet vectors (B, T, d)  [+ projected appearance (B, T, D)]
      temporal module           → (B, T, d): Transformer blocks whose attention is distance-aware
                                  (each head's logits fall linearly with the snippet distance,
                                  with a learnt slope: PLOVAD's local-vs-global temporal context)
      detection head            → logits (B, T) = linear(temporal features) + the snippet's
                                  hottest cell ("additive", the default); or ("evidence") the
                                  hottest cell mixed over neighbouring snippets by an attention
                                  the temporal features steer, with no term of their own
      class head                → unit embeddings (B, T, E) · prototypesᵀ → class logits (B, T, K)

Two detection heads, both measured on Ped2's weak split (benchmarks/RESULTS.md): "additive" is the
configuration fixed before that evaluation and stays the default; "evidence" was designed after it
(the free linear term can learn a recording-wide trait) and did not do better there.

Prototypes are an input, not a weight: the learned classifier passes its trained class vectors,
the open-vocabulary mode passes CLIP text embeddings of prompts (any classes, at scoring time).
With CLIP appearance, the class embedding is the snippet's CLIP embedding plus a learnt
correction that starts at zero, so untrained class names keep CLIP's zero-shot meaning.
Everything exports to ONNX with dynamic batch, snippet and class axes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class DistanceAwareAttention(nn.Module):
    """Multi-head self-attention whose logits fall with |i − j| by a learnt per-head slope."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.slope = nn.Parameter(torch.linspace(-2.0, 1.0, heads))  # softplus: ~0.13 … 1.3 per snippet
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(width // self.heads)  # (B, H, T, T)
        position = torch.arange(length, device=x.device, dtype=x.dtype)
        distance = (position[None, :] - position[:, None]).abs()
        logits = logits - F.softplus(self.slope)[None, :, None, None] * distance
        if pad is not None:
            logits = logits.masked_fill(pad[:, None, None, :], -1e4)
        weights = self.dropout(logits.softmax(dim=-1))
        mixed = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.out(mixed)


class TemporalBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = DistanceAwareAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d_model, d_model)
        )

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), pad)
        return x + self.mlp(self.norm2(x))


PROBABILITY_EPS = 1e-6  # mixed probabilities stay in [1e-6, 1 − 1e-6]: logits within ±13.8


class EvidenceMixer(nn.Module):
    """Each snippet's logit: a learnt convex mix, in probability, of its own evidence and a
    distance-aware attention-weighted mean of all snippets' evidence (weights from the temporal
    features). Mixing probabilities, a quiet snippet beside a very hot one rises at most to the
    mixing share (logit 0 at an even mix), not to a share of the neighbour's unbounded logit.

    The context is a neighbourhood: content can shift a weight by at most e^(±`CONTENT`) (cosine
    similarity of query and key), while a snippet k apart is down-weighted at least e^(−k/2)
    (`MIN_SLOPE`), so one hot snippet cannot lift a whole video (left free, the attention learnt to
    copy the video's hottest snippet everywhere, which MIL does not punish)."""

    MIN_SLOPE = 0.5
    CONTENT = 2.0

    def __init__(self, d_model: int):
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.slope = nn.Parameter(torch.tensor(-1.0))
        self.mix = nn.Parameter(torch.tensor(0.0))  # sigmoid: share of the temporal context

    def forward(self, x: torch.Tensor, evidence: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        length = x.shape[1]
        query, key = F.normalize(self.query(x), dim=-1), F.normalize(self.key(x), dim=-1)
        logits = self.CONTENT * query @ key.transpose(-1, -2)
        position = torch.arange(length, device=x.device, dtype=x.dtype)
        slope = F.softplus(self.slope) + self.MIN_SLOPE
        logits = logits - slope * (position[None, :] - position[:, None]).abs()
        if pad is not None:
            logits = logits.masked_fill(pad[:, None, :], -1e4)
        probability = torch.sigmoid(evidence)
        context = (logits.softmax(dim=-1) @ probability.unsqueeze(-1)).squeeze(-1)
        share = torch.sigmoid(self.mix)
        mixed = ((1 - share) * probability + share * context).clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        return torch.log(mixed) - torch.log1p(-mixed)


class PlovadNet(nn.Module):
    """See module docstring. `appearance_dim` 0: no appearance input; `clip_classes`: the class
    embedding lives in the appearance (CLIP) space; `detection`: "evidence" or "additive"."""

    def __init__(
        self,
        in_channels: int,
        appearance_dim: int,
        d_model: int,
        heads: int,
        layers: int,
        class_dim: int,
        dropout: float,
        clip_classes: bool = False,
        detection: str = "additive",
    ):
        super().__init__()
        self.in_channels = in_channels
        self.appearance_dim = appearance_dim
        self.clip_classes = clip_classes
        self.detection = detection
        self.cell = nn.Sequential(
            nn.Conv2d(in_channels, d_model, 1), nn.GELU(), nn.Dropout(dropout), nn.Conv2d(d_model, d_model, 1)
        )
        self.heat = nn.Conv2d(d_model, 1, 1)
        self.appearance = nn.Linear(appearance_dim, d_model) if appearance_dim else None
        self.temporal = nn.ModuleList(TemporalBlock(d_model, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        if detection == "evidence":
            self.mixer = EvidenceMixer(d_model)
        else:
            self.detect = nn.Linear(d_model, 1)
        self.classify = nn.Linear(d_model, class_dim)
        if clip_classes:  # start at CLIP's own embedding: zero-shot meaning kept for unseen classes
            nn.init.zeros_(self.classify.weight)
            nn.init.zeros_(self.classify.bias)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(
        self,
        cells: torch.Tensor,
        prototypes: torch.Tensor,
        appearance: torch.Tensor | None = None,
        pad: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(detection logits (B, T), class logits (B, T, K), heatmap logits (B, T, R, W)).

        `pad` (B, T) marks padding snippets of shorter videos in a training batch."""
        batch, length, channels, rows, cols = cells.shape
        hidden = self.cell(cells.reshape(batch * length, channels, rows, cols))
        heat = self.heat(hidden).reshape(batch, length, rows * cols)
        weights = heat.softmax(dim=-1).reshape(batch * length, 1, rows * cols)
        pooled = (hidden.reshape(batch * length, -1, rows * cols) * weights).sum(dim=-1).reshape(batch, length, -1)
        if self.appearance is not None and appearance is not None:
            pooled = pooled + self.appearance(appearance)
        x = pooled
        for block in self.temporal:
            x = block(x, pad)
        x = self.norm(x)
        evidence = heat.max(dim=-1).values
        if self.detection == "evidence":
            detection = self.mixer(x, evidence, pad)
        else:
            detection = self.detect(x).squeeze(-1) + evidence
        embedding = self.classify(x)
        if self.clip_classes and appearance is not None:
            embedding = embedding + appearance
        embedding = F.normalize(embedding, dim=-1)
        class_logits = self.logit_scale.exp() * embedding @ F.normalize(prototypes, dim=-1).transpose(0, 1)
        return detection, class_logits, heat.reshape(batch, length, rows, cols)


class ExportWrapper(nn.Module):
    """The network with positional inputs only (what the ONNX exporter traces)."""

    def __init__(self, net: PlovadNet, with_appearance: bool):
        super().__init__()
        self.net = net
        self.with_appearance = with_appearance

    def forward(self, cells: torch.Tensor, prototypes: torch.Tensor, *appearance: torch.Tensor):
        return self.net(cells, prototypes, appearance[0] if self.with_appearance else None)
