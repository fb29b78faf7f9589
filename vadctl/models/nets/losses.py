"""Losses and frame-quality measures of the neural models (FFP's published ones, SupCon)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def intensity_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """FFP's L_int: mean squared pixel difference."""
    return torch.mean((pred - target) ** 2)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()


def gradient_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """FFP's L_gd: L1 distance between absolute image gradients (keeps predictions sharp)."""
    pred_x, pred_y = _gradients(pred)
    target_x, target_y = _gradients(target)
    return torch.mean((pred_x - target_x).abs()) + torch.mean((pred_y - target_y).abs())


def generator_adversarial_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN loss of the generator: push D(prediction) towards 1."""
    return torch.mean((fake_scores - 1) ** 2 / 2)


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN loss of the discriminator: real patches → 1, predicted patches → 0."""
    return torch.mean((real_scores - 1) ** 2 / 2) + torch.mean(fake_scores**2 / 2)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (compared on the [0, 1] scale, as published)."""
    mse = (((pred + 1) / 2 - (target + 1) / 2) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def supervised_contrastive_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SupCon (Khosla et al., 2020): each sample is pulled towards the others of its label.

    `z` (N, d) is L2-normalised here; anchors without a positive in the batch are left out.
    """
    z = F.normalize(z, dim=1)
    n = len(z)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    similarity = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positives.sum(dim=1)
    valid = count > 0
    if not bool(valid.any()):
        return z.sum() * 0.0
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(dim=1)[valid] / count[valid]
    return -per_anchor.mean()
