"""The scene-aware model's network: a Transformer autoencoder over sequences of frame embeddings.

Encoder (pre-norm Transformer layers over the 16 time steps) → a small per-step latent →
decoder (the same kind of layers) → the reconstructed embeddings. The supervised contrastive loss
acts on the time-averaged latent, which is what the decoder reconstructs from: so scenes get
separate regions of the very space the decoder has learnt to decode ("scene-specific normal
manifolds"), not of a side projection.
"""

from __future__ import annotations

import torch
from torch import nn


def _stack(d_model: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d_model, heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)


class SequenceAutoencoder(nn.Module):
    """(N, T, d_in) → (N, T, d_in); `encode` gives the (N, T, latent) codes."""

    def __init__(
        self,
        d_in: int,
        seq_len: int = 16,
        d_model: int = 128,
        latent: int = 32,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embed = nn.Linear(d_in, d_model)
        self.position = nn.Parameter(torch.randn(1, seq_len, d_model) * 0.02)
        self.encoder = _stack(d_model, heads, layers, dropout)
        self.to_latent = nn.Linear(d_model, latent)
        self.from_latent = nn.Linear(latent, d_model)
        self.decoder = _stack(d_model, heads, layers, dropout)
        self.out = nn.Linear(d_model, d_in)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.encoder(self.embed(x) + self.position))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.decoder(self.from_latent(z) + self.position))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
