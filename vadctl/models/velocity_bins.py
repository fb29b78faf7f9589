"""AI-VAD's velocity attribute from the stored `velocity` entry: fine direction bins merged into the
model's coarse, centred bins (a fit-time choice, so the bin count needs no new extraction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vadctl.errors import FeatureError, UsageError


def check_layout(attrs: Mapping[str, Any], key: str) -> None:
    """The stored bins must start at 0° (velocity version 2); older layouts cannot be merged here."""
    start = float(attrs.get("first_bin_start_deg", 0.0))
    if start != 0.0:
        raise FeatureError(f"{key}: direction bins start at {start}°; this vadctl merges bins that start at 0°")


def merge_bins(magnitude_sum: np.ndarray, count: np.ndarray, n_bins: int) -> np.ndarray:
    """AI-VAD's velocity: mean magnitude per direction bin, after merging the stored fine bins.

    Coarse bins are centred on the principal directions (bin 0 spans ±180°/n_bins around +x), so
    motion along an image axis, the common case in surveillance, never straddles a bin edge.
    Stored sums and counts make the bin count a fit-time choice without extracting again: with N
    stored bins, any n_bins with N divisible by 2·n_bins works, and n_bins = 1 always does.
    """
    stored = magnitude_sum.shape[-1]
    if n_bins == 1:
        sums, counts = magnitude_sum.sum(-1, keepdims=True), count.sum(-1, keepdims=True)
    else:
        if n_bins < 1 or stored % (2 * n_bins):
            raise UsageError(
                f"n_velocity_bins={n_bins}: the {stored} extracted direction bins must divide into "
                f"2×{n_bins} (extract with --param velocity.n_bins=K for another count)"
            )
        coarse = ((np.arange(stored) + stored // (2 * n_bins)) % stored) // (stored // n_bins)
        sums = np.zeros((*magnitude_sum.shape[:-1], n_bins))
        counts = np.zeros((*count.shape[:-1], n_bins))
        for fine, target in enumerate(coarse):
            sums[..., target] += magnitude_sum[..., fine]
            counts[..., target] += count[..., fine]
    return np.divide(sums, counts, out=np.zeros(sums.shape, dtype=np.float64), where=counts > 0)
